"""The paper's comparison table (reproduce_table.py): five models on the same stratified folds.

:func:`run_table` writes the folds of ``get_input.py --n_folds`` (:func:`m6abert.splits.make_inputs`),
pretrains m6A-BERT once (:func:`m6abert.pretrain.run_pretrain`) on a corpus that holds no
fine-tuning sequence (by default the negatives that balanced sampling left out), then for every
model and fold trains on the other folds and predicts the fold:

* ``m6a_bert_deg``: the pretrained BERT fine-tuned (:func:`m6abert.finetune.run_finetune`);
* ``bert_scratch``: the same architecture fine-tuned from random initialisation;
* ``cnn_lstm``: :class:`m6abert.baselines.CnnLstmForSequenceClassification`, trained by the same loop;
* ``kmer_lr``: k-mer frequency logistic regression, k chosen by inner CV on the training folds;
* ``gc_lr``: GC-content logistic regression.

Each model/fold result (out-of-fold P(class 1) and the metrics fine-tuning reports) is written to
``runs/{model}/fold_{i}.json`` as it finishes; with ``should_continue`` a killed run resumes there
(an interrupted BERT fold from its latest checkpoint when ``save_steps`` is set) and ends with the
same table. The table (:func:`summarise`) is computed from those records only.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import io
from .kmer import normalise
from .metrics import (
    classification_metrics,
    paired_bootstrap_auc,
    paired_t_interval,
    softmax_p1,
    summarise_folds,
)
from .splits import fold_records, kfold_splits, make_inputs, pretrain_corpus, unused_negatives
from .utils import InputError, log, set_seed

MODELS = ("m6a_bert_deg", "bert_scratch", "cnn_lstm", "kmer_lr", "gc_lr")
LABELS = {"m6a_bert_deg": "m6A-BERT-Deg", "bert_scratch": "BERT-Deg, no pretraining", "cnn_lstm": "CNN+LSTM-Deg",
          "kmer_lr": "k-mer frequency LR", "gc_lr": "GC-content LR"}
REFERENCE = "m6a_bert_deg"
COLUMNS = (("acc", "ACC"), ("auc", "AUC"), ("mcc", "MCC"), ("f1", "F1 (macro)"), ("precision", "precision (macro)"),
           ("recall", "recall (macro)"), ("aupr", "AUPR"))
MAX_SEQ_LENGTH = 512
# what --overwrite_output_dir removes (a user's other files stay)
TABLE_OUTPUTS = ("table.md", "table.json", "per_fold.tsv", "oof_predictions.tsv", "roc.png", "roc.pdf",
                 "auc_per_fold.png", "auc_per_fold.pdf", "table_args.json", "timings.json")
OWNED = ("data", "pretrain_data", "runs", *TABLE_OUTPUTS)
NOT_RESULTS = ("output_dir", "models", "should_continue", "overwrite_output_dir", "run_args", "n_bootstrap")


@dataclass(frozen=True)
class TableSettings:
    """Everything reproduce_table.py does; field names are its flags.

    ``pretrain_corpus`` None pretrains on the negatives that balanced sampling did not use;
    ``save_steps`` > 0 also checkpoints BERT pretraining and fine-tuning every so many steps (a
    killed run then resumes inside the interrupted fold), 0 resumes at the start of it.
    """

    data_path: str
    output_dir: str
    k: int = 3
    config_name: str = "mini"
    models: tuple[str, ...] = MODELS
    n_folds: int = 5
    seed: int = 52
    pretrain_corpus: str | None = None
    pretrain_steps: int = 1000
    pretrain_batch_size: int = 16
    pretrain_learning_rate: float = 4e-4
    finetune_epochs: float = 3.0
    learning_rate: float = 5e-5
    batch_size: int = 16
    cnn_epochs: float = 10.0
    cnn_learning_rate: float = 1e-3
    kmer_ks: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    inner_folds: int = 5
    n_bootstrap: int = 2000
    save_steps: int = 0
    bf16: bool = False
    no_cuda: bool = False
    should_continue: bool = False
    overwrite_output_dir: bool = False
    run_args: dict = field(default_factory=dict)


class Plan(NamedTuple):
    """A run with every input read and checked, before anything is written."""

    folds: list[tuple[list[io.FastaRecord], list[int]]]  # each fold's (records, labels), dev-set order
    corpus: dict[str, list[str]] | None  # {"{k}_train", "{k}_val"} k-mer sentences, when pretraining
    corpus_info: dict
    fingerprint: dict


# ---------------------------------------------------------------------------- training arguments
def pretrain_args(s: TableSettings):
    """DNABERT's pretraining optimiser (AdamW eps 1e-6, beta2 0.98, weight decay 0.01, 5 % warm-up)."""
    from .train import TrainArgs

    return TrainArgs(seed=s.seed, per_gpu_train_batch_size=s.pretrain_batch_size, learning_rate=s.pretrain_learning_rate,
                     weight_decay=0.01, adam_epsilon=1e-6, beta2=0.98, max_steps=s.pretrain_steps, warmup_percent=0.05,
                     logging_steps=0, save_steps=s.save_steps, save_total_limit=1, bf16=s.bf16)


