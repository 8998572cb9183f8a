"""``run_finetune_degradation.py`` from files to files (one run; :mod:`m6abert.commands.crossval` for
``--n_folds``/``--fold``): ``train.tsv``/``dev.tsv``, a pretrained or new model, ``--do_eval``,
``--do_predict``, ``all_results.json``, the model card; resumes checked against what determines the
model (:mod:`m6abert.fingerprint`). The training itself is :func:`m6abert.finetune.fine_tune`."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch

from .. import io
from ..data import Collator, LabelledData, load_tsv_dataset
from ..finetune import FinetuneSettings, build_model, evaluator, fine_tune
from ..fingerprint import RUN_SETTINGS, check_resume, settings_record
from ..inference import PREDICTION_OUTPUTS
from ..io.checkpoints import model_identity
from ..model import LABELS, check_positions, load_model
from ..train import Dist, check_optimizer, locked_run_dir, setup_distributed
from ..utils import InputError, log, set_seed
from .predict import predict_files

# what a fresh run (--overwrite_output_dir) removes besides the toolkit's checkpoints: an earlier run's
# results, final model and predictions, so none of it is left beside the new run's files
MODEL_FILES = ("config.json", "model.safetensors", "vocab.txt", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "README.md")


RESULT_FILES = ("eval_results.txt", "eval_results.jsonl", "best_checkpoint.json", "all_results.json",
                "finetune_args.json", "eval_args.json", RUN_SETTINGS, *MODEL_FILES, *PREDICTION_OUTPUTS)


# settings that say where and how often results are written, not what the model becomes
NOT_MODEL_SETTINGS = ("data_dir", "output_dir", "train", "model_name_or_path", "k", "should_continue",
                      "overwrite_output_dir", "run_args", "predict_dir", "do_predict", "per_gpu_pred_batch_size",
                      "eval_all_checkpoints")


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
    evaluate = evaluator(dev, Collator(s.max_seq_length, s.dnabert_compat), s.per_gpu_eval_batch_size, device,
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
    from .. import __version__
    from ..io.checkpoints import write_model_card

    data = Path(s.data_dir)
    card = {"k": p.k, "version": __version__, "labels": LABELS, "exported": results["exported"],
            "global_step": results["global_step"],
            "base_model": s.model_name_or_path or f"none (--from_scratch --config_name {s.config_name})",
            "data": [("train", data / "train.tsv", len(p.train_data.labels))]
                    + ([("dev", data / "dev.tsv", len(p.dev.labels))] if p.dev is not None else []),
            "metrics": {"dev, exported step": results["exported"]["dev_metrics"],
                        "dev, final model (--do_eval)": results.get("eval")}}
    write_model_card(s.output_dir, card)
