"""Fine-tuning of the degradation classifier, with evaluation, checkpoints and cross-validation.

:func:`fine_tune` trains a classifier on in-memory data sets with the original's schedule
(:mod:`m6abert.train`) and writes the original's ``eval_results.txt`` plus ``eval_results.jsonl``,
``best_checkpoint.json`` and the final model. :func:`run_finetune` is run_finetune_degradation.py
from files to files (``train.tsv``/``dev.tsv``, a pretrained or new model, ``--do_eval``,
``--do_predict``, ``all_results.json``), and :func:`cross_validate` repeats it for every
``fold_{i}/`` and summarises the folds in ``cv_results.json``/``.md``. Settings come in a
:class:`FinetuneSettings` dataclass.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch

from . import io
from .data import Collator, LabelledData, load_tsv_dataset
from .metrics import ORIGINAL_KEYS, classification_metrics, eval_results_line, summarise_folds
from .model import build_config, check_positions, load_model, new_model, training_attention
from .predict import PREDICTION_OUTPUTS, autocast, predict_files, predict_logits
from .train import Dist, TrainArgs, barrier, check_optimizer, locked_run_dir, setup_distributed, train
from .utils import InputError, log, set_seed

# what a fresh run (--overwrite_output_dir) removes besides the toolkit's checkpoints: an earlier run's
# results, final model and predictions, so none of it is left beside the new run's files
MODEL_FILES = ("config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")
RESULT_FILES = ("eval_results.txt", "eval_results.jsonl", "best_checkpoint.json", "all_results.json",
                "finetune_args.json", "eval_args.json", *MODEL_FILES, *PREDICTION_OUTPUTS)


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
    run_args: dict = field(default_factory=dict)

    @property
    def attn(self) -> str:
        return "eager" if self.dnabert_compat else "sdpa"


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
    if s.k is not None and s.k != k:
        raise InputError(f"--tokenizer_name dna{s.k} does not match {s.model_name_or_path} (k={k})")
    return model, k


def _evaluator(dev: LabelledData, collate: Collator, batch_size: int, device, data_name: str,
               precision: str | None = None):
    """``evaluate(model, step) -> (metrics, eval_results.txt line)`` on a labelled dev set (autocast to
    ``precision`` as training is)."""

    def evaluate(m: torch.nn.Module, step: int) -> tuple[dict, str]:
        with autocast(device, precision):
            logits = predict_logits(m, dev.dataset, collate, batch_size, device, desc=f"eval@{step}")
        metrics = classification_metrics(dev.labels, logits)
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
) -> dict:
    """Fine-tune ``model`` on ``train_data``, evaluating on ``dev_data`` as ``train_args`` says.

    Writes ``checkpoint-{step}/``, ``eval_results.txt``/``.jsonl``, ``best_checkpoint.json`` (the best
    dev AUC) and the final model into ``output_dir``.

    Parameters
    ----------
    data_name: str
        The data folder named in ``eval_results.txt`` lines (the original's ``data_dir``). Default is "".
    resume: TrainingState or None
        The checkpoint state to continue from exactly (its weights already in ``model``).

    Returns
    -------
    dict
        ``train_loss``, ``global_step``, ``stopped_early`` (and the best checkpoint, DDP agreement).
    """
    dist = dist or setup_distributed()
    out = Path(output_dir)
    collate = Collator(max_seq_length, dnabert_compat)
    evaluate = (_evaluator(dev_data, collate, eval_batch_size, dist.device, data_name, train_args.precision)
                if dev_data is not None else None)
    with training_attention(model, dist.device):
        res = train(model, train_data.dataset, collate, train_args, out, k, evaluate=evaluate, metric="auc",
                    resume_from=resume, dist=dist, stats=lambda b: {"tokens": int((b["input_ids"] != 0).sum())})
    results = dict(train_loss=res.average_loss, global_step=res.global_step, stopped_early=res.stopped_early)
    if res.ranks_in_sync is not None:
        results.update(world_size=dist.world_size, ddp_weights_identical=res.ranks_in_sync)
    if dist.is_main:
        io.save_model_files(out, model, k)
        if res.best is not None:
            io.write_json(out / "best_checkpoint.json", res.best)
            results["best_checkpoint"] = res.best["checkpoint"]
    barrier(dist)
    return results


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
    if s.do_train:  # impossible schedules and optimiser settings fail here, before an old run is cleared
        sched = check_optimizer(model, s.train, len(train_data.dataset), dist)
        io.foreign_checkpoints(out, sched.t_total)
    return Prepared(model, k, resume, resumed, train_data, dev)


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
        io.write_run_args(out, s.run_args, "finetune_args.json" if s.do_train else "eval_args.json")
    if s.do_train:
        results.update(fine_tune(p.model, p.k, p.train_data, p.dev, s.train, out, s.max_seq_length, s.dnabert_compat,
                                 s.per_gpu_eval_batch_size, s.data_dir, p.resumed, dist))
    if s.do_eval and dist.is_main:
        results.update(_evaluate_dirs(s, p.dev, dist.device))
    if s.do_predict and dist.is_main:
        predict_files(out, s.predict_dir or s.output_dir, tsv=Path(s.data_dir) / "dev.tsv", k=p.k,
                      max_seq_length=s.max_seq_length, batch_size=s.per_gpu_pred_batch_size,
                      dnabert_compat=s.dnabert_compat, device=dist.device,
                      run_args={**s.run_args, "predict_dir": s.predict_dir or s.output_dir})
    if dist.is_main:  # an evaluation-only run adds to the training record instead of replacing it
        old = io.read_json(out / "all_results.json") if (out / "all_results.json").exists() and not s.do_train else {}
        io.write_json(out / "all_results.json", {**old, **results})
    return results


def _check_folds(s: FinetuneSettings) -> None:
    """Refuse missing folds and a non-empty output folder; then read and check EVERY fold's
    ``train.tsv`` and ``dev.tsv`` (k, letters, lengths), so that no fold is trained before a later
    fold's data is found bad."""
    data, out = Path(s.data_dir), Path(s.output_dir)
    for i in range(s.n_folds):
        if not (data / f"fold_{i}" / "train.tsv").exists():
            raise InputError(f"{data / f'fold_{i}'}: missing; write the folds with get_input.py --n_folds {s.n_folds}")
    if not s.do_train or not s.train.evaluate_during_training and not s.do_eval:
        raise InputError("--n_folds needs --do_train and --do_eval (or --evaluate_during_training)")
    if io.has_outputs(out) and not (s.overwrite_output_dir or s.should_continue):
        raise InputError(f"{out}: output directory exists and is not empty; use --overwrite_output_dir")
    _, k = build_model(s, None)  # the model's k (and the model checked) before any fold starts
    for i in range(s.n_folds):
        for name in ("train.tsv", "dev.tsv"):
            load_tsv_dataset(data / f"fold_{i}" / name, k, s.max_seq_length)


def cross_validate(s: FinetuneSettings, dist: Dist | None = None) -> dict:
    """One model per ``DATA_DIR/fold_{i}`` into ``OUTPUT_DIR/fold_{i}``, then ``cv_results.json``/``.md``.

    Folds that already finished (``all_results.json`` present) are kept when ``should_continue``
    is set; the interrupted fold resumes from its latest checkpoint.
    """
    dist = dist or setup_distributed()
    _check_folds(s)
    with locked_run_dir(s.output_dir, dist):  # the top folder, for every fold
        return _cross_validate(s, dist)


def _cross_validate(s: FinetuneSettings, dist: Dist) -> dict:
    """The folds of :func:`cross_validate`, with the output folder locked."""
    data, out = Path(s.data_dir), Path(s.output_dir)
    per_fold = []
    for i in range(s.n_folds):
        fold_out = out / f"fold_{i}"
        if s.should_continue and (fold_out / "all_results.json").exists():
            res = io.read_json(fold_out / "all_results.json")
        else:
            log.info("===== fold %d / %d =====", i + 1, s.n_folds)
            train = s.train if not s.train.logging_dir else dataclasses.replace(  # one TensorBoard run per fold
                s.train, logging_dir=str(Path(s.train.logging_dir) / f"fold_{i}"))
            fold = dataclasses.replace(s, data_dir=str(data / f"fold_{i}"), output_dir=str(fold_out),
                                       overwrite_output_dir=True, n_folds=None, train=train)
            res = run_finetune(fold, dist)
        if dist.is_main:  # rank 0 evaluates and summarises
            per_fold.append(_fold_record(i, fold_out, res))
    if dist.is_main:
        summary = summarise_folds([f["metrics"] for f in per_fold])
        cv = {"n_folds": s.n_folds, "folds": per_fold, "summary": summary,
              "note": "metrics of each fold's final model on its dev fold (best-by-AUC under 'best')"}
        io.write_json(out / "cv_results.json", cv)
        io.write_text(out / "cv_results.md", cv_markdown(per_fold, summary))
        io.write_run_args(out, s.run_args, "finetune_args.json")
        print(cv_markdown(per_fold, summary))
    return {"cv": per_fold}


def _fold_record(i: int, fold_out: Path, res: dict) -> dict:
    best = io.read_json(fold_out / "best_checkpoint.json") if (fold_out / "best_checkpoint.json").exists() else None
    fold_metrics = res.get("eval") or (best or {}).get("metrics")
    if not fold_metrics:
        raise InputError(f"{fold_out}: no evaluation results for fold {i}")
    return {"fold": i, "metrics": fold_metrics, "best": best}


def cv_markdown(per_fold: list[dict], summary: dict) -> str:
    """A Markdown table: one row per fold, then mean ± standard deviation."""
    keys = [key for key in (*ORIGINAL_KEYS, "aupr") if key in summary]
    lines = ["| fold | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for f in per_fold:
        lines.append(f"| {f['fold']} | " + " | ".join(f"{f['metrics'][key]:.4f}" for key in keys) + " |")
    lines.append("| mean ± sd | " + " | ".join(
        f"{summary[key]['mean']:.4f} ± {summary[key]['std']:.4f}" for key in keys) + " |")
    return "\n".join(lines) + "\n"


def finetune(s: FinetuneSettings, dist: Dist | None = None) -> dict:
    """run_finetune_degradation.py: one fine-tuning (:func:`run_finetune`), or ``n_folds`` cross-validation."""
    return cross_validate(s, dist) if s.n_folds else run_finetune(s, dist)

