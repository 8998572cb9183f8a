"""Cross-validation of the fine-tuning: every ``fold_{i}/`` of ``get_input.py --n_folds``, or one of them.

:func:`cross_validate` fine-tunes one model per ``DATA_DIR/fold_{i}`` into ``OUTPUT_DIR/fold_{i}``
(:func:`~m6abert.commands.finetune.run_finetune`) and summarises the folds in ``cv_results.json``/``.md``;
:func:`run_fold` trains one fold alone (one task of a job array, ``--fold I``). Both record what
determines a fold's model in ``OUTPUT_DIR/cv_settings.json`` (:func:`cv_fingerprint`: settings,
the starting model's identity, the folds' content), and a fold is reused (``--should_continue``) or
added by another task only when that record matches. :func:`finetune` is run_finetune_degradation.py's
one library call.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .. import io
from ..data import load_tsv_dataset
from ..distributed import Dist, locked_run_dir, setup_distributed
from ..finetune import FinetuneSettings, build_model
from ..fingerprint import differences
from ..metrics import ORIGINAL_KEYS, summarise_folds
from ..utils import InputError, log
from .finetune import run_finetune, settings_fingerprint


def run_finetune_command(s: FinetuneSettings, dist: Dist | None = None, fold: int | None = None) -> dict:
    """run_finetune_degradation.py: one fine-tuning (:func:`~m6abert.commands.finetune.run_finetune`), the
    ``n_folds`` cross-validation (:func:`cross_validate`), or one ``fold`` of it (:func:`run_fold`)."""
    if fold is not None:
        return run_fold(s, fold, dist)
    return cross_validate(s, dist) if s.n_folds else run_finetune(s, dist)


def _check_folds(s: FinetuneSettings, whole: bool = True) -> int:
    """Refuse missing folds and (``whole``: the whole cross-validation) a non-empty output folder; then
    read and check EVERY fold's ``train.tsv`` and ``dev.tsv`` (k, letters, lengths), so that no fold is
    trained before a later fold's data is found bad. Returns the model's k."""
    data, out = Path(s.data_dir), Path(s.output_dir)
    for i in range(s.n_folds):
        if not (data / f"fold_{i}" / "train.tsv").exists():
            raise InputError(f"{data / f'fold_{i}'}: missing; write the folds with get_input.py --n_folds {s.n_folds}")
    if not s.do_train or not s.train.evaluate_during_training and not s.do_eval:
        raise InputError("--n_folds needs --do_train and --do_eval (or --evaluate_during_training)")
    if whole and io.has_outputs(out) and not (s.overwrite_output_dir or s.should_continue):
        raise InputError(f"{out}: output directory exists and is not empty; use --overwrite_output_dir")
    _, k = build_model(s, None)  # the model's k (and the model checked) before any fold starts
    for i in range(s.n_folds):
        for name in ("train.tsv", "dev.tsv"):
            load_tsv_dataset(data / f"fold_{i}" / name, k, s.max_seq_length)
    return k


CV_SETTINGS = "cv_settings.json"  # what determines every fold's model: --should_continue reuses folds only if it matches
def cv_fingerprint(s: FinetuneSettings, k: int) -> dict:
    """What determines each fold's model and metrics (:func:`~m6abert.finetune.settings_fingerprint`),
    with the SHA-256 of every fold's ``train.tsv`` and ``dev.tsv``."""
    data = Path(s.data_dir)
    return settings_fingerprint(s, k, {f"fold_{i}/{name}": data / f"fold_{i}" / name
                                       for i in range(s.n_folds) for name in ("train.tsv", "dev.tsv")})


def _check_cv_resume(s: FinetuneSettings, fingerprint: dict) -> None:
    """--should_continue keeps the finished folds and resumes the interrupted one: only when the folds
    there were trained with everything that determines a fold's model as now (``cv_settings.json``)."""
    out = Path(s.output_dir)
    path = out / CV_SETTINGS
    if not path.exists():
        if (out / "cv_results.json").exists() or any(io.has_outputs(out / f"fold_{i}") for i in range(s.n_folds)):
            raise InputError(f"{path}: missing: the folds in {out} were written by an older version of m6abert "
                             "(or another command) and cannot be checked against these settings; start over with "
                             "--overwrite_output_dir")
        return
    changed = differences(io.read_json(path, "cross-validation settings"), fingerprint)
    if changed:
        raise InputError(f"{out}: --should_continue with fine-tuning settings or data that differ from the folds "
                         f"there ({', '.join(changed)}); start over with --overwrite_output_dir or use another "
                         "--output_dir")


