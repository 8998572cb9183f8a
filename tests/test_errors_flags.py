"""Bad flags, lost work and busy folders: exit status 2, one line naming the flag (or folder) and what
is allowed, no traceback, nothing on disk changed.

The shape is tests/test_errors.py's (``Case`` rows, a builder per script, :func:`run_case` with its
snapshot of the whole test folder). The training builders first put a previous good run into
``OUTPUT_DIR`` (toolkit-marked checkpoints, results, a final model) and pass
``--overwrite_output_dir``: the snapshot then proves that a refused setting deleted nothing (such
settings used to fail with a traceback only after the old run was cleared). The lock cases hold
``OUTPUT_DIR/.m6abert.lock`` for a live process (a ``sleep``) or for a process of another host.

``CASES`` lists every ``(script, Case)`` for docs/errors.md;
``python tests/test_errors_flags.py`` prints those rows.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "tests"):  # for `python tests/test_errors_flags.py`
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from test_errors import (  # noqa: E402
    LOG_RECORD,
    Case,
    check_error,
    kmer_row,
    markdown_rows,
    random_fasta,
    run_case,
    set_row,
    snapshot,
)
from toy import tiny_classifier, tiny_pretrained, write_corpus, write_split_dir  # noqa: E402

from m6abert import __version__, io  # noqa: E402

# ---------------------------------------------------------------------------- helpers
LOCK, MARKER = ".m6abert.lock", "m6abert_checkpoint.json"  # io.LOCK_NAME, io.CHECKPOINT_MARKER
_SLEEPERS: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _stop_sleepers():
    yield
    while _SLEEPERS:
        proc = _SLEEPERS.pop()
        proc.kill()
        proc.wait()


def hold_lock(folder: Path, host: str | None = None) -> None:
    """``folder/.m6abert.lock`` of a live process of this host (a ``sleep``), or of pid 1234 on ``host``."""
    if host is None:
        proc = subprocess.Popen(["sleep", "120"])
        _SLEEPERS.append(proc)
        owner = {"pid": proc.pid, "host": socket.gethostname(), "since": "2024-05-01T10:00:00+00:00"}
    else:
        owner = {"pid": 1234, "host": host, "since": "2024-05-01T10:00:00+00:00"}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK).write_text(json.dumps(owner))


def previous_run(out: Path, results: dict[str, str]) -> None:
    """A previous good run: marked checkpoints as the training loop writes them, results, a final model."""
    for step in (2, 4):
        ckpt = out / f"checkpoint-{step}"
        io.write_json(ckpt / "config.json", {"vocab_size": 69})
        io.write_text(ckpt / "model.safetensors", f"weights of step {step}")
        io.write_json(ckpt / "trainer_state.json", {"global_step": step, "epoch": 0, "batch_in_epoch": step})
        io.write_json(ckpt / MARKER, {"m6abert_version": __version__, "step": step})
    for name, text in results.items():
        io.write_text(out / name, text)
    io.write_text(out / "model.safetensors", "the final model")


LOCK_MSG = "{file}: in use by another run (pid … on host …, since …); wait for it or remove {file}/.m6abert.lock if it is dead"
HOST_MSG = ("{file}: in use by a run on another host (pid 1234 on host other-host.example, since …), which cannot be "
            "checked from …; wait for it or remove {file}/.m6abert.lock if it is dead")


def flag_cases(rows: list[tuple[str, str, str]]) -> list[Case]:
    """``(flag, value, allowed)`` rows: ``--flag value`` over an old run, refused with ``--flag must be allowed, not value``."""
    return [Case(f"{flag}={value}", f"`--{flag} {value}` over an old run (kept)",
                 f"--{flag} must be {allowed}, not {shown}")
            for flag, value, allowed, shown in ((r[0], r[1], r[2], r[3] if len(r) > 3 else r[1]) for r in rows)]


SEED = f"in 0..{2**32 - 1}"
OPTIMIZER_ROWS = [
    ("seed", "-1", SEED), ("seed", str(2**32), SEED),
    ("learning_rate", "nan", "a finite number > 0"), ("learning_rate", "-1e-05", "a finite number > 0"),
    ("learning_rate", "0", "a finite number > 0", "0.0"),
    ("adam_epsilon", "-1", "a finite number > 0", "-1.0"),
    ("beta1", "1.5", "in [0, 1)"), ("beta2", "1", "in [0, 1)", "1.0"), ("beta2", "nan", "in [0, 1)"),
    ("weight_decay", "-0.01", "a finite number >= 0"),
    ("max_grad_norm", "-1", "> 0 (inf: no clipping)", "-1.0"), ("max_grad_norm", "nan", "> 0 (inf: no clipping)"),
    ("warmup_steps", "-1", ">= 0"),
    ("logging_steps", "-1", ">= 0 (0: never)"), ("save_steps", "-5", ">= 0 (0: never)"),
    ("save_total_limit", "-1", ">= 0 (0 or unset: keep every checkpoint)"),
    ("num_train_epochs", "nan", "a finite number > 0"), ("num_train_epochs", "inf", "a finite number > 0"),
]


# ---------------------------------------------------------------------------- get_input.py
GET_INPUT = [
    Case("seed-negative", "`--seed -1`", f"--seed must be {SEED}, not -1"),
    Case("seed-too-big", "`--seed 4294967296`", f"--seed must be {SEED}, not 4294967296"),
    Case("n-folds-0", "`--n_folds 0`", "--n_folds must be at least 2, not 0"),
    Case("n-folds-1", "`--n_folds 1`", "--n_folds must be at least 2, not 1"),
    Case("progress-interval-0", "`--progress_interval 0` (any command)",
         "--progress_interval must be a finite number of seconds > 0, not 0.0"),
]


def build_get_input(case: str, tmp: Path) -> list[str]:
    data, save = tmp / "DATA_DIR", tmp / "SAVE_DIR"
    random_fasta(data / "pos.fa", "p", 10, seed=3)
    random_fasta(data / "neg.fa", "n", 15, seed=4)
    io.write_text(save / "train.tsv", "seq\tlabel\nstale output of an earlier run\t1\n")
    argv = ["--kmer", "3", "--extend_len", "250", "--task", "finetune", "--do_val", "--data_dir", str(data),
            "--save_dir", str(save)]
    extra = {"seed-negative": ["--seed", "-1"], "seed-too-big": ["--seed", str(2**32)],
             "n-folds-0": ["--n_folds", "0"], "n-folds-1": ["--n_folds", "1"],
             "progress-interval-0": ["--progress_interval", "0"]}
    return argv + extra[case]


# ---------------------------------------------------------------------------- run_finetune_degradation.py
FT_RESULTS = {"eval_results.txt": "data 0.5 0.5 0.5 0.0 0.5 0.5\n", "eval_results.jsonl": '{"step": 2}\n',
              "best_checkpoint.json": '{"checkpoint": "checkpoint-2"}\n', "all_results.json": '{"eval_auc": 0.5}\n'}

RUN_FINETUNE = [
    *flag_cases([*OPTIMIZER_ROWS,
                 ("warmup_percent", "1.5", "in [0, 1]"), ("warmup_percent", "-0.1", "in [0, 1]"),
                 ("early_stop", "-1", ">= 0 (0: off)"),
                 ("hidden_dropout_prob", "1.5", "in [0, 1)"), ("attention_probs_dropout_prob", "-0.1", "in [0, 1)"),
                 ("hidden_dropout_prob", "nan", "in [0, 1)")]),
    Case("n-folds-1", "`--n_folds 1`", "--n_folds must be at least 2, not 1"),
    Case("cv-bad-fold-1", "`--n_folds 2`: a label `2` in `fold_1/train.tsv` (no fold is trained)",
         "{file}: row 3: label '2' is not 0 or 1", "DATA_DIR/fold_1/train.tsv"),
    Case("cv-bad-fold-1-dev", "`--n_folds 2`: 4-mers in `fold_1/dev.tsv` for a k=3 model (no fold is trained)",
         "{file}: row 1: k-mers of length 4, but the model is for k=3", "DATA_DIR/fold_1/dev.tsv"),
    Case("locked", "`--output_dir` locked by a live run", LOCK_MSG, "OUTPUT_DIR"),
    Case("locked-other-host", "`--output_dir` locked by a run on another host", HOST_MSG, "OUTPUT_DIR"),
    Case("cv-locked", "`--n_folds 2`, `--output_dir` locked by a live run", LOCK_MSG, "OUTPUT_DIR"),
]


def build_run_finetune(case: str, tmp: Path) -> list[str]:
    data, out, model = tmp / "DATA_DIR", tmp / "OUTPUT_DIR", tmp / "MODEL_PATH"
    write_split_dir(data, n=16)
    tiny_pretrained(model)
    previous_run(out, FT_RESULTS)
    argv = ["--model_type", "dna", "--task_name", "dnaprom", "--max_seq_length", "64", "--per_gpu_train_batch_size",
            "8", "--per_gpu_eval_batch_size", "16", "--learning_rate", "1e-3", "--logging_steps", "2",
            "--save_steps", "2", "--seed", "7", "--model_name_or_path", str(model), "--do_train",
            "--data_dir", str(data), "--output_dir", str(out), "--max_steps", "1", "--overwrite_output_dir"]
    if "=" in case:
        flag, value = case.split("=")
        return argv + [f"--{flag}={value}"]
    if case.startswith("cv-"):
        for i in range(2):
            write_split_dir(data / f"fold_{i}", n=16, seed=i)
        argv += ["--n_folds", "2", "--do_eval"]
    if case == "n-folds-1":
        argv += ["--n_folds", "1"]
    elif case == "cv-bad-fold-1":
        set_row(data / "fold_1" / "train.tsv", 3, kmer_row("ACGTACGTAA", 2))
    elif case == "cv-bad-fold-1-dev":
        write_split_dir(tmp / "k4", k=4, n=16)
        (data / "fold_1" / "dev.tsv").write_bytes((tmp / "k4" / "dev.tsv").read_bytes())
    elif case in ("locked", "cv-locked"):
        hold_lock(out)
    elif case == "locked-other-host":
        hold_lock(out, host="other-host.example")
    else:
        raise AssertionError(case)
    return argv


# ---------------------------------------------------------------------------- run_pretrain.py
PT_RESULTS = {"eval_results.txt": "3.5\n", "eval_results.jsonl": '{"step": 2}\n', "all_results.json": '{"k": 3}\n'}

RUN_PRETRAIN = [
    *flag_cases([*OPTIMIZER_ROWS, ("mlm_probability", "nan", "in (0, 1]")]),
    Case("block-size-2", "`--block_size 2`", "--block_size must be at least 3 ([CLS] k-mer [SEP]) or -1, not 2"),
    Case("locked", "`--output_dir` locked by a live run", LOCK_MSG, "OUTPUT_DIR"),
]


def build_run_pretrain(case: str, tmp: Path) -> list[str]:
    data, out = tmp / "DATA_DIR", tmp / "OUTPUT_DIR"
    train, eval_ = write_corpus(data / "train.txt", 8, seed=1), write_corpus(data / "eval.txt", 4, seed=2)
    previous_run(out, PT_RESULTS)
    argv = ["--config_name", "tiny", "--train_data_file", str(train), "--eval_data_file", str(eval_), "--do_train",
            "--do_eval", "--output_dir", str(out), "--max_steps", "1", "--per_gpu_train_batch_size", "4",
            "--per_gpu_eval_batch_size", "4", "--seed", "1", "--overwrite_output_dir"]
    if "=" in case:
        flag, value = case.split("=")
        return argv + [f"--{flag}={value}"]
    if case == "block-size-2":
        argv += ["--block_size", "2"]
    elif case == "locked":
        hold_lock(out)
    else:
        raise AssertionError(case)
    return argv


# ---------------------------------------------------------------------------- run_predict_degradation.py
RUN_PREDICT = [Case("locked", "`--predict_dir` locked by a live run", LOCK_MSG, "PREDICT_DIR"),
               Case("no-data", "neither `--data_dir` nor `--predict_fasta`",
                    "--data_dir is required (the folder with test.tsv) unless --predict_fasta is given")]


def build_run_predict(case: str, tmp: Path) -> list[str]:
    data, model, pred = tmp / "DATA_DIR", tmp / "OUTPUT_DIR", tmp / "PREDICT_DIR"
    write_split_dir(data, n=16)
    tiny_classifier(model)
    io.write_text(pred / "predictions.tsv", "row\tprobability\tpredicted_label\n0\t0.5\t0\n")
    if case == "no-data":
        return ["--output_dir", str(model), "--predict_dir", str(pred)]
    assert case == "locked", case
    hold_lock(pred)
    return ["--data_dir", str(data), "--output_dir", str(model), "--predict_dir", str(pred), "--max_seq_length", "64"]


# ---------------------------------------------------------------------------- visualize_all.py
VISUALIZE = [Case("locked", "`--output_dir` locked by a live run", LOCK_MSG, "OUTPUT_DIR")]


def build_visualize(case: str, tmp: Path) -> list[str]:
    data, model, out = tmp / "DATA_DIR", tmp / "MODEL_PATH", tmp / "OUTPUT_DIR"
    write_split_dir(data, n=16)
    tiny_classifier(model)
    io.write_text(out / "visualize_args.json", "{}\n")
    assert case == "locked", case
    hold_lock(out)
    return ["--model_path", str(model), "--data_dir", str(data), "--data_name", "dev", "--vis_task", "attn",
            "--output_dir", str(out), "--max_seq_length", "64", "--no_plot"]


# ---------------------------------------------------------------------------- the tests
SCRIPTS = {
    "get_input.py": (GET_INPUT, build_get_input),
    "run_pretrain.py": (RUN_PRETRAIN, build_run_pretrain),
    "run_finetune_degradation.py": (RUN_FINETUNE, build_run_finetune),
    "run_predict_degradation.py": (RUN_PREDICT, build_run_predict),
    "visualize_all.py": (VISUALIZE, build_visualize),
}
CASES = [(script, case) for script, (table, _) in SCRIPTS.items() for case in table]


def _main(script: str):
    import importlib

    return importlib.import_module(script.removesuffix(".py")).main


@pytest.mark.parametrize(("script", "case"), [pytest.param(s, c, id=f"{s}:{c.id}") for s, c in CASES])
def test_bad_flag(script, case, tmp_path, capsys):
    table, build = SCRIPTS[script]
    run_case(_main(script), build, case, tmp_path, capsys)


def test_case_ids_are_unique():
    for table, _ in SCRIPTS.values():
        assert len({c.id for c in table}) == len(table)


@pytest.mark.parametrize("case_id", ["learning_rate=nan", "locked"])
def test_real_process(case_id, tmp_path):
    """A real process: exit status 2, the one error line last, the old run intact."""
    case = next(c for c in RUN_FINETUNE if c.id == case_id)
    argv = build_run_finetune(case.id, tmp_path)
    before = snapshot(tmp_path)
    proc = subprocess.run([sys.executable, "run_finetune_degradation.py", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines and all(LOG_RECORD.match(ln) for ln in lines[:-1]), proc.stderr[-2000:]
    check_error(lines[-1], case, tmp_path, prog="run_finetune_degradation\\.py")
    assert snapshot(tmp_path) == before


if __name__ == "__main__":
    print(markdown_rows(CASES), end="")
