"""The exported model of a fine-tuning run: which step it is, and what Hugging Face users get.

With ``--evaluate_during_training`` the final folder holds the best checkpoint by the dev
``--metric_for_best_model`` (the last step under ``--dnabert_compat`` or without evaluation), also
after a preempted run is resumed. The folder loads with ``AutoTokenizer`` (raw sequences are cut into
k-mers) and ``AutoModelForSequenceClassification`` (classes named not_degraded/degraded), and holds
a model card. The runs plant their dev metrics: the real evaluation runs, then its AUC and loss are
replaced by a table by step, so that a middle step is the best.

``CASES`` lists the bad inputs of ``--metric_for_best_model`` and of a resumed run's best checkpoint
for docs/errors.md (tests/test_errors.py's ``Case`` rows).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "tests"):  # for `python tests/test_export.py`
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from test_errors import Case, markdown_rows, run_case  # noqa: E402
from toy import random_seq, tiny_classifier, tiny_pretrained, write_split_dir  # noqa: E402

import run_finetune_degradation as ft  # noqa: E402
from m6abert import __version__, finetune, io, kmer  # noqa: E402
from m6abert.cli import finetune as ft_cli  # noqa: E402
from m6abert.metrics import classification_metrics  # noqa: E402
from m6abert.model import LABELS, load_model  # noqa: E402
from m6abert.preempt import Preempted  # noqa: E402

# planted dev metrics by evaluated step: AUC is best at step 4, the loss at step 6; step 8 is saved anyway
AUC = {2: 0.70, 4: 0.90, 6: 0.80, 8: 0.60}
LOSS = {2: 0.69, 4: 0.66, 6: 0.60, 8: 0.63}
ARGS = ["--max_seq_length", "64", "--per_gpu_train_batch_size", "8", "--per_gpu_eval_batch_size", "16",
        "--learning_rate", "1e-3", "--logging_steps", "2", "--save_steps", "8", "--save_total_limit", "1",
        "--seed", "7", "--max_steps", "8", "--tokenizer_name", "dna3", "--do_train"]
EVAL = ["--evaluate_during_training", "--do_eval"]


def planted_evaluator(stop_at: int | None = None):
    """``finetune.evaluator`` whose evaluations during training report AUC[step] and LOSS[step]
    (the final --do_eval, step -1, is real); at ``stop_at`` it sends this process SIGTERM (a preemption)."""
    real = finetune.evaluator

    def factory(*args, **kwargs):
        evaluate = real(*args, **kwargs)

        def planted(model, step):
            metrics, line = evaluate(model, step)
            if step in AUC:
                metrics.update(auc=AUC[step], loss=LOSS[step])
            if step == stop_at:
                os.kill(os.getpid(), signal.SIGTERM)
            return metrics, line

        return planted

    return factory


def finetune_run(base: Path, out: Path, *extra: str, stop_at: int | None = None) -> dict:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(finetune, "evaluator", planted_evaluator(stop_at))
        return ft_cli.run([*ARGS, "--model_name_or_path", str(base / "pre"), "--data_dir", str(base / "data"),
                           "--output_dir", str(out), *extra])


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Data, a tiny pretrained model, and the runs: best by AUC (the reference, its log lines), by loss,
    --dnabert_compat, without evaluation."""
    base = tmp_path_factory.mktemp("export")
    write_split_dir(base / "data", n=16)
    tiny_pretrained(base / "pre")
    handler, logger = Lines(), logging.getLogger("m6abert")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        finetune_run(base, base / "best", *EVAL)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    base.joinpath("best.log").write_text("\n".join(handler.lines))
    finetune_run(base, base / "loss", *EVAL, "--metric_for_best_model", "loss")
    finetune_run(base, base / "compat", *EVAL, "--dnabert_compat")
    finetune_run(base, base / "last")
    return base


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)


def results(folder: Path) -> dict:
    return json.loads((folder / "all_results.json").read_text())


# ---------------------------------------------------------------------------- which step is exported
def test_best_step_by_auc_is_exported_and_logged(runs):
    out = runs / "best"
    assert sorted(p.name for p in io.list_checkpoints(out)) == ["checkpoint-4", "checkpoint-8"]  # best kept
    final = weights(out)
    assert same(final, weights(out / "checkpoint-4")) and not same(final, weights(out / "checkpoint-8"))
    exported = results(out)["exported"]
    assert exported["step"] == 4 and exported["checkpoint"] == "checkpoint-4"
    assert exported["selected_by"] == "best dev auc (higher is better)" and exported["dev_metrics"]["auc"] == 0.9
    assert json.loads((out / "best_checkpoint.json").read_text())["step"] == 4
    lines = [ln for ln in (runs / "best.log").read_text().splitlines() if ln.startswith("final model:")]
    assert len(lines) == 1 and lines[0].startswith("final model: step 4 of 8, best dev auc (higher is better); "
                                                   "dev acc=")
    assert "auc=0.9000" in lines[0] and "loss=0.6600" in lines[0]