def cross_validate(s: FinetuneSettings, dist: Dist | None = None) -> dict:
    """One model per ``DATA_DIR/fold_{i}`` into ``OUTPUT_DIR/fold_{i}``, then ``cv_results.json``/``.md``.

    Folds that already finished (``all_results.json`` present) are kept when ``should_continue``
    is set; the interrupted fold resumes from its latest checkpoint. Both only when everything that
    determines a fold's model is as recorded in ``cv_settings.json`` (:func:`cv_fingerprint`).
    """
    dist = dist or setup_distributed()
    fingerprint = cv_fingerprint(s, _check_folds(s))
    if s.should_continue:
        _check_cv_resume(s, fingerprint)
    with locked_run_dir(s.output_dir, dist):  # the top folder, for every fold
        if dist.is_main:
            io.write_json(Path(s.output_dir) / CV_SETTINGS, fingerprint)
        return _cross_validate(s, dist)


def _cross_validate(s: FinetuneSettings, dist: Dist) -> dict:
    """The folds of :func:`cross_validate`, with the output folder locked."""
    out = Path(s.output_dir)
    per_fold = []
    for i in range(s.n_folds):
        fold_out = out / f"fold_{i}"
        if s.should_continue and (fold_out / "all_results.json").exists():
            res = io.read_json(fold_out / "all_results.json")
        else:
            log.info("===== fold %d / %d =====", i + 1, s.n_folds)
            res = run_finetune(fold_settings(s, i, overwrite=True), dist)
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


def fold_settings(s: FinetuneSettings, i: int, overwrite: bool) -> FinetuneSettings:
    """The settings of fold ``i`` alone: its data, its output folder, its TensorBoard run."""
    train = s.train if not s.train.logging_dir else dataclasses.replace(  # one TensorBoard run per fold
        s.train, logging_dir=str(Path(s.train.logging_dir) / f"fold_{i}"))
    return dataclasses.replace(s, data_dir=str(Path(s.data_dir) / f"fold_{i}"),
                               output_dir=str(Path(s.output_dir) / f"fold_{i}"),
                               overwrite_output_dir=overwrite or s.overwrite_output_dir, n_folds=None, train=train)


def run_fold(s: FinetuneSettings, fold: int, dist: Dist | None = None) -> dict:
    """Fold ``fold`` of :func:`cross_validate` alone, into ``OUTPUT_DIR/fold_{fold}`` (one task of a job
    array). Every fold's data is checked first; ``cv_settings.json`` is written by the first task and
    must match for every later one, so that the summary run (``--n_folds N --should_continue``) reuses
    only folds trained alike."""
    dist = dist or setup_distributed()
    fingerprint = cv_fingerprint(s, _check_folds(s, whole=False))
    one = fold_settings(s, fold, overwrite=False)
    io.resume_point(Path(one.output_dir), one.should_continue, one.overwrite_output_dir, one.do_train)
    io.check_unlocked(one.output_dir)  # the fold's own checks first: a refused task writes nothing
    path = Path(s.output_dir) / CV_SETTINGS
    if path.exists():
        changed = differences(io.read_json(path, "cross-validation settings"), fingerprint)
        others = [i for i in range(s.n_folds) if i != fold and io.has_outputs(Path(s.output_dir) / f"fold_{i}")]
        if changed and (others or not s.overwrite_output_dir):
            raise InputError(f"{path}: fold {fold} with fine-tuning settings or data that differ from the "
                             f"{'other folds' if others else 'earlier run'} there ({', '.join(changed)}); use the "
                             "same flags for every fold, or another --output_dir"
                             + ("" if others else " (or --overwrite_output_dir)"))
    if dist.is_main:
        io.write_json(path, fingerprint)
    return run_finetune(one, dist)
