"""The paper's comparison table (reproduce_table.py): five models on the same folds, under a
protocol that windows of one locus cannot fool.

Windows that share an exact ``group_overlap``-nt stretch (overlapping windows of one transcript,
one site in two isoforms) form a locus group (:func:`m6abert.leakage.window_groups`). The default
protocol, ``grouped``, keeps each group in one fold (``get_input.py --n_folds --group_overlap``)
and groups the k-mer LR's inner CV too; ``random`` is the earlier protocol (``get_input.py
--n_folds``); ``both`` runs the two on the same windows, so the table shows what the leak does.
:func:`run_table` writes the folds, pretrains m6A-BERT once (:func:`m6abert.commands.pretrain.run_pretrain`)
on a corpus from which every window that shares a stretch with any fold window was dropped (by
default the negatives that balanced sampling left out: a label-selected corpus), then for every
protocol, model and fold trains on the other folds and predicts the fold:

* ``m6a_bert_deg``: the pretrained BERT fine-tuned (:func:`m6abert.commands.finetune.run_finetune`);
* ``bert_scratch``: the same architecture fine-tuned from random initialisation;
* ``cnn_lstm``: :class:`m6abert.baselines.CnnLstmForSequenceClassification`, trained by the same loop;
* ``kmer_lr``: k-mer frequency logistic regression, k chosen by inner CV on the training folds;
* ``gc_lr``: GC-content logistic regression.

Each model/fold result (out-of-fold P(class 1) and the metrics fine-tuning reports) is written to
``runs/{protocol}/{model}/fold_{i}.json`` as it finishes; with ``should_continue`` a killed run
resumes there (an interrupted BERT fold from its latest checkpoint when ``save_steps`` is set) and
ends with the same table. The table (:mod:`m6abert.comparison`) is computed from those records only.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import io
from ..comparison import REFERENCE, columns, figure_writers, leak_effect, summarise, table_markdown
from ..constants import MAX_POSITIONS
from ..corpus import SHARED, corpora
from ..groups import leakage
from ..leakage import window_groups
from ..metrics import classification_metrics, softmax_p1
from ..preempt import held_run_dir
from ..splits import fold_records, kfold_splits, read_windows, sample_negatives
from ..table_models import FoldJob, model_names, runner
from ..table_models import label as model_label
from ..utils import InputError, log
from .get_input import make_inputs

MODELS = model_names()  # the built-in ones; m6abert.table_models.register adds more
FOLDS = {"grouped": ("grouped",), "random": ("random",), "both": ("grouped", "random")}
MAX_SEQ_LENGTH = MAX_POSITIONS
# what --overwrite_output_dir removes (a user's other files stay)
TABLE_OUTPUTS = ("table.md", "table.json", "per_fold.tsv", "oof_predictions.tsv", "leakage.json", "roc.png", "roc.pdf",
                 "auc_per_fold.png", "auc_per_fold.pdf", "calibration.png", "calibration.pdf", "table_args.json",
                 "timings.json")
OWNED = ("data", "pretrain_data", "runs", *TABLE_OUTPUTS)
# not part of what a model/fold result depends on: a run may be continued with more models or protocols
NOT_RESULTS = ("output_dir", "models", "folds", "should_continue", "overwrite_output_dir", "run_args", "n_bootstrap",
               "sources")  # the sources' content is in data_sha256
# settings added after runs/settings.json existed, with the value that reproduces what a run without them did
ADDED_LATER = {"pretrain_per_fold": False}


@dataclass(frozen=True)
class TableSettings:
    """Everything reproduce_table.py does; field names are its flags.

    ``folds``: ``grouped`` (windows sharing an exact ``group_overlap``-nt stretch in one fold, and
    in one inner fold of the k-mer LR), ``random`` or ``both``. ``pretrain_corpus`` None pretrains
    on the negatives that balanced sampling did not use (label-selected: negatives only); every
    corpus window sharing a stretch with a fold window is dropped either way. ``pretrain_per_fold``
    pretrains m6A-BERT once per protocol and fold instead, label-neutrally, on every positive and
    negative window that shares no stretch with that fold's held-out windows;
    ``save_steps`` > 0 also checkpoints BERT pretraining and fine-tuning every so many steps (a
    killed run then resumes inside the interrupted fold), 0 resumes at the start of it.

    ``sources``: the positives and negatives (:class:`m6abert.io.LabelledSources`, any
    :class:`m6abert.io.Source` kind); None reads the paper's layout of ``data_path``
    (``pos.fa``, ``neg.fa``). With ``sources`` given, ``data_path`` is only recorded.
    """

    data_path: str
    output_dir: str
    k: int = 3
    config_name: str = "mini"
    models: tuple[str, ...] = MODELS
    n_folds: int = 5
    folds: str = "grouped"
    group_overlap: int = 30
    seed: int = 52
    pretrain_corpus: str | None = None
    pretrain_per_fold: bool = False
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
    sources: io.LabelledSources | None = None

    def labelled_sources(self) -> io.LabelledSources:
        """``sources``, else ``data_path/pos.fa`` and ``data_path/neg.fa`` (each checked to exist)."""
        return self.sources if self.sources is not None else io.LabelledSources.from_folder(self.data_path)


class Plan(NamedTuple):
    """A run with every input read and checked, before anything is written."""

    folds: dict[str, list[tuple[list[io.FastaRecord], list[int]]]]  # per protocol, each fold's (records, labels)
    groups: dict[str, int]  # the locus group of every window id
    leakage: dict[str, dict]  # per protocol, m6abert.groups.leakage of its folds
    corpus: dict[str, dict[str, list[str]]]  # {SHARED or "{protocol}/fold_{i}": {"{k}_train", "{k}_val": sentences}}
    corpus_info: dict[str, dict]  # the same keys: what each corpus is
    fingerprint: dict
    sources: io.LabelledSources  # where the windows were read


# ---------------------------------------------------------------------------- training arguments
def pretrain_args(s: TableSettings):
    """DNABERT's pretraining optimiser (AdamW eps 1e-6, beta2 0.98, weight decay 0.01, 5 % warm-up)."""
    from ..train import TrainArgs

    return TrainArgs(seed=s.seed, per_gpu_train_batch_size=s.pretrain_batch_size, learning_rate=s.pretrain_learning_rate,
                     weight_decay=0.01, adam_epsilon=1e-6, beta2=0.98, max_steps=s.pretrain_steps, warmup_percent=0.05,
                     logging_steps=0, save_steps=s.save_steps, save_total_limit=1, bf16=s.bf16)


