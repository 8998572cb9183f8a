"""Fine-tuning of the degradation classifier, with evaluation, checkpoints and cross-validation.

:func:`fine_tune` trains a classifier on in-memory data sets with the original's schedule
(:mod:`m6abert.train`) and writes the original's ``eval_results.txt`` plus ``eval_results.jsonl``,
``best_checkpoint.json`` and the final model. run_finetune_degradation.py from files to files is
:func:`m6abert.commands.finetune.run_finetune` (``train.tsv``/``dev.tsv``, a pretrained or new model,
``--do_eval``, ``--do_predict``, ``all_results.json``); :mod:`m6abert.commands.crossval` repeats it for
every ``fold_{i}/``.
Settings come in a :class:`FinetuneSettings` dataclass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import io
from .data import Collator, LabelledData
from .inference import autocast, predict_logits
from .metrics import ORIGINAL_KEYS, classification_metrics, eval_results_line
from .model import (
    build_config,
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
    setup_distributed,
    train,
)
from .utils import InputError, check_model_k, log

# --metric_for_best_model: the dev metrics of classification_metrics, and the dev loss (lower is better)
BEST_METRICS = (*ORIGINAL_KEYS, "aupr", "precision_pos", "recall_pos", "f1_pos", "loss")
LOWER_IS_BETTER = ("loss",)


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


def evaluator(dev: LabelledData, collate: Collator, batch_size: int, device, data_name: str,
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
    evaluate = (evaluator(dev_data, collate, eval_batch_size, dist.device, data_name, train_args.precision)
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
    shown = " ".join(f"{key}={metric_text(dev[key])}" for key in (*ORIGINAL_KEYS, "loss") if key in dev) if dev else "-"
    log.info("final model: step %d of %d, %s; dev %s", exported["step"], res.global_step, exported["selected_by"], shown)
    return exported


def metric_text(value: float | None) -> str:
    """A metric for a log line or the model card (None: undefined, as JSON records NaN)."""
    return "n/a" if value is None or value != value else f"{value:.4f}"