def test_loss_chooses_the_lowest(runs):
    out = runs / "loss"
    exported = results(out)["exported"]
    assert exported["step"] == 6 and exported["selected_by"] == "best dev loss (lower is better)"
    assert same(weights(out), weights(out / "checkpoint-6"))


def test_dnabert_compat_exports_the_last_step(runs):
    out = runs / "compat"
    exported = results(out)["exported"]
    assert exported == {"step": 8, "checkpoint": None, "selected_by": "last step (--dnabert_compat)",
                        "dev_metrics": exported["dev_metrics"]}
    assert exported["dev_metrics"]["auc"] == AUC[8]  # the metrics of the step exported
    assert same(weights(out), weights(out / "checkpoint-8")) and not same(weights(out), weights(out / "checkpoint-4"))
    assert json.loads((out / "best_checkpoint.json").read_text())["step"] == 4  # still recorded


def test_without_evaluation_the_last_step(runs):
    out = runs / "last"
    exported = results(out)["exported"]
    assert exported == {"step": 8, "checkpoint": None, "selected_by": "last step (no --evaluate_during_training)",
                        "dev_metrics": None}
    assert same(weights(out), weights(out / "checkpoint-8")) and not (out / "best_checkpoint.json").exists()


def test_resumed_run_exports_the_same_model(runs, tmp_path):
    """Preempted at step 6 (after the best, step 4): the resumed run exports checkpoint-4 as the
    uninterrupted run did, with the same records."""
    out = tmp_path / "o"
    with pytest.raises(Preempted):
        finetune_run(runs, out, *EVAL, stop_at=6)
    assert sorted(p.name for p in io.list_checkpoints(out)) == ["checkpoint-4", "checkpoint-6"]
    assert not (out / "model.safetensors").exists()
    finetune_run(runs, out, *EVAL, "--should_continue")
    ref = runs / "best"
    assert same(weights(out), weights(ref)) and same(weights(out), weights(ref / "checkpoint-4"))
    assert results(out)["exported"] == results(ref)["exported"]
    for name in ("best_checkpoint.json", "eval_results.jsonl", "eval_results.txt"):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name


def test_metric_names_are_the_evaluations(runs):
    """--metric_for_best_model takes exactly the keys the dev evaluation computes (listed in --help)."""
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.4]], dtype=np.float32)
    assert set(finetune.BEST_METRICS) == {*classification_metrics(np.array([1, 0, 0]), logits), "loss"}
    first = json.loads((runs / "best" / "eval_results.jsonl").read_text().splitlines()[0])
    assert {f"eval_{m}" for m in finetune.BEST_METRICS} <= set(first)
    assert all(name in ft_cli.build_parser().format_help() for name in finetune.BEST_METRICS)