def finetune_args(s: TableSettings):
    """Fine-tuning of both BERTs: weight decay 0.01, 10 % warm-up, no evaluation on the dev (= test) fold."""
    from .train import TrainArgs

    return TrainArgs(seed=s.seed, per_gpu_train_batch_size=s.batch_size, learning_rate=s.learning_rate,
                     weight_decay=0.01, num_train_epochs=s.finetune_epochs, warmup_percent=0.1, logging_steps=0,
                     save_steps=s.save_steps, save_total_limit=1, bf16=s.bf16)


def cnn_args(s: TableSettings):
    """The CNN+LSTM's optimiser, always float32 (it is cheap: bfloat16 would save little time, measured)."""
    from .train import TrainArgs

    return TrainArgs(seed=s.seed, per_gpu_train_batch_size=s.batch_size, learning_rate=s.cnn_learning_rate,
                     weight_decay=0.01, num_train_epochs=s.cnn_epochs, logging_steps=0, save_steps=0)


# ---------------------------------------------------------------------------- checks before work
def _fingerprint(s: TableSettings, data: Path) -> dict:
    """What the results depend on: the settings (not the output folder or model subset) and the data."""
    fp = {f: getattr(s, f) for f in s.__dataclass_fields__ if f not in NOT_RESULTS}
    fp.update(kmer_ks=list(s.kmer_ks), data_path=None,
              data_sha256={n: io.file_sha256(data / n) for n in ("pos.fa", "neg.fa")})
    if s.pretrain_corpus:
        fp.update(pretrain_corpus=None, pretrain_corpus_sha256=io.file_sha256(s.pretrain_corpus))
    from .model import PRESETS

    # the content of a --config_name file, not its path: an edited config.json must not resume
    fp["config_sha256"] = None if s.config_name in PRESETS else io.file_sha256(s.config_name)
    if fp["config_sha256"]:
        fp["config_name"] = None
    return fp


