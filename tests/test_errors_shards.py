"""Shards and resumes that cannot mix runs (issue 18, section 5), as one-line errors.

Every row is a run that used to exit 0 and mix results of different runs: shards of different
models, flags or data merged, tables cut short or swapped between shards, a merge into a shard's
folder or from a shard still being written, hand-edited records, and resumes (reproduce_table.py,
run_finetune_degradation.py --n_folds) whose settings changed. Each must exit with status 2, print
the one line and leave every file as it was (the rows have the shape of tests/test_errors.py).

The runs the cases spoil are made once per module (a few seconds) and copied into each case's folder.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from test_errors import Case, random_fasta, run_case, truncate
from toy import tiny_classifier, tiny_pretrained, write_split_dir

from m6abert import io

PRED = ["--max_seq_length", "264", "--chunk_records", "2", "--per_gpu_pred_batch_size", "4", "--no_cuda"]
OTHER_RUN = "re-run the shards that differ with the same model, data and flags"
# the fields a shard.json of the version before this one did not have
NEW_FIELDS = ("fasta_sha256", "variants_sha256", "model", "model_identity", "max_seq_length", "precision",
              "dnabert_compat", "pos_relative_to_site", "batch_size")


def _another(what: str) -> str:
    return "{file}: a shard of another run than …: " + what + " differs (… here, … there); " + OTHER_RUN


# ---------------------------------------------------------------------------- merge_shards.py, predictions
MERGE = [
    Case("model", "prediction shards of different models (the model folder retrained in place between them)",
         _another("the model (SHA-256 of config.json and weights)"), "shard_1"),
    Case("max-seq-length", "prediction shards with different `--max_seq_length`", _another("--max_seq_length"),
         "shard_1"),
    Case("bf16", "prediction shards, one with `--bf16`", _another("the precision (--bf16, --fp16)"), "shard_1"),
    Case("dnabert-compat", "prediction shards, one with `--dnabert_compat`", _another("--dnabert_compat"), "shard_1"),
    Case("pos-relative", "prediction shards, one with `--pos_relative_to_site`", _another("--pos_relative_to_site"),
         "shard_1"),
    Case("batch-size", "prediction shards with different `--per_gpu_pred_batch_size`",
         _another("--per_gpu_pred_batch_size"), "shard_1"),
    Case("fasta-edited", "the FASTA edited between shard runs (same path, same number of records)",
         _another("the FASTA's content (SHA-256)"), "shard_1"),
    Case("variants-edited", "the `--variants` table edited between shard runs",
         _another("the --variants table's content (SHA-256)"), "shard_1"),
    Case("rows-missing", "a shard's `predictions.tsv` without its last rows",
         "{file}: 2 rows, but its shard holds 4; the file was cut short or replaced: re-run the shard",
         "shard_1/predictions.tsv"),
    Case("truncated", "a shard's `predictions.tsv` cut inside its last row",
         "{file}: row 4 is incomplete; the file was cut short: re-run the shard", "shard_1/predictions.tsv"),
    Case("replaced", "a shard's `predictions.tsv` replaced by another shard's (same number of rows)",
         "{file}: id r1 is also in …; a shard's table was replaced by another's or edited: re-run the shard",
         "shard_1/predictions.tsv"),
    Case("variant-rows", "a shard's `variant_effects.tsv` without a row",
         "{file}: 0 rows, but its shard holds 1; the file was cut short or replaced: re-run the shard",
         "shard_0/variant_effects.tsv"),
    Case("output-is-shard", "`--output_dir` is one of the shards (it used to delete the shard's `shard.json`)",
         "{file}: --output_dir is the shard folder …; the merged files must not go into a shard's folder (they "
         "would replace its files): give another --output_dir", "shard_1"),
    Case("output-in-shard", "`--output_dir` inside a shard's folder",
         "{file}: --output_dir is inside the shard folder …; the merged files must not go into a shard's folder "
         "(they would replace its files): give another --output_dir", "shard_0/merged"),
    Case("locked", "a shard folder that a live run holds (its run lock)",
         "{file}: in use by another run (pid … on host …, since …); wait for it or remove … if it is dead", "shard_1"),
    Case("wrong-type", "a hand-edited `shard.json`: `\"shard\": \"1\"`",
         "{file}: shard record field 'shard' must be an integer >= 0, not \"1\"", "shard_1/shard.json"),
    Case("wrong-type-records", "a hand-edited `shard.json`: `\"records\": 4`",
         "{file}: shard record field 'records' must be [first, stop], two integers, first <= stop, not 4",
         "shard_1/shard.json"),
    Case("older-version", "a `shard.json` of an older version (without the model, data checksums and flags)",
         "{file}: written by an older version of m6abert (no fasta_sha256, variants_sha256, model_identity, ...), "
         "which did not record what its results depend on; re-run the shard with this version", "shard_0/shard.json"),
]


def fasta_run(cache: Path) -> Path:
    """A tiny classifier, 8 records of 261 nt (r1 all A: its variant is valid at any position), a variants
    table, and the shards 0 and 1 of 2 of the prediction (2 chunks of 2 records each)."""
    base = cache / "fasta"
    if base.exists():
        return base
    tiny_classifier(base / "model")
    random_fasta(base / "in.fa", "r", 8, seed=5, length=261)
    text = (base / "in.fa").read_text().split("\n")
    text[1], text[2] = "A" * 250, "A" * 11  # record r1
    (base / "in.fa").write_text("\n".join(text))
    (base / "variants.tsv").write_text("r1\t5\tA\tG\n")
    for i in range(2):
        predict(base, base / f"shard_{i}", i)
    return base


def predict(base: Path, out: Path, shard: int, *extra: str) -> None:
    import run_predict_degradation

    run_predict_degradation.main(["--data_dir", str(base), "--output_dir", str(base / "model"), "--predict_fasta",
                                  str(base / "in.fa"), "--variants", str(base / "variants.tsv"), "--predict_dir",
                                  str(out), *PRED, "--shard", str(shard), "--num_shards", "2", *extra])


def build_merge(case: str, tmp: Path) -> list[str]:
    shutil.copytree(fasta_run(CACHE), tmp, dirs_exist_ok=True)
    s0, s1 = tmp / "shard_0", tmp / "shard_1"
    argv = ["--output_dir", str(tmp / "OUTPUT_DIR"), str(s0), str(s1)]
    flags = {"max-seq-length": ["--max_seq_length", "300"], "bf16": ["--bf16"], "dnabert-compat": ["--dnabert_compat"],
             "pos-relative": ["--pos_relative_to_site"], "batch-size": ["--per_gpu_pred_batch_size", "2"]}
    if case in flags:
        predict(tmp, s1, 1, *flags[case])
    elif case == "model":
        tiny_classifier(tmp / "model", seed=1)
        predict(tmp, s1, 1)
    elif case == "fasta-edited":
        lines = (tmp / "in.fa").read_text().split("\n")
        lines[4] = ("C" if lines[4][0] != "C" else "G") + lines[4][1:]  # record r2's first base
        (tmp / "in.fa").write_text("\n".join(lines))
        predict(tmp, s1, 1)
    elif case == "variants-edited":
        (tmp / "variants.tsv").write_text("r1\t6\tA\tT\n")
        predict(tmp, s1, 1)
    elif case == "rows-missing":
        lines = (s1 / "predictions.tsv").read_text().splitlines(keepends=True)
        (s1 / "predictions.tsv").write_text("".join(lines[:-2]))
    elif case == "truncated":
        truncate(s1 / "predictions.tsv")
    elif case == "replaced":
        shutil.copy(s0 / "predictions.tsv", s1 / "predictions.tsv")
    elif case == "variant-rows":
        lines = (s0 / "variant_effects.tsv").read_text().splitlines(keepends=True)
        (s0 / "variant_effects.tsv").write_text(lines[0])
    elif case == "output-is-shard":
        argv[1] = str(s1)
    elif case == "output-in-shard":
        argv[1] = str(s0 / "merged")
    elif case == "locked":  # a live process of this host (the one that started the tests) holds the lock
        owner = {"pid": os.getppid(), "host": socket.gethostname(), "since": "2024-05-01T10:00:00+00:00"}
        (s1 / io.LOCK_NAME).write_text(json.dumps(owner))
    elif case in ("wrong-type", "wrong-type-records"):
        record = json.loads((s1 / "shard.json").read_text())
        record.update({"shard": "1"} if case == "wrong-type" else {"records": 4})
        (s1 / "shard.json").write_text(json.dumps(record))
    elif case == "older-version":
        record = json.loads((s0 / "shard.json").read_text())
        (s0 / "shard.json").write_text(json.dumps({k: v for k, v in record.items() if k not in NEW_FIELDS}))
    else:
        raise AssertionError(case)
    return argv


# ---------------------------------------------------------------------------- merge_shards.py, scores
SCORES = [
    Case("scores-model", "`visualize_all.py --shard` shards of different models (retrained in place)",
         _another("the model (SHA-256 of config.json and weights)"), "s1/atten_test.npy.json"),
    Case("scores-compat", "score shards, one with `--dnabert_compat`", _another("--dnabert_compat"),
         "s1/atten_test.npy.json"),
    Case("scores-max-seq-length", "score shards with different `--max_seq_length`", _another("--max_seq_length"),
         "s1/atten_test.npy.json"),
    Case("scores-batch-size", "score shards with `--batch_size` 4 and 8 (the same rows each)", _another("--batch_size"),
         "s1/atten_test.npy.json"),
    Case("scores-older", "a score shard of an older version (no model identity in its `.npy.json`)",
         "{file}: written by an older version of m6abert (no model_identity), which did not record what its results "
         "depend on; re-run the shard with this version", "s0/atten_test.npy.json"),
    Case("scores-qc-cut", "an attr shard's `attributions_test_qc.tsv` without its last row",
         "{file}: 11 rows, but its shard holds 12; the file was cut short or replaced: re-run the shard",
         "a1/attributions_test_qc.tsv"),
    Case("scores-ids-cut", "a score shard's ids table `atten_test.ids.tsv` without its last row",
         "{file}: 11 rows, but its shard holds 12; the file was cut short or replaced: re-run the shard",
         "s1/atten_test.ids.tsv"),
]
ATTN = ["--vis_task", "attn", "--batch_size", "4"]
ATTR = ["--vis_task", "attr", "--batch_size", "4", "--n_steps", "4", "--n_baselines", "2"]


def visualize(base: Path, out: Path, shard: int, task: list[str], *extra: str) -> None:
    import visualize_all

    visualize_all.main(["--kmer", "3", "--model_path", str(base / "model"), "--data_dir", str(base / "data"),
                        "--data_name", "test", "--max_seq_length", "64", "--no_plot", "--output_dir", str(out),
                        *task, "--shard", str(shard), "--num_shards", "2", *extra])


def score_run(cache: Path) -> Path:
    """A tiny classifier, a test.tsv of 20 rows and the attn shards s0, s1 (rows 0..8, 8..20) and attr shards a0, a1."""
    base = cache / "scores"
    if base.exists():
        return base
    tiny_classifier(base / "model")
    write_split_dir(base / "data", n=40)
    for i in range(2):
        visualize(base, base / f"s{i}", i, ATTN)
        visualize(base, base / f"a{i}", i, ATTR)
    return base


def build_scores(case: str, tmp: Path) -> list[str]:
    shutil.copytree(score_run(CACHE), tmp, dirs_exist_ok=True)
    s1 = tmp / "s1"
    dirs = ["a0", "a1"] if case == "scores-qc-cut" else ["s0", "s1"]
    argv = ["--output_dir", str(tmp / "OUTPUT_DIR"), *(str(tmp / d) for d in dirs)]
    flags = {"scores-compat": ["--dnabert_compat"], "scores-max-seq-length": ["--max_seq_length", "100"],
             "scores-batch-size": ["--batch_size", "8"]}
    if case in flags:
        visualize(tmp, s1, 1, ATTN, *flags[case])
    elif case == "scores-model":
        tiny_classifier(tmp / "model", seed=1)
        visualize(tmp, s1, 1, ATTN)
    elif case == "scores-older":
        for name in ("atten_test.npy.json", "pred_results_test.npy.json"):
            path = tmp / "s0" / name
            if path.exists():
                meta = json.loads(path.read_text())
                path.write_text(json.dumps({k: v for k, v in meta.items() if k != "model_identity"}))
    elif case in ("scores-qc-cut", "scores-ids-cut"):
        table = tmp / "a1" / "attributions_test_qc.tsv" if case == "scores-qc-cut" else s1 / "atten_test.ids.tsv"
        table.write_text("".join(table.read_text().splitlines(keepends=True)[:-1]))
    else:
        raise AssertionError(case)
    return argv


# ---------------------------------------------------------------------------- reproduce_table.py --should_continue
TINY = {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64,
        "max_position_embeddings": 512}
TABLE = [
    Case("config-edited", "`--should_continue` after the `--config_name` JSON was edited",
         "{file}: --should_continue with settings or data that differ from the run there (config_sha256); use "
         "another --output_dir or --overwrite_output_dir", "OUTPUT_DIR"),
    Case("settings-missing", "`--should_continue` with `runs/settings.json` missing",
         "{file}: missing, so the run in … cannot be checked against these settings before it is continued; start "
         "over with --overwrite_output_dir (or use another --output_dir)", "OUTPUT_DIR/runs/settings.json"),
    Case("settings-older", "`--should_continue` on a run of an older version (no config checksum in its settings)",
         "{file}: written by an older version of m6abert, which did not record the --config_name file's content; "
         "start over with --overwrite_output_dir", "OUTPUT_DIR/runs/settings.json"),
]


def table_argv(base: Path, *extra: str) -> list[str]:
    return ["--data_path", str(base / "DATA_PATH"), "--output_dir", str(base / "OUTPUT_DIR"), "--config_name",
            str(base / "config.json"), "--n_folds", "2", "--models", "gc_lr", "--n_bootstrap", "200", *extra]


def table_run(cache: Path) -> Path:
    """A finished reproduce_table.py run of the GC-content baseline (its settings name a config.json file)."""
    base = cache / "table"
    if base.exists():
        return base
    random_fasta(base / "DATA_PATH" / "pos.fa", "p", 12, seed=1, length=101)
    random_fasta(base / "DATA_PATH" / "neg.fa", "n", 24, seed=2, length=101)
    (base / "config.json").write_text(json.dumps(TINY))
    from m6abert.cli import table

    table.main(table_argv(base))
    return base


def build_table(case: str, tmp: Path) -> list[str]:
    shutil.copytree(table_run(CACHE), tmp, dirs_exist_ok=True)
    settings = tmp / "OUTPUT_DIR" / "runs" / "settings.json"
    if case == "config-edited":
        (tmp / "config.json").write_text(json.dumps({**TINY, "hidden_size": 64}))
    elif case == "settings-missing":
        settings.unlink()
    elif case == "settings-older":
        old = json.loads(settings.read_text())
        settings.write_text(json.dumps({k: v for k, v in old.items() if k != "config_sha256"}))
    else:
        raise AssertionError(case)
    return table_argv(tmp, "--should_continue")


# ---------------------------------------------------------------------------- run_finetune_degradation.py --n_folds
CV = [
    Case("cv-learning-rate", "`--n_folds --should_continue` with another `--learning_rate` (it used to keep the old "
         "folds and record the new rate)", "{file}: --should_continue with fine-tuning settings or data that differ "
         "from the folds there (learning_rate); start over with --overwrite_output_dir or use another --output_dir",
         "OUTPUT_DIR"),
    Case("cv-model-retrained", "`--n_folds --should_continue` after the pretrained model was replaced (same path)",
         "{file}: --should_continue with fine-tuning settings or data that differ from the folds there "
         "(model_identity); start over with --overwrite_output_dir or use another --output_dir", "OUTPUT_DIR"),
    Case("cv-fold-edited", "`--n_folds --should_continue` after a fold's `train.tsv` changed",
         "{file}: --should_continue with fine-tuning settings or data that differ from the folds there "
         "(data_sha256); start over with --overwrite_output_dir or use another --output_dir", "OUTPUT_DIR"),
    Case("cv-older", "`--n_folds --should_continue` on folds of an older version (no `cv_settings.json`)",
         "{file}: missing: the folds in … were written by an older version of m6abert (or another command) and "
         "cannot be checked against these settings; start over with --overwrite_output_dir",
         "OUTPUT_DIR/cv_settings.json"),
    Case("resume-learning-rate", "`--should_continue` (one run) with another `--learning_rate`",
         "{file}: --should_continue with fine-tuning settings or data that differ from the run there "
         "(learning_rate); start over with --overwrite_output_dir or use another --output_dir", "OUTPUT_DIR/fold_0"),
]
CV_ARGS = ["--max_seq_length", "64", "--per_gpu_train_batch_size", "8", "--per_gpu_eval_batch_size", "16",
           "--logging_steps", "2", "--save_steps", "2", "--evaluate_during_training", "--seed", "7", "--max_steps", "2",
           "--do_train", "--do_eval", "--n_folds", "2"]


def cv_argv(base: Path, *extra: str) -> list[str]:
    return [*CV_ARGS, "--model_name_or_path", str(base / "MODEL_PATH"), "--data_dir", str(base / "DATA_DIR"),
            "--output_dir", str(base / "OUTPUT_DIR"), *extra]


def cv_run(cache: Path) -> Path:
    """Two folds of a split folder and a finished 2-fold cross-validation (learning rate 1e-3) of a tiny model."""
    base = cache / "cv"
    if base.exists():
        return base
    for i in range(2):
        write_split_dir(base / "DATA_DIR" / f"fold_{i}", n=16, seed=i)
    tiny_pretrained(base / "MODEL_PATH")
    import run_finetune_degradation

    run_finetune_degradation.main(cv_argv(base, "--learning_rate", "1e-3"))
    return base


def build_cv(case: str, tmp: Path) -> list[str]:
    shutil.copytree(cv_run(CACHE), tmp, dirs_exist_ok=True)
    lr = "1e-2" if case == "cv-learning-rate" else "1e-3"
    if case == "cv-model-retrained":
        tiny_pretrained(tmp / "MODEL_PATH", seed=1)
    elif case == "cv-fold-edited":
        write_split_dir(tmp / "DATA_DIR" / "fold_1", n=16, seed=9)
    elif case == "cv-older":
        (tmp / "OUTPUT_DIR" / "cv_settings.json").unlink()
    elif case == "resume-learning-rate":  # fold 0's folder is one whole run: resume it alone
        argv = cv_argv(tmp, "--learning_rate", "1e-2", "--should_continue")
        i = argv.index("--n_folds")
        argv = argv[:i] + argv[i + 2:]
        argv[argv.index("--data_dir") + 1] += "/fold_0"
        argv[argv.index("--output_dir") + 1] += "/fold_0"
        return argv
    elif case != "cv-learning-rate":
        raise AssertionError(case)
    return cv_argv(tmp, "--learning_rate", lr, "--should_continue")


# ---------------------------------------------------------------------------- the table and its test
CASES = ([("merge_shards.py", c) for c in MERGE + SCORES] + [("reproduce_table.py", c) for c in TABLE]
         + [("run_finetune_degradation.py", c) for c in CV])
BUILDERS = {"merge": (MERGE, build_merge, "merge_shards"), "scores": (SCORES, build_scores, "merge_shards"),
            "table": (TABLE, build_table, "reproduce_table"), "cv": (CV, build_cv, "run_finetune_degradation")}
CACHE = Path()


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory):
    """The folder of the runs made once per module (the builders copy them)."""
    global CACHE
    CACHE = tmp_path_factory.mktemp("runs")
    return CACHE


@pytest.mark.parametrize("kind, case", [pytest.param(kind, c, id=f"{kind}-{c.id}")
                                        for kind, (table, _, _) in BUILDERS.items() for c in table])
def test_case(kind, case, tmp_path, capsys):
    import importlib

    _, build, script = BUILDERS[kind]
    run_case(importlib.import_module(script).main, build, case, tmp_path, capsys)


def test_the_unspoilt_runs_merge_and_resume(tmp_path):
    """The runs the cases spoil are good: their shards merge, and the resumes with unchanged settings run."""
    import merge_shards
    import run_finetune_degradation
    from m6abert.cli import table

    base = fasta_run(CACHE)
    merge_shards.main(["--output_dir", str(tmp_path / "m"), str(base / "shard_0"), str(base / "shard_1")])
    assert np.load(tmp_path / "m" / "pred_results.npy").shape == (8,)
    scores = score_run(CACHE)
    merge_shards.main(["--output_dir", str(tmp_path / "ms"), str(scores / "s0"), str(scores / "s1")])
    assert np.load(tmp_path / "ms" / "atten_test.npy").shape[0] == 20
    shutil.copytree(table_run(CACHE), tmp_path / "t")
    table.main(table_argv(tmp_path / "t", "--should_continue"))
    shutil.copytree(cv_run(CACHE), tmp_path / "cv")
    run_finetune_degradation.main(cv_argv(tmp_path / "cv", "--learning_rate", "1e-3", "--should_continue"))
    assert json.loads((tmp_path / "cv" / "OUTPUT_DIR" / "cv_results.json").read_text())["n_folds"] == 2

