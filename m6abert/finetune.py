"""Fine-tuning of the degradation classifier, with evaluation, checkpoints and cross-validation.

:func:`fine_tune` trains a classifier on in-memory data sets with the original's schedule
(:mod:`m6abert.train`) and writes the original's ``eval_results.txt`` plus ``eval_results.jsonl``,
``best_checkpoint.json`` and the final model. :func:`run_finetune` is run_finetune_degradation.py
from files to files (``train.tsv``/``dev.tsv``, a pretrained or new model, ``--do_eval``,
``--do_predict``, ``all_results.json``); :mod:`m6abert.crossval` repeats it for every ``fold_{i}/``.
Settings come in a :class:`FinetuneSettings` dataclass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch

from . import io
from .data import Collator, LabelledData, load_tsv_dataset
from .fingerprint import RUN_SETTINGS, check_resume, settings_record
from .inference import PREDICTION_OUTPUTS, autocast, predict_files, predict_logits
from .io.checkpoints import model_identity
from .metrics import ORIGINAL_KEYS, classification_metrics, eval_results_line
from .model import (
    LABELS,
    build_config,
    check_positions,
    load_model,
    new_model,
    restore_weights,
    training_attention,
)
from .train import (
    BestMetric,
    Dist,
    TrainArgs,
    TrainResult,
    barrier,
    check_optimizer,
    locked_run_dir,
    setup_distributed,
    train,
)
from .utils import InputError, check_model_k, log, set_seed

# what a fresh run (--overwrite_output_dir) removes besides the toolkit's checkpoints: an earlier run's
# results, final model and predictions, so none of it is left beside the new run's files
MODEL_FILES = ("config.json", "model.safetensors", "vocab.txt", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "README.md")
# --metric_for_best_model: the dev metrics of classification_metrics, and the dev loss (lower is better)
BEST_METRICS = (*ORIGINAL_KEYS, "aupr", "precision_pos", "recall_pos", "f1_pos", "loss")
LOWER_IS_BETTER = ("loss",)
RESULT_FILES = ("eval_results.txt", "eval_results.jsonl", "best_checkpoint.json", "all_results.json",
                "finetune_args.json", "eval_args.json", RUN_SETTINGS, *MODEL_FILES, *PREDICTION_OUTPUTS)
# settings that say where and how often results are written, not what the model becomes
NOT_MODEL_SETTINGS = ("data_dir", "output_dir", "train", "model_name_or_path", "k", "should_continue",
                      "overwrite_output_dir", "run_args", "predict_dir", "do_predict", "per_gpu_pred_batch_size",
                      "eval_all_checkpoints")


@dataclass(frozen=True)
class FinetuneSettings:
    """Everything run_finetune_degradation.py does besides optimisation (:class:`~m6abert.train.TrainArgs`).

    Field names are the script's flags; ``k`` is ``--tokenizer_name dnaK``'s k (None if not given)
    and ``run_args`` the resolved arguments recorded in ``finetune_args.json``.
    """

    data_dir: str
    output_dir: str
    train: TrainArgs = field(default_factory=TrainArgs)
    model_name_or_path: str | None = None
    from_scratch: bool = False
    config_name: str = ""
    k: int | None = None
    do_train: bool = False
    do_eval: bool = False
    do_predict: bool = False
    predict_dir: str | None = None
    max_seq_length: int = 128
    per_gpu_eval_batch_size: int = 8
    per_gpu_pred_batch_size: int = 8
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    should_continue: bool = False
    overwrite_output_dir: bool = False
    eval_all_checkpoints: bool = False
    dnabert_compat: bool = False
    n_folds: int | None = None
    metric_for_best_model: str = "auc"
    run_args: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        best_metric(self.metric_for_best_model)  # refused as soon as the settings are made

    @property
    def attn(self) -> str:
        return "eager" if self.dnabert_compat else "sdpa"


def best_metric(name: str) -> BestMetric:
    """``--metric_for_best_model NAME`` as a :class:`~m6abert.train.BestMetric`; raises ``InputError``
    for a name that is not one of :data:`BEST_METRICS`."""
    if name not in BEST_METRICS:
        raise InputError(f"--metric_for_best_model must be one of {', '.join(BEST_METRICS)}, not {name!r}")
    return BestMetric(name, greater_is_better=name not in LOWER_IS_BETTER)


def build_model(s: FinetuneSettings, resume: Path | None) -> tuple[torch.nn.Module, int]:
    """The classifier to train: resumed, pretrained or from scratch. Returns (model, k)."""
    dropout = dict(hidden_dropout_prob=s.hidden_dropout_prob, attention_probs_dropout_prob=s.attention_probs_dropout_prob)
    for name, value in dropout.items():  # the flag is named, not the config.json it would end up in
        if not 0.0 <= value < 1.0:
            raise InputError(f"--{name} must be in [0, 1), not {value}")
    if resume is not None:
        return load_model(str(resume), "classification", s.attn, **dropout)
    if s.from_scratch:
        if not s.config_name:
            raise InputError("--from_scratch needs --config_name (bert-base, mini, tiny or a config.json)")
        if s.k is None:
            raise InputError("--from_scratch needs --tokenizer_name dna3..dna6 to know k")
        return new_model(build_config(s.config_name, s.k, **dropout), "classification", s.attn), s.k
    if not s.model_name_or_path:
        raise InputError("--model_name_or_path is required (or --from_scratch with --config_name)")
    if s.config_name:
        raise InputError("--config_name goes with --from_scratch; a checkpoint carries its own config")
    model, k = load_model(s.model_name_or_path, "classification", s.attn, **dropout)
    check_model_k(f"--tokenizer_name dna{s.k}", s.k, k, str(s.model_name_or_path))
    return model, k


def _evaluator(dev: LabelledData, collate: Collator, batch_size: int, device, data_name: str,
               precision: str | None = None):
    """``evaluate(model, step) -> (metrics, eval_results.txt line)`` on a labelled dev set (autocast to
    ``precision`` as training is)."""

    def evaluate(m: torch.nn.Module, step: int) -> tuple[dict, str]:
        with autocast(device, precision):
            logits = predict_logits(m, dev.dataset, collate, batch_size, device, desc=f"eval@{step}")
        metrics = classification_metrics(dev.labels, logits)
        metrics["loss"] = float(torch.nn.functional.cross_entropy(torch.from_numpy(logits).float(),
                                                                  torch.from_numpy(dev.labels)))
        return metrics, eval_results_line(metrics, data_name)

    return evaluate


def fine_tune(
    model: torch.nn.Module,
    k: int,
    train_data: LabelledData,
    dev_data: LabelledData | None,
    train_args: TrainArgs,
    output_dir: str | Path,
    max_seq_length: int = 512,
    dnabert_compat: bool = False,
    eval_batch_size: int = 8,
    data_name: str = "",
    resume: io.TrainingState | None = None,
    dist: Dist | None = None,
    metric_for_best_model: str = "auc",
) -> dict:
    """Fine-tune ``model`` on ``train_data``, evaluating on ``dev_data`` as ``train_args`` says.

    Writes ``checkpoint-{step}/``, ``eval_results.txt``/``.jsonl``, ``best_checkpoint.json`` and the
    final model into ``output_dir``. With evaluation during training the final model is the best
    checkpoint by the dev ``metric_for_best_model`` (Hugging Face's ``load_best_model_at_end``; its
    weights are also loaded into ``model``); with ``dnabert_compat`` or without evaluation, the last
    step, as the original.

    Parameters
    ----------
    data_name: str
        The data folder named in ``eval_results.txt`` lines (the original's ``data_dir``). Default is "".
    resume: TrainingState or None
        The checkpoint state to continue from exactly (its weights already in ``model``).
    metric_for_best_model: str
        One of :data:`BEST_METRICS` (``loss``: lower is better). Early stopping still watches the
        dev AUC. Default is "auc".

    Returns
    -------
    dict
        ``train_loss``, ``global_step``, ``stopped_early``, ``exported`` (:func:`_export`; rank 0),
        the best checkpoint and the DDP agreement.
    """
    dist = dist or setup_distributed()
    out = Path(output_dir)
    collate = Collator(max_seq_length, dnabert_compat)
    evaluate = (_evaluator(dev_data, collate, eval_batch_size, dist.device, data_name, train_args.precision)
                if dev_data is not None else None)
    with training_attention(model, dist.device):
        res = train(model, train_data.dataset, collate, train_args, out, k, evaluate=evaluate, metric="auc",
                    resume_from=resume, dist=dist, stats=lambda b: {"tokens": int((b["input_ids"] != 0).sum())},
                    best_metric=best_metric(metric_for_best_model))
    results = dict(train_loss=res.average_loss, global_step=res.global_step, stopped_early=res.stopped_early)
    if res.ranks_in_sync is not None:
        results.update(world_size=dist.world_size, ddp_weights_identical=res.ranks_in_sync)
    if dist.is_main:
        best_at_end = evaluate is not None and train_args.evaluate_during_training and not dnabert_compat
        results["exported"] = _export(model, out, res, best_at_end, dnabert_compat, metric_for_best_model)
        io.save_model_files(out, model, k)
        if res.best is not None:
            io.write_json(out / "best_checkpoint.json", res.best)
            results["best_checkpoint"] = res.best["checkpoint"]
    barrier(dist)
    return results


def _export(model: torch.nn.Module, out: Path, res: TrainResult, best_at_end: bool, dnabert_compat: bool,
            metric: str) -> dict:
    """Choose the final model, load its weights into ``model`` and describe it (logged in one line).

    The best checkpoint when ``best_at_end`` and a step had a defined dev metric, else the last
    step. Returns ``{"step", "checkpoint", "selected_by", "dev_metrics"}`` (``checkpoint`` None for
    the last step, ``dev_metrics`` None where that step was not evaluated).
    """
    if best_at_end and res.best is not None:
        if res.best["step"] != res.global_step:  # the model in memory is the last step's
            restore_weights(model, str(out / res.best["checkpoint"]))
        direction = "lower" if metric in LOWER_IS_BETTER else "higher"
        exported = {"step": res.best["step"], "checkpoint": res.best["checkpoint"],
                    "selected_by": f"best dev {metric} ({direction} is better)", "dev_metrics": res.best["metrics"]}
    else:
        why = ("--dnabert_compat" if dnabert_compat else f"no dev {metric} defined" if best_at_end
               else "no --evaluate_during_training")
        exported = {"step": res.global_step, "checkpoint": None, "selected_by": f"last step ({why})",
                    "dev_metrics": res.last_metrics}
    dev = exported["dev_metrics"]
    shown = " ".join(f"{key}={_number(dev[key])}" for key in (*ORIGINAL_KEYS, "loss") if key in dev) if dev else "-"
    log.info("final model: step %d of %d, %s; dev %s", exported["step"], res.global_step, exported["selected_by"], shown)
    return exported


def _number(value: float | None) -> str:
    """A metric for a log line or the model card (None: undefined, as JSON records NaN)."""
    return "n/a" if value is None or value != value else f"{value:.4f}"


class Prepared(NamedTuple):
    """A fine-tuning run with every input read and checked, before anything is written."""

    model: torch.nn.Module
    k: int
    resume: Path | None
    resumed: io.TrainingState | None
    train_data: LabelledData | None
    dev: LabelledData | None


def _prepare(s: FinetuneSettings, dist: Dist) -> Prepared:
    """Read and check everything a run needs: output folder, model, data, resume state, schedule."""
    out, data_dir = Path(s.output_dir), Path(s.data_dir)
    resume = io.resume_point(out, s.should_continue, s.overwrite_output_dir, s.do_train)
    set_seed(s.train.seed)  # before the model is built, so the classifier's init follows --seed
    model, k = build_model(s, resume)
    check_positions(model, s.max_seq_length, str(resume or s.model_name_or_path or s.config_name))
    train_data = load_tsv_dataset(data_dir / "train.tsv", k, s.max_seq_length) if s.do_train else None
    need_dev = s.do_eval or (s.do_train and s.train.evaluate_during_training)
    dev = load_tsv_dataset(data_dir / "dev.tsv", k, s.max_seq_length) if need_dev else None
    if s.do_predict:  # checked before training starts
        load_tsv_dataset(data_dir / "dev.tsv", k, s.max_seq_length, require_labels=False)
    resumed = io.read_training_state(resume) if resume is not None and s.do_train else None
    if resumed is not None:
        check_resume(s.output_dir, _run_fingerprint(s, k), "fine-tuning")
        _check_resumed_best(s, resumed)
    if s.do_train:  # impossible schedules and optimiser settings fail here, before an old run is cleared
        sched = check_optimizer(model, s.train, len(train_data.dataset), dist)
        io.foreign_checkpoints(out, sched.t_total)
    return Prepared(model, k, resume, resumed, train_data, dev)


def settings_fingerprint(s: FinetuneSettings, k: int, data: dict[str, Path]) -> dict:
    """What determines a fine-tuned model and its metrics (:func:`~m6abert.fingerprint.settings_record`),
    with ``k`` and the SHA-256 of each file of ``data``."""
    base = None if s.from_scratch else s.model_name_or_path
    return {**settings_record(s, NOT_MODEL_SETTINGS, base, s.config_name, data), "k": k}


def _run_fingerprint(s: FinetuneSettings, k: int) -> dict:
    """:func:`settings_fingerprint` of one run: its ``train.tsv`` and ``dev.tsv``."""
    data = Path(s.data_dir)
    return settings_fingerprint(s, k, {name: data / name for name in ("train.tsv", "dev.tsv") if (data / name).exists()})


def _check_resumed_best(s: FinetuneSettings, resumed: io.TrainingState) -> None:
    """A resumed run keeps its best checkpoint: chosen by the same metric, and still there if it is to
    be exported (rotation never deletes it); else ``InputError`` before anything is written."""
    best = resumed.state.get("best")
    if not isinstance(best, dict):
        return
    name = best.get("metric_name", "auc")
    if name != s.metric_for_best_model:
        raise InputError(f"{resumed.path / 'trainer_state.json'}: this run chose its best checkpoint by dev {name}; "
                         f"resume it with --metric_for_best_model {name}")
    folder = resumed.path.parent / str(best.get("checkpoint"))
    if s.train.evaluate_during_training and not s.dnabert_compat and not folder.is_dir():
        raise InputError(f"{folder}: missing: the run's best checkpoint so far (dev {name} {best.get('metric')} at "
                         f"step {best.get('step')}), which is exported as the final model; restore it, or start "
                         "over with --overwrite_output_dir")


def _evaluate_dirs(s: FinetuneSettings, dev: LabelledData, device) -> dict:
    """--do_eval: the final model (and with --eval_all_checkpoints every checkpoint) on dev.tsv."""
    out, results = Path(s.output_dir), {}
    evaluate = _evaluator(dev, Collator(s.max_seq_length, s.dnabert_compat), s.per_gpu_eval_batch_size, device,
                          s.data_dir, s.train.precision)
    dirs = [out] + (io.list_checkpoints(out) if s.eval_all_checkpoints else [])
    for d in dirs:
        m = load_model(str(d), "classification", s.attn, fine_tuned=True)[0]
        metrics, line = evaluate(m, -1)
        io.append_line(d / "eval_results.txt", line)
        suffix = "" if d == out else f"_{d.name.split('-')[-1]}"
        results.update({f"eval_{key}{suffix}": v for key, v in metrics.items()})
        if d == out:
            results["eval"] = metrics
        log.info("***** Eval results %s *****", d.name)
        for key in sorted(metrics):
            log.info("  %s = %s", key, metrics[key])
    return results


def run_finetune(s: FinetuneSettings, dist: Dist | None = None) -> dict:
    """Fine-tune (and/or evaluate, predict) one model on ``s.data_dir``; returns ``all_results.json``'s content.

    Every input is read and checked first; then the output folder is locked
    (:func:`m6abert.io.lock_run_dir`, rank 0) for as long as the run writes there.
    """
    dist = dist or setup_distributed()
    p = _prepare(s, dist)
    with locked_run_dir(s.output_dir, dist):
        return _run(s, p, dist)


def _run(s: FinetuneSettings, p: Prepared, dist: Dist) -> dict:
    """The writing part of :func:`run_finetune`, with the output folder locked."""
    out = Path(s.output_dir)
    results: dict = {}
    if dist.is_main:  # every input is checked: the first write
        if s.do_train or p.resume is not None:
            io.clear_run_dir(out, fresh=p.resume is None and s.do_train, result_files=RESULT_FILES)
        out.mkdir(parents=True, exist_ok=True)
        base = model_identity(s.model_name_or_path) if s.model_name_or_path and not s.from_scratch else None
        io.write_run_args(out, {**s.run_args, "base_model_identity": base},
                          "finetune_args.json" if s.do_train else "eval_args.json")
        if s.do_train:
            io.write_json(out / RUN_SETTINGS, _run_fingerprint(s, p.k))
    if s.do_train:
        results.update(fine_tune(p.model, p.k, p.train_data, p.dev, s.train, out, s.max_seq_length, s.dnabert_compat,
                                 s.per_gpu_eval_batch_size, s.data_dir, p.resumed, dist, s.metric_for_best_model))
    if s.do_eval and dist.is_main:
        results.update(_evaluate_dirs(s, p.dev, dist.device))
    if s.do_train and dist.is_main:
        _write_model_card(s, p, results)
    if s.do_predict and dist.is_main:
        predict_files(out, s.predict_dir or s.output_dir, tsv=Path(s.data_dir) / "dev.tsv", k=p.k,
                      max_seq_length=s.max_seq_length, batch_size=s.per_gpu_pred_batch_size,
                      dnabert_compat=s.dnabert_compat, device=dist.device,
                      run_args={**s.run_args, "predict_dir": s.predict_dir or s.output_dir})
    if dist.is_main:  # an evaluation-only run adds to the training record instead of replacing it
        old = io.read_json(out / "all_results.json") if (out / "all_results.json").exists() and not s.do_train else {}
        identity = {"model_identity": model_identity(out)} if (out / "config.json").exists() else {}
        io.write_json(out / "all_results.json", {**old, **results, **identity})
    return results


def _write_model_card(s: FinetuneSettings, p: Prepared, results: dict) -> None:
    """README.md of the exported model: k, data, exported step, dev metrics, how to load."""
    from . import __version__
    from .io.checkpoints import write_model_card

    data = Path(s.data_dir)
    card = {"k": p.k, "version": __version__, "labels": LABELS, "exported": results["exported"],
            "global_step": results["global_step"],
            "base_model": s.model_name_or_path or f"none (--from_scratch --config_name {s.config_name})",
            "data": [("train", data / "train.tsv", len(p.train_data.labels))]
                    + ([("dev", data / "dev.tsv", len(p.dev.labels))] if p.dev is not None else []),
            "metrics": {"dev, exported step": results["exported"]["dev_metrics"],
                        "dev, final model (--do_eval)": results.get("eval")}}
    write_model_card(s.output_dir, card)