def finetune_args(s: TableSettings):
    """Fine-tuning of both BERTs: weight decay 0.01, 10 % warm-up, no evaluation on the dev (= test) fold."""
    from ..train import TrainArgs

    return TrainArgs(seed=s.seed, per_gpu_train_batch_size=s.batch_size, learning_rate=s.learning_rate,
                     weight_decay=0.01, num_train_epochs=s.finetune_epochs, warmup_percent=0.1, logging_steps=0,
                     save_steps=s.save_steps, save_total_limit=1, bf16=s.bf16)


def cnn_args(s: TableSettings):
    """The CNN+LSTM's optimiser, always float32 (it is cheap: bfloat16 would save little time, measured);
    checkpoints every ``save_steps`` like the BERTs, so a killed fold resumes inside."""
    from ..train import TrainArgs

    return TrainArgs(seed=s.seed, per_gpu_train_batch_size=s.batch_size, learning_rate=s.cnn_learning_rate,
                     weight_decay=0.01, num_train_epochs=s.cnn_epochs, logging_steps=0, save_steps=s.save_steps,
                     save_total_limit=1)


# ---------------------------------------------------------------------------- checks before work
def _fingerprint(s: TableSettings, sources: io.LabelledSources) -> dict:
    """What the results depend on: the settings (not the output folder or model subset) and the data
    (the sources' digests, keyed by the paper's file names as earlier runs recorded them)."""
    fp = {f: getattr(s, f) for f in s.__dataclass_fields__ if f not in NOT_RESULTS}
    fp.update(kmer_ks=list(s.kmer_ks), data_path=None,
              data_sha256={name: src.sha256() for name, src in zip(io.PAPER_FILES, sources, strict=True)})
    if s.pretrain_corpus:
        fp.update(pretrain_corpus=None, pretrain_corpus_sha256=io.file_sha256(s.pretrain_corpus))
    from ..model import PRESETS

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
        changed = sorted(key for key in set(old) | set(fingerprint)
                         if old.get(key, ADDED_LATER.get(key)) != io.json_safe(fingerprint.get(key)))
        if changed:
            raise InputError(f"{out}: --should_continue with settings or data that differ from the run there "
                             f"({', '.join(changed)}); use another --output_dir or --overwrite_output_dir")