# ---------------------------------------------------------------------------- what Hugging Face users get
def test_auto_classes_load_the_exported_folder(runs):
    """AutoTokenizer cuts a raw sequence into the toolkit's k-mer ids; AutoModelForSequenceClassification
    holds the exported weights (the toolkit's logits) and names the classes."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = runs / "best"
    tok = AutoTokenizer.from_pretrained(str(out))
    model = AutoModelForSequenceClassification.from_pretrained(str(out)).eval()
    assert model.config.id2label == {0: "not_degraded", 1: "degraded"}
    assert model.config.label2id == {"not_degraded": 0, "degraded": 1}
    seqs = [random_seq(np.random.RandomState(i), n) for i, n in enumerate((61, 40))]
    batch = tok(seqs, padding=True, return_tensors="pt")
    expected = [[kmer.CLS_ID, *kmer.encode(s, 3).tolist(), kmer.SEP_ID] for s in seqs]
    assert [row[row != kmer.PAD_ID].tolist() for row in batch["input_ids"]] == expected
    assert tok([kmer.seq2kmer(s, 3) for s in seqs], padding=True, return_tensors="pt")["input_ids"].equal(
        batch["input_ids"])
    ours = load_model(str(out), fine_tuned=True).model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, ours(**batch).logits)


@pytest.mark.parametrize("k", [3, 4, 5, 6])
def test_tokenizer_cuts_raw_sequences(tmp_path, k):
    """Raw sequences in any case, with U and other letters, give kmer.encode's ids; k-mer sentences
    give them too; a word shorter than k is one [UNK]; special tokens in the text are kept."""
    from transformers import AutoTokenizer

    io.write_tokenizer_files(tmp_path, k)
    tok = AutoTokenizer.from_pretrained(str(tmp_path))
    rng = np.random.RandomState(k)
    seqs = [random_seq(rng, n) for n in (k, k + 1, 30, 501)] + ["acguNNACGUaaaRYacgt", "ACGT" * 3 + "X" + "GGCA" * 3]
    for s in seqs:
        expected = [kmer.CLS_ID, *kmer.encode(s, k).tolist(), kmer.SEP_ID]
        assert tok(s)["input_ids"] == expected, s
        assert tok(kmer.seq2kmer(s, k))["input_ids"] == expected, s
    assert tok.convert_ids_to_tokens(tok("AC")["input_ids"]) == ["[CLS]", "[UNK]", "[SEP]"]
    assert tok("ACGTACGT [MASK]")["input_ids"][-2:] == [kmer.MASK_ID, kmer.SEP_ID]
    assert len(tok("A" * 600, truncation=True)["input_ids"]) == 512


def test_old_classifiers_with_label_0_1_still_load(tmp_path):
    folder = tiny_classifier(tmp_path / "old")
    config = json.loads((folder / "config.json").read_text())
    config.update(id2label={"0": "LABEL_0", "1": "LABEL_1"}, label2id={"LABEL_0": 0, "LABEL_1": 1})
    (folder / "config.json").write_text(json.dumps(config))
    model = load_model(str(folder), fine_tuned=True).model
    assert model.config.id2label == dict(enumerate(LABELS))


def test_model_card(runs):
    card = (runs / "best" / "README.md").read_text()
    data = runs / "data"
    for text in ("# m6A-BERT-Deg: mRNA degradation classifier (k = 3)", f"fine-tuned with m6abert {__version__}",
                 f"- Base model: `{runs / 'pre'}`", "- Labels: 0 = not_degraded, 1 = degraded",
                 "- Exported: step 4 of 8, best dev auc (higher is better) (checkpoint-4)",
                 f"| train | `{data / 'train.tsv'}` | 16 |", f"| dev | `{data / 'dev.tsv'}` | 8 |",
                 "| metric | dev, exported step | dev, final model (--do_eval) |", "| auc | 0.9000 | ",
                 "AutoModelForSequenceClassification.from_pretrained", "AutoTokenizer.from_pretrained",
                 "overlapping 3-mers", "m6abert.kmer.seq2kmer(seq, 3)"):
        assert text in card, text
    do_eval = results(runs / "best")["eval_auc"]
    assert f"| auc | 0.9000 | {do_eval:.4f} |" in card
    assert "No dev metrics were computed" in (runs / "last" / "README.md").read_text()


# ---------------------------------------------------------------------------- bad input
def checkpoint_of_a_run(out: Path, step: int, best_step: int) -> None:
    """A toolkit ``checkpoint-{step}`` whose loop state names ``checkpoint-{best_step}`` the best by AUC
    (that folder is not written)."""
    ckpt = out / f"checkpoint-{step}"
    tiny_classifier(ckpt)
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        torch.save({}, ckpt / name)
    best = {"checkpoint": f"checkpoint-{best_step}", "step": best_step, "metric": 0.9, "metric_name": "auc",
            "metrics": {"auc": 0.9}}
    io.write_json(ckpt / "trainer_state.json", {"global_step": step, "epoch": 0, "batch_in_epoch": step,
                                                "best": best})
    io.write_json(ckpt / io.CHECKPOINT_MARKER, io.checkpoint_marker(step))


def build_export(case: str, tmp: Path) -> list[str]:
    data, out, model = tmp / "DATA_DIR", tmp / "OUTPUT_DIR", tmp / "MODEL_PATH"
    write_split_dir(data, n=16)
    tiny_pretrained(model)
    argv = [*ARGS, *EVAL, "--model_name_or_path", str(model), "--data_dir", str(data), "--output_dir", str(out)]
    if case == "metric-unknown":
        return argv + ["--metric_for_best_model", "auroc"]
    checkpoint_of_a_run(out, 4, 2)
    if case == "resume-other-metric":
        tiny_classifier(out / "checkpoint-2")
        return argv + ["--should_continue", "--metric_for_best_model", "loss"]
    if case == "resume-best-missing":
        return argv + ["--should_continue"]
    raise AssertionError(case)


METRICS = ", ".join(finetune.BEST_METRICS)
EXPORT = [
    Case("metric-unknown", "`--metric_for_best_model auroc`",
         f"--metric_for_best_model must be one of {METRICS}, not 'auroc'"),
    Case("resume-other-metric", "`--should_continue --metric_for_best_model loss` for a run whose best is by AUC",
         "{file}: this run chose its best checkpoint by dev auc; resume it with --metric_for_best_model auc",
         "OUTPUT_DIR/checkpoint-4/trainer_state.json"),
    Case("resume-best-missing", "`--should_continue` when the run's best checkpoint-2 is gone (it is exported)",
         "{file}: missing: the run's best checkpoint so far (dev auc 0.9 at step 2), which is exported as the final "
         "model; restore it, or start over with --overwrite_output_dir", "OUTPUT_DIR/checkpoint-2"),
]
CASES = [("run_finetune_degradation.py", case) for case in EXPORT]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in EXPORT])
def test_bad_input(case, tmp_path, capsys):
    run_case(ft.main, build_export, case, tmp_path, capsys)


if __name__ == "__main__":
    print(markdown_rows(CASES), end="")