def _check_output_dir(s: TableSettings, fingerprint: dict) -> None:
    """Refuse a non-empty folder without a flag, and a resumed folder of other settings or data."""
    out = Path(s.output_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory")
    if not io.has_outputs(out):
        return
    if not (s.should_continue or s.overwrite_output_dir):
        raise InputError(f"{out}: output directory exists and is not empty; use --should_continue to resume "
                         "or --overwrite_output_dir")
    old_path = out / "runs" / "settings.json"
    if s.should_continue and not old_path.exists() and any((out / name).exists() for name in OWNED):
        raise InputError(f"{old_path}: missing, so the run in {out} cannot be checked against these settings before "
                         "it is continued; start over with --overwrite_output_dir (or use another --output_dir)")
    if s.should_continue and old_path.exists():
        old = io.read_json(old_path, "settings of the run to continue")
        if "config_sha256" not in old:
            raise InputError(f"{old_path}: written by an older version of m6abert, which did not record the "
                             "--config_name file's content; start over with --overwrite_output_dir")
        changed = sorted(key for key in set(old) | set(fingerprint) if old.get(key) != io.json_safe(fingerprint.get(key)))
        if changed:
            raise InputError(f"{out}: --should_continue with settings or data that differ from the run there "
                             f"({', '.join(changed)}); use another --output_dir or --overwrite_output_dir")


def _corpus(s: TableSettings, pos, neg, folds) -> tuple[dict[str, list[str]], dict]:
    """The pretraining corpus (10 % held out for perplexity) and what it is; overlap with the folds is counted."""
    if s.pretrain_corpus:
        records, what = io.read_fasta(s.pretrain_corpus), s.pretrain_corpus
    else:
        records, what = unused_negatives(pos, neg, s.seed, neg_path=str(Path(s.data_path) / "neg.fa")), \
            "the negatives balanced sampling did not use"
    fold_seqs = {r.seq for recs, _ in folds for r in recs}  # fold_records normalised them
    shared = [r.id for r in records if normalise(r.seq) in fold_seqs]
    overlap = len(shared)
    if overlap:  # a model pretrained on its test folds would be judged on sequences it has seen
        raise InputError(f"{what}: {overlap} of its {len(records)} sequences are fine-tuning sequences of the folds "
                         f"(first: record {shared[0]!r}); pretraining must not see them: remove them from the corpus")
    longest = max((len(r.seq) for r in records), default=0)
    if longest - s.k + 3 > MAX_SEQ_LENGTH:
        raise InputError(f"{what}: a sequence of {longest} nt gives more than {MAX_SEQ_LENGTH} tokens at k={s.k}")
    corpus = pretrain_corpus(records, s.k, s.seed, do_val=True, path=what)
    info = {"source": what, "n_sequences": len(records), "n_train": len(corpus[f"{s.k}_train"]),
            "n_val": len(corpus[f"{s.k}_val"]), "overlap_with_folds": int(overlap)}
    return corpus, info


def _check_inner_folds(s: TableSettings, folds) -> None:
    """--inner_folds against the smallest class of any training set (the k-mer LR's inner CV is stratified)."""
    if "kmer_lr" not in s.models:
        return
    labels = [np.array(lab) for _, lab in folds]
    for i in range(len(folds)):
        train = np.concatenate([lab for j, lab in enumerate(labels) if j != i])
        smallest = int(min((train == 1).sum(), (train == 0).sum()))
        if smallest < s.inner_folds:
            raise InputError(f"--inner_folds {s.inner_folds}: the training set of fold {i} has only {smallest} "
                             f"sequences of one class; use at most {smallest}")


def prepare(s: TableSettings) -> Plan:
    """Read and check the data, folds, corpus and output folder; nothing is written."""
    for name in s.models:
        if name not in MODELS:
            raise InputError(f"--models: unknown model {name!r} (choose from {', '.join(MODELS)})")
    data = Path(s.data_path)
    pos, neg = io.read_fasta(data / "pos.fa"), io.read_fasta(data / "neg.fa")
    _, folds_ids = kfold_splits(pos, neg, s.k, s.n_folds, s.seed, pos_path=str(data / "pos.fa"),
                                neg_path=str(data / "neg.fa"))
    folds = fold_records(pos, neg, folds_ids)
    fingerprint = _fingerprint(s, data)
    _check_output_dir(s, fingerprint)
    _check_inner_folds(s, folds)
    corpus, info = _corpus(s, pos, neg, folds) if REFERENCE in s.models else (None, {})
    if any(m in s.models for m in ("m6a_bert_deg", "bert_scratch")):
        from .model import build_config

        build_config(s.config_name, s.k)  # a bad --config_name fails here
    return Plan(folds, corpus, info, fingerprint)


def _single_process(no_cuda: bool):
    from .train import setup_distributed

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise InputError("reproduce_table.py runs in one process (not under torchrun); for multi-GPU fine-tuning "
                         "use run_finetune_degradation.py --n_folds")
    return setup_distributed(-1, no_cuda)


# ---------------------------------------------------------------------------- the models
def _train_dev(plan: Plan, i: int) -> tuple[list[str], list[int], list[str], list[int]]:
    """(train sequences, train labels, dev sequences, dev labels) of fold ``i``: train = the other folds."""
    train_seqs, train_labels = [], []
    for j, (recs, labels) in enumerate(plan.folds):
        if j != i:
            train_seqs += [r.seq for r in recs]
            train_labels += labels
    recs, labels = plan.folds[i]
    return train_seqs, train_labels, [r.seq for r in recs], labels


def _pretrain(s: TableSettings, out: Path, dist) -> dict:
    """Pretrain once into ``runs/pretrain`` (kept when finished; resumed from a checkpoint if any)."""
    from .pretrain import PretrainSettings, run_pretrain

    folder = out / "runs" / "pretrain"
    record = out / "runs" / "pretrain.json"
    if s.should_continue and record.exists():
        return io.read_json(record)
    log.info("===== pretraining %s (k=%d) for %d steps =====", s.config_name, s.k, s.pretrain_steps)
    t0 = time.perf_counter()
    corpus = out / "pretrain_data" / "pre"
    ps = PretrainSettings(output_dir=str(folder), train=pretrain_args(s), train_data_file=str(corpus / f"{s.k}_train.txt"),
                          eval_data_file=str(corpus / f"{s.k}_val.txt"), config_name=s.config_name, k=s.k,
                          do_train=True, do_eval=True, per_gpu_eval_batch_size=s.batch_size,
                          should_continue=True, overwrite_output_dir=True,
                          run_args={"note": "written by reproduce_table.py", **dataclasses.asdict(pretrain_args(s))})
    res = run_pretrain(ps, dist)
    result = {"perplexity": res.get("eval_perplexity"), "global_step": res.get("global_step"),
              "train_loss": res.get("train_loss"), "seconds": time.perf_counter() - t0}
    io.write_json(record, result)
    return result


def _bert_fold(s: TableSettings, out: Path, i: int, pretrained: Path | None, dist) -> tuple[np.ndarray, dict]:
    """Fine-tune a BERT on fold ``i``'s ``train.tsv`` (pretrained or from scratch); logits of its ``dev.tsv``."""
    from .data import Collator, load_tsv_dataset
    from .finetune import FinetuneSettings, run_finetune
    from .predict import autocast, load_classifier, predict_logits

    name = "m6a_bert_deg" if pretrained else "bert_scratch"
    fold_dir, fold_out = out / "data" / f"fold_{i}", out / "runs" / name / f"fold_{i}"
    fs = FinetuneSettings(data_dir=str(fold_dir), output_dir=str(fold_out), train=finetune_args(s),
                          model_name_or_path=str(pretrained) if pretrained else None, from_scratch=pretrained is None,
                          config_name="" if pretrained else s.config_name, k=s.k, do_train=True,
                          max_seq_length=MAX_SEQ_LENGTH, per_gpu_eval_batch_size=s.batch_size, should_continue=True,
                          overwrite_output_dir=True,
                          run_args={"note": "written by reproduce_table.py", **dataclasses.asdict(finetune_args(s))})
    res = run_finetune(fs, dist)
    model, _ = load_classifier(fold_out, s.k, MAX_SEQ_LENGTH)
    dev = load_tsv_dataset(fold_dir / "dev.tsv", s.k, MAX_SEQ_LENGTH)
    with autocast(dist.device, "bf16" if s.bf16 else None):
        logits = predict_logits(model, dev.dataset, Collator(MAX_SEQ_LENGTH), s.batch_size, dist.device, desc=name)
    return logits, {"train_loss": res.get("train_loss"), "global_step": res.get("global_step")}


def _cnn_fold(s: TableSettings, out: Path, plan: Plan, i: int, dist) -> tuple[np.ndarray, dict]:
    """Train the CNN+LSTM on the other folds with the toolkit's loop; logits of fold ``i``."""
    from .baselines import (
        CnnLstmConfig,
        CnnLstmForSequenceClassification,
        NucleotideCollator,
        NucleotideDataset,
    )
    from .predict import predict_logits
    from .train import train

    train_seqs, train_labels, dev_seqs, _ = _train_dev(plan, i)
    fold_out = out / "runs" / "cnn_lstm" / f"fold_{i}"
    set_seed(s.seed)
    model = CnnLstmForSequenceClassification(CnnLstmConfig())
    res = train(model, NucleotideDataset(train_seqs, train_labels), NucleotideCollator(), cnn_args(s), fold_out,
                s.k, dist=dist)
    io.save_model_folder(fold_out, model)
    logits = predict_logits(model, NucleotideDataset(dev_seqs), NucleotideCollator(), s.batch_size, dist.device,
                            desc="cnn_lstm")
    return logits, {"train_loss": res.average_loss, "global_step": res.global_step}


def _lr_fold(s: TableSettings, plan: Plan, i: int, name: str) -> tuple[np.ndarray, dict]:
    """Fit a logistic regression on the other folds (k-mer frequencies or GC content); log-probabilities of fold ``i``."""
    from .baselines import fit_gc_lr, fit_kmer_lr, gc_content, kmer_frequencies

    train_seqs, train_labels, dev_seqs, _ = _train_dev(plan, i)
    if name == "kmer_lr":
        fit = fit_kmer_lr(train_seqs, train_labels, s.kmer_ks, s.inner_folds, s.seed)
        proba = fit.model.predict_proba(kmer_frequencies(dev_seqs, fit.k))
        extra = {"k": fit.k, "inner_auc": {str(k): v for k, v in fit.inner_auc.items()}}
    else:
        proba = fit_gc_lr(train_seqs, train_labels, s.seed).predict_proba(gc_content(dev_seqs))
        extra = {}
    return np.log(np.clip(proba, 1e-300, 1.0)), extra


def run_fold(s: TableSettings, out: Path, plan: Plan, name: str, i: int, dist) -> dict:
    """Train model ``name`` on every fold but ``i`` and score fold ``i``; the record of ``runs/{name}/fold_{i}.json``."""
    t0 = time.perf_counter()
    if name in ("m6a_bert_deg", "bert_scratch"):
        pretrained = out / "runs" / "pretrain" if name == "m6a_bert_deg" else None
        logits, extra = _bert_fold(s, out, i, pretrained, dist)
    elif name == "cnn_lstm":
        logits, extra = _cnn_fold(s, out, plan, i, dist)
    else:
        logits, extra = _lr_fold(s, plan, i, name)
    recs, labels = plan.folds[i]
    metrics = classification_metrics(np.asarray(labels), logits)  # as fine-tuning reports them
    return {"model": name, "fold": i, "ids": [r.id for r in recs], "labels": labels,
            "p1": [float(v) for v in softmax_p1(logits)], "metrics": metrics, "extra": extra,
            "seconds": time.perf_counter() - t0}


# ---------------------------------------------------------------------------- the run
def run_table(s: TableSettings, dist=None) -> dict:
    """reproduce_table.py: every model of ``s.models`` on every fold, then the table files.

    Everything is read and checked first (:func:`prepare`); then ``output_dir`` is locked while the
    run writes there. Returns the content of ``table.json``.
    """
    plan = prepare(s)
    dist = dist or _single_process(s.no_cuda)
    with io.lock_run_dir(s.output_dir):
        return _run(s, plan, dist)


def _write_inputs(s: TableSettings, out: Path, plan: Plan) -> None:
    """The folds (as get_input.py --n_folds writes them), the corpus and the settings of the run."""
    if s.overwrite_output_dir and not s.should_continue:
        removed = io.clear_table_dir(out, OWNED)
        if removed:
            log.info("%s: removed the earlier run's %s", out, ", ".join(removed))
    io.write_json(out / "runs" / "settings.json", plan.fingerprint)  # first: a run killed from here on can resume
    make_inputs("finetune", s.data_path, str(out / "data"), s.k, s.seed, n_folds=s.n_folds,
                run_args={"note": "written by reproduce_table.py", "data_dir": s.data_path, "kmer": s.k,
                          "seed": s.seed, "n_folds": s.n_folds, "task": "finetune"})
    if plan.corpus is not None:
        for name, lines in plan.corpus.items():
            io.write_lines(out / "pretrain_data" / "pre" / f"{name}.txt", lines)


def _run(s: TableSettings, plan: Plan, dist) -> dict:
    """The writing part of :func:`run_table`, with the output folder locked."""
    out, t0 = Path(s.output_dir), time.perf_counter()
    _write_inputs(s, out, plan)
    models = [m for m in MODELS if m in s.models]
    records: dict[str, list[dict]] = {}
    pretraining = _pretrain(s, out, dist) if REFERENCE in models else None
    for name in models:
        records[name] = []
        for i in range(s.n_folds):
            path = out / "runs" / name / f"fold_{i}.json"
            if s.should_continue and path.exists():
                log.info("[%s] fold %d/%d: finished earlier, read from %s", LABELS[name], i + 1, s.n_folds, path)
                rec = io.read_json(path)
            else:
                log.info("[%s] fold %d/%d: training", LABELS[name], i + 1, s.n_folds)
                rec = run_fold(s, out, plan, name, i, dist)
                io.write_json(path, rec)
                log.info("[%s] fold %d/%d: AUC %.4f (%.1f s)", LABELS[name], i + 1, s.n_folds, rec["metrics"]["auc"],
                         rec["seconds"])
            records[name].append(rec)
    table = summarise(records, s.n_bootstrap, s.seed)
    if pretraining is not None:
        table["pretraining"] = {**plan.corpus_info, "perplexity": pretraining.get("perplexity"),
                                "steps": pretraining.get("global_step")}
    write_outputs(s, out, table, records, pretraining, time.perf_counter() - t0)
    print(table_markdown(table))
    return table


# ---------------------------------------------------------------------------- the table
def _pooled(records: list[dict]) -> tuple[list[str], list[int], np.ndarray, np.ndarray]:
    """(ids, folds, labels, P(class 1)) of a model's out-of-fold predictions, fold after fold."""
    ids = [i for r in records for i in r["ids"]]
    folds = [r["fold"] for r in records for _ in r["ids"]]
    labels = np.array([v for r in records for v in r["labels"]], dtype=np.int64)
    p1 = np.array([v for r in records for v in r["p1"]], dtype=np.float64)
    return ids, folds, labels, p1


def _difference(ref: list[dict], other: list[dict], n_boot: int, seed: int) -> dict:
    """``other - ref`` in AUC: over folds (paired t) and over pooled sequences (paired bootstrap)."""
    diffs = np.array([o["metrics"]["auc"] - r["metrics"]["auc"] for r, o in zip(ref, other, strict=True)])
    _, _, labels, p_ref = _pooled(ref)
    p_other = _pooled(other)[3]
    t = paired_t_interval(diffs, test_train_ratio=1.0 / (len(diffs) - 1))  # Nadeau-Bengio: folds share training data
    boot = paired_bootstrap_auc(labels, p_other, p_ref, n_boot, seed)
    if t["contains_zero"] and boot["contains_zero"]:
        verdict = "no difference shown (both intervals contain 0)"
    elif not t["contains_zero"] and not boot["contains_zero"] and np.sign(t["mean"]) == np.sign(boot["diff"]):
        verdict = "higher AUC" if t["mean"] > 0 else "lower AUC"
    else:
        verdict = "inconclusive (one interval contains 0)"
    return {"per_fold": diffs.tolist(), "paired_t": t, "bootstrap": boot, "verdict": verdict}


def summarise(records: dict[str, list[dict]], n_boot: int = 2000, seed: int = 52) -> dict:
    """The content of ``table.json`` from the per-fold records of every model (nothing else is read).

    Per model: each fold's metrics, their mean and sample sd, and AUC/AUPR of the pooled
    out-of-fold predictions. Against m6A-BERT-Deg (when it ran): each model's AUC difference.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    first = next(iter(records.values()))
    ids, _, labels, _ = _pooled(first)
    models = {}
    for name, recs in records.items():
        if _pooled(recs)[0] != ids:
            raise InputError(f"the out-of-fold predictions of {name} are not of the same sequences as {next(iter(records))}")
        p1 = _pooled(recs)[3]
        models[name] = {"label": LABELS[name], "per_fold": [{"fold": r["fold"], "n": len(r["ids"]), **r["metrics"]}
                                                            for r in recs],
                        "mean_sd": summarise_folds([r["metrics"] for r in recs]),
                        "pooled": {"auc": float(roc_auc_score(labels, p1)), "aupr": float(average_precision_score(labels, p1))},
                        "extra": [r["extra"] for r in recs]}
    diffs = {name: _difference(records[REFERENCE], recs, n_boot, seed)
             for name, recs in records.items() if REFERENCE in records and name != REFERENCE}
    return {"n_folds": len(first), "n_sequences": len(ids), "n_positives": int(labels.sum()),
            "reference": REFERENCE if REFERENCE in records else None, "models": models, "differences": diffs,
            "notes": ["metrics of each fold's final model on its held-out fold (no checkpoint is chosen on it)",
                      "mean and sample standard deviation over folds; pooled = all out-of-fold predictions together",
                      "differences are model - m6A-BERT-Deg in AUC, with 95 % intervals: paired t over folds with "
                      "Nadeau and Bengio's corrected variance (the folds share training data) and a paired, "
                      "class-stratified bootstrap over pooled sequences"]}


def _bold_best(values: list[float], texts: list[str]) -> list[str]:
    """``texts`` with the entries of the highest value in bold (every tie; NaN never)."""
    finite = [v for v in values if np.isfinite(v)]
    best = max(finite) if finite else None
    return [f"**{t}**" if best is not None and v == best else t for v, t in zip(values, texts, strict=True)]


def _interval(d: dict, key: str) -> str:
    lo, hi = d["ci"]
    return f"{d[key]:+.3f} [{lo:+.3f}, {hi:+.3f}]" + (" (contains 0)" if d["contains_zero"] else "")


def table_markdown(table: dict) -> str:
    """``table.md``: one row per model (mean ± sd over folds, the best mean of each column in bold),
    then one row per model of its AUC difference from m6A-BERT-Deg."""
    names = list(table["models"])
    lines = ["| model | " + " | ".join(title for _, title in COLUMNS) + " | pooled AUC |",
             "|---" * (len(COLUMNS) + 2) + "|"]
    cells = {}
    for key, _ in [*COLUMNS, ("pooled", "")]:
        if key == "pooled":
            vals = [table["models"][n]["pooled"]["auc"] for n in names]
            texts = [f"{v:.3f}" for v in vals]
        else:
            ms = [table["models"][n]["mean_sd"][key] for n in names]
            vals, texts = [m["mean"] for m in ms], [f"{m['mean']:.3f} ± {m['std']:.3f}" for m in ms]
        cells[key] = _bold_best(vals, texts)
    for j, n in enumerate(names):
        lines.append(f"| {table['models'][n]['label']} | " + " | ".join(cells[key][j] for key in cells) + " |")
    lines += ["", f"Mean ± sample standard deviation over {table['n_folds']} folds ({table['n_sequences']} sequences, "
              f"{table['n_positives']} positive); best per column in bold. Each fold's final model on its held-out fold."]
    if table["differences"]:
        any_d = next(iter(table["differences"].values()))
        lines += ["", f"| AUC difference from {LABELS[REFERENCE]} | mean over folds, 95 % CI (paired t, "
                  f"{any_d['paired_t']['n']} folds, Nadeau-Bengio corrected) | pooled, 95 % CI (paired bootstrap, {any_d['bootstrap']['n_boot']} "
                  f"resamples of {any_d['bootstrap']['n']} sequences) | verdict |", "|---|---|---|---|"]
        for n, d in table["differences"].items():
            lines.append(f"| {LABELS[n]} | {_interval(d['paired_t'], 'mean')} | {_interval(d['bootstrap'], 'diff')} | "
                         f"{d['verdict']} |")
        lines += ["", "A difference is model − m6A-BERT-Deg; an interval that contains 0 shows no difference at 95 %."]
    return "\n".join(lines) + "\n"


def _columns(table: dict, records: dict[str, list[dict]]) -> tuple[dict, dict]:
    """The columns of ``per_fold.tsv`` and ``oof_predictions.tsv``."""
    per_fold: dict[str, list] = {"model": [], "fold": [], "n": [], **{key: [] for key, _ in COLUMNS}}
    for name, m in table["models"].items():
        for f in m["per_fold"]:
            per_fold["model"].append(name)
            for key in list(per_fold)[1:]:
                per_fold[key].append(f[key])
    ids, folds, labels, _ = _pooled(next(iter(records.values())))
    oof = {"id": ids, "fold": folds, "label": labels.tolist()}
    oof.update({f"p_{name}": np.asarray(_pooled(recs)[3], dtype=np.float32).tolist() for name, recs in records.items()})
    return per_fold, oof


def _figures(table: dict, records: dict[str, list[dict]]) -> dict[str, io.Writer]:
    """Writers of ``roc.png``/``.pdf`` (pooled out-of-fold ROC, one curve per model) and ``auc_per_fold.png``/``.pdf``."""
    from sklearn.metrics import roc_curve

    from .plots import fold_auc_figure, roc_figure

    curves = {}
    for name, recs in records.items():
        _, _, labels, p1 = _pooled(recs)
        fpr, tpr, _ = roc_curve(labels, p1)
        curves[LABELS[name]] = (fpr, tpr, table["models"][name]["pooled"]["auc"])
    what = f"{table['n_folds']}-fold CV, {table['n_sequences']} sequences"
    aucs = {LABELS[n]: [f["auc"] for f in m["per_fold"]] for n, m in table["models"].items()}
    figures = {"roc": roc_figure(curves, f"pooled out-of-fold ROC ({what})"),
               "auc_per_fold": fold_auc_figure(aucs, f"AUC per fold ({what})")}
    return {f"{stem}.{fmt}": (lambda path, fig=fig, fmt=fmt: io.save_figure(fig, path.with_suffix(""), (fmt,), dpi=110))
            for stem, fig in figures.items() for fmt in ("png", "pdf")}


def _run_record(s: TableSettings) -> dict:
    """``table_args.json``: the command's arguments, the resolved settings and every model's training settings."""
    from .baselines import CNN_SIZES, CnnLstmConfig

    settings = {key: v for key, v in dataclasses.asdict(s).items() if key != "run_args"}
    train = {"pretrain": pretrain_args(s), "finetune": finetune_args(s), "cnn_lstm": cnn_args(s)}
    cnn = CnnLstmConfig()
    return {**s.run_args, "settings": settings, "train_args": {key: dataclasses.asdict(v) for key, v in train.items()},
            "cnn_lstm_config": {key: getattr(cnn, key) for key in CNN_SIZES}, "max_seq_length": MAX_SEQ_LENGTH}


def write_outputs(s: TableSettings, out: Path, table: dict, records: dict[str, list[dict]], pretraining: dict | None,
                  seconds: float) -> None:
    """Every file of the table, replaced as one set (:func:`m6abert.io.write_output_set`): ``table.md``,
    ``table.json``, ``per_fold.tsv``, ``oof_predictions.tsv``, the two figures, ``table_args.json``
    (resolved settings and version) and ``timings.json``."""
    per_fold, oof = _columns(table, records)
    timings = {"pretrain_seconds": (pretraining or {}).get("seconds"),
               "fold_seconds": {name: [r["seconds"] for r in recs] for name, recs in records.items()},
               "this_invocation_seconds": seconds}
    files = {"table.md": lambda path: io.write_text(path, table_markdown(table)),
             "table.json": lambda path: io.write_json(path, table),
             "per_fold.tsv": lambda path: io.write_table_tsv(path, per_fold),
             "oof_predictions.tsv": lambda path: io.write_table_tsv(path, oof),
             **_figures(table, records),
             "table_args.json": lambda path: io.write_run_args(path.parent, _run_record(s), path.name),
             "timings.json": lambda path: io.write_json(path, timings)}
    io.write_output_set(out, files, TABLE_OUTPUTS, what="comparison table")