def _fold_rows(folds) -> list[tuple[io.FastaRecord, int, int]]:
    """(record, label, fold) of every window of ``folds``, fold after fold."""
    return [(r, label, i) for i, (recs, labels) in enumerate(folds) for r, label in zip(recs, labels, strict=True)]


def _check_inner_folds(s: TableSettings, folds, groups: dict[str, int], grouped: bool) -> None:
    """--inner_folds against the smallest class (in groups, when grouped) of any training set."""
    if "kmer_lr" not in s.models:
        return
    for i in range(len(folds)):
        train = [(r.id, label) for r, label, j in _fold_rows(folds) if j != i]
        for label, name in ((1, "positive"), (0, "negative")):
            ids = [r for r, lab in train if lab == label]
            n = len({groups[r] for r in ids}) if grouped else len(ids)
            if n < s.inner_folds:
                unit = "locus groups" if grouped else "sequences"
                raise InputError(f"--inner_folds {s.inner_folds}: the training set of fold {i} has only {n} {name} "
                                 f"{unit}; use at most {n}")


def prepare(s: TableSettings) -> Plan:
    """Read and check the data, folds, corpus and output folder; nothing is written."""
    for name in s.models:
        model_label(name)  # an unknown name is refused
    if s.folds not in FOLDS:
        raise InputError(f"--folds must be one of {', '.join(FOLDS)}, not {s.folds!r}")
    sources = s.labelled_sources()
    pos_path, neg_path = sources.pos.name, sources.neg.name
    (pos, _), (neg, _) = read_windows(sources.pos), read_windows(sources.neg)
    io.check_unique_ids((pos_path, pos), (neg_path, neg))
    used = pos + sample_negatives(neg, len(pos), s.seed, neg_path)
    groups = window_groups(used, s.group_overlap)
    folds, leaks = {}, {}
    for protocol in FOLDS[s.folds]:
        _, folds_ids = kfold_splits(pos, neg, s.k, s.n_folds, s.seed, pos_path=pos_path, neg_path=neg_path,
                                    groups=groups if protocol == "grouped" else None)
        folds[protocol] = fold_records(pos, neg, folds_ids)
        rows = _fold_rows(folds[protocol])
        leaks[protocol] = {"split": protocol, **leakage([r.seq for r, _, _ in rows], [lab for _, lab, _ in rows],
                                                        [f"fold_{i}" for _, _, i in rows], s.group_overlap,
                                                        ids=[r.id for r, _, _ in rows])}
    fingerprint = _fingerprint(s, sources)
    _check_output_dir(s, fingerprint)
    for protocol, protocol_folds in folds.items():
        _check_inner_folds(s, protocol_folds, groups, protocol == "grouped")
    corpus, info = corpora(pos, neg, folds, k=s.k, seed=s.seed, group_overlap=s.group_overlap,
                           names=(pos_path, neg_path), pretrain_corpus=s.pretrain_corpus,
                           per_fold=s.pretrain_per_fold) if REFERENCE in s.models else ({}, {})
    if any(m in s.models for m in ("m6a_bert_deg", "bert_scratch")):
        from ..model import build_config

        build_config(s.config_name, s.k)  # a bad --config_name fails here
    return Plan(folds, groups, leaks, corpus, info, fingerprint, sources)


def _single_process(no_cuda: bool):
    from ..train import setup_distributed

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise InputError("reproduce_table.py runs in one process (not under torchrun); for multi-GPU fine-tuning "
                         "use run_finetune_degradation.py --n_folds")
    return setup_distributed(-1, no_cuda)


# ---------------------------------------------------------------------------- the models
def pretrained_dir(out: Path, key: str = SHARED) -> Path:
    """Where the model pretrained on corpus ``key`` is: ``runs/pretrain`` or ``runs/pretrain_per_fold/{key}``."""
    return out / "runs" / "pretrain" if key == SHARED else out / "runs" / "pretrain_per_fold" / key


def corpus_dir(out: Path, key: str = SHARED) -> Path:
    """Where corpus ``key`` is written: ``pretrain_data/pre`` or ``pretrain_data/{key}/pre``."""
    return out / "pretrain_data" / "pre" if key == SHARED else out / "pretrain_data" / key / "pre"


def _pretrain(s: TableSettings, out: Path, dist, key: str = SHARED) -> dict:
    """Pretrain on corpus ``key`` into :func:`pretrained_dir` (kept when finished; resumed from a
    checkpoint if any)."""
    from .pretrain import PretrainSettings, run_pretrain

    folder = pretrained_dir(out, key)
    record = folder.with_name(folder.name + ".json")
    if s.should_continue and record.exists():
        return io.read_json(record)
    log.info("===== pretraining %s (k=%d) for %d steps%s =====", s.config_name, s.k, s.pretrain_steps,
             f" on {key}" if key else "")
    t0 = time.perf_counter()
    corpus = corpus_dir(out, key)
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


def run_fold(s: TableSettings, out: Path, plan: Plan, protocol: str, name: str, i: int, dist) -> dict:
    """Train model ``name`` on every fold but ``i`` of ``protocol`` and score fold ``i``; the record of
    ``runs/{protocol}/{name}/fold_{i}.json``."""
    t0 = time.perf_counter()
    logits, extra = runner(name)(FoldJob(s, out, plan, protocol, i, dist))
    recs, labels = plan.folds[protocol][i]
    metrics = classification_metrics(np.asarray(labels), logits)  # as fine-tuning reports them
    return {"model": name, "protocol": protocol, "fold": i, "ids": [r.id for r in recs], "labels": labels,
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
    with held_run_dir(s.output_dir):
        return _run(s, plan, dist)


def _write_inputs(s: TableSettings, out: Path, plan: Plan) -> None:
    """The folds of each protocol (as get_input.py --n_folds [--group_overlap] writes them, with
    their groups.tsv and leakage.json), the corpus and the settings of the run."""
    if s.overwrite_output_dir and not s.should_continue:
        removed = io.clear_table_dir(out, OWNED)
        if removed:
            log.info("%s: removed the earlier run's %s", out, ", ".join(removed))
    io.write_json(out / "runs" / "settings.json", plan.fingerprint)  # first: a run killed from here on can resume
    for protocol in plan.folds:
        overlap = s.group_overlap if protocol == "grouped" else 0
        make_inputs("finetune", plan.sources, str(out / "data" / protocol), s.k, s.seed, n_folds=s.n_folds,
                    group_overlap=overlap,
                    run_args={"note": "written by reproduce_table.py", "data_dir": s.data_path, "kmer": s.k,
                              "seed": s.seed, "n_folds": s.n_folds, "group_overlap": overlap, "task": "finetune"})
    for key, corpus in plan.corpus.items():
        for name, lines in corpus.items():
            io.write_lines(corpus_dir(out, key) / f"{name}.txt", lines)


def _fold_record(s: TableSettings, out: Path, plan: Plan, protocol: str, name: str, i: int, dist) -> dict:
    """Model ``name``'s record of fold ``i``: read when a continued run finished it, else trained now."""
    path = out / "runs" / protocol / name / f"fold_{i}.json"
    where = f"[{protocol} folds, {model_label(name)}] fold {i + 1}/{s.n_folds}"
    if s.should_continue and path.exists():
        log.info("%s: finished earlier, read from %s", where, path)
        rec = io.read_json(path)
        if rec.get("ids") != [r.id for r in plan.folds[protocol][i][0]]:  # e.g. another scikit-learn's grouping
            raise InputError(f"{path}: its windows are not those of fold {i} of the {protocol} folds of this run; "
                             "start over with --overwrite_output_dir")
        return rec
    if name == REFERENCE and s.pretrain_per_fold:  # before the fold's clock starts
        _pretrain(s, out, dist, f"{protocol}/fold_{i}")
    log.info("%s: training", where)
    rec = run_fold(s, out, plan, protocol, name, i, dist)
    io.write_json(path, rec)
    log.info("%s: AUC %.4f (%.1f s)", where, rec["metrics"]["auc"], rec["seconds"])
    return rec


def _run(s: TableSettings, plan: Plan, dist) -> dict:
    """The writing part of :func:`run_table`, with the output folder locked."""
    out, t0 = Path(s.output_dir), time.perf_counter()
    _write_inputs(s, out, plan)
    models = [m for m in model_names() if m in s.models]
    if REFERENCE in models and SHARED in plan.corpus:
        _pretrain(s, out, dist)
    records = {protocol: {name: [_fold_record(s, out, plan, protocol, name, i, dist) for i in range(s.n_folds)]
                          for name in models} for protocol in plan.folds}
    result = {"default_protocol": next(iter(plan.folds)), "group_overlap": s.group_overlap,
              "protocols": {p: summarise(recs, plan.groups, s.n_bootstrap, s.seed) for p, recs in records.items()}}
    if len(records) > 1:
        result["leak"] = leak_effect(result["protocols"], records["random"], plan.groups)
    result["leakage"] = {p: {key: v for key, v in report.items() if key != "pairs"} for p, report in plan.leakage.items()}
    if REFERENCE in models:
        result["pretraining"] = _pretraining_result(out, plan)
    write_outputs(s, out, result, records, plan, time.perf_counter() - t0)
    print(table_markdown(result))
    return result


def _pretraining_result(out: Path, plan: Plan) -> dict:
    """What each corpus was and what pretraining on it reached (perplexity on its held-out 10 %, steps)."""
    result = {}
    for key, info in plan.corpus_info.items():
        folder = pretrained_dir(out, key)
        done = io.read_json(folder.with_name(folder.name + ".json"))
        result[key] = {**info, "perplexity": done.get("perplexity"), "steps": done.get("global_step")}
    return result[SHARED] if SHARED in result else {"per_fold": result}


def _run_record(s: TableSettings, sources: io.LabelledSources) -> dict:
    """``table_args.json``: the command's arguments, the resolved settings and every model's training settings."""
    from ..baselines import CNN_SIZES, CnnLstmConfig

    settings = {key: v for key, v in dataclasses.asdict(dataclasses.replace(s, sources=None)).items() if key != "run_args"}
    settings["sources"] = sources.describe()
    train = {"pretrain": pretrain_args(s), "finetune": finetune_args(s), "cnn_lstm": cnn_args(s)}
    cnn = CnnLstmConfig()
    corpus = ("--pretrain_corpus " + s.pretrain_corpus if s.pretrain_corpus else
              f"per fold: every window of {sources.pos.name} and {sources.neg.name} outside the fold's held-out loci "
              "(label-neutral)"
              if s.pretrain_per_fold else
              "the negatives balanced sampling did not use: label-selected (negatives only), not label-neutral")
    corpus += f"; every sequence sharing an exact {s.group_overlap}-nt stretch with a fold window dropped"
    return {**s.run_args, "settings": settings, "pretraining_corpus": corpus, "train_args": {key: dataclasses.asdict(v) for key, v in train.items()},
            "cnn_lstm_config": {key: getattr(cnn, key) for key in CNN_SIZES}, "max_seq_length": MAX_SEQ_LENGTH}


def write_outputs(s: TableSettings, out: Path, result: dict, records: dict[str, dict[str, list[dict]]], plan: Plan,
                  seconds: float) -> None:
    """Every file of the table, replaced as one set (:func:`m6abert.io.write_output_set`): ``table.md``,
    ``table.json``, ``per_fold.tsv``, ``oof_predictions.tsv``, ``leakage.json``, the three figures,
    ``table_args.json`` (resolved settings and version) and ``timings.json``."""
    per_fold, oof = columns(result, records, plan.groups)
    done = {key: io.read_json(pretrained_dir(out, key).with_name(pretrained_dir(out, key).name + ".json"))
            for key in plan.corpus if REFERENCE in s.models}
    timings = {"pretrain_seconds": done[SHARED]["seconds"] if SHARED in done else
               {key: d["seconds"] for key, d in done.items()},
               "fold_seconds": {p: {name: [r["seconds"] for r in recs] for name, recs in by_model.items()}
                                for p, by_model in records.items()},
               "this_invocation_seconds": seconds}
    fold_total = sum(r["seconds"] for by_model in records.values() for recs in by_model.values() for r in recs)
    pretrain = timings["pretrain_seconds"]
    timings["total_seconds"] = fold_total + (sum(pretrain.values()) if isinstance(pretrain, dict) else pretrain or 0)
    files = {"table.md": lambda path: io.write_text(path, table_markdown(result)),
             "table.json": lambda path: io.write_json(path, result),
             "per_fold.tsv": lambda path: io.write_table_tsv(path, per_fold),
             "oof_predictions.tsv": lambda path: io.write_table_tsv(path, oof),
             "leakage.json": lambda path: io.write_json(path, plan.leakage),
             **figure_writers(result, records, plan.groups, s.seed),
             "table_args.json": lambda path: io.write_run_args(path.parent, _run_record(s, plan.sources), path.name),
             "timings.json": lambda path: io.write_json(path, timings)}
    io.write_output_set(out, files, TABLE_OUTPUTS, what="comparison table")
