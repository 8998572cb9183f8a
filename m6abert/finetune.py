"""Fine-tuning of the degradation classifier, with evaluation, checkpoints and cross-validation.

``run(args)`` is run_finetune_degradation.py: it loads ``train.tsv``/``dev.tsv``, builds a
``BertForSequenceClassification`` from a pretrained checkpoint (or from scratch), trains it with
the original's schedule (:mod:`m6abert.train`), writes the original's ``eval_results.txt`` plus
``eval_results.jsonl``, ``best_checkpoint.json`` and ``all_results.json``, and with ``--n_folds``
repeats this for every ``fold_{i}/`` and summarises the folds in ``cv_results.json``/``.md``.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

from . import io
from .metrics import ORIGINAL_KEYS, classification_metrics, eval_results_line, summarise_folds
from .model import Collator, build_config, load_model, new_model
from .options import tokenizer_k
from .predict import load_tsv_dataset, predict_logits
from .train import (
    Dist,
    TrainArgs,
    barrier,
    clear_run_dir,
    list_checkpoints,
    read_resume_state,
    resume_point,
    schedule,
    setup_distributed,
    train,
)
from .utils import InputError, log, set_seed

RESULT_FILES = ("eval_results.txt", "eval_results.jsonl", "best_checkpoint.json", "all_results.json")


def build_model(args: argparse.Namespace, resume: Path | None):
    """The classifier to train: resumed, pretrained or from scratch. Returns (model, k)."""
    attn = "eager" if args.dnabert_compat else "sdpa"
    dropout = dict(hidden_dropout_prob=args.hidden_dropout_prob,
                   attention_probs_dropout_prob=args.attention_probs_dropout_prob)
    tk = tokenizer_k(args)
    if resume is not None:
        return load_model(str(resume), "classification", attn, **dropout)
    if args.from_scratch:
        if not args.config_name:
            raise InputError("--from_scratch needs --config_name (bert-base, mini, tiny or a config.json)")
        if tk is None:
            raise InputError("--from_scratch needs --tokenizer_name dna3..dna6 to know k")
        return new_model(build_config(args.config_name, tk, **dropout), "classification", attn), tk
    if not args.model_name_or_path:
        raise InputError("--model_name_or_path is required (or --from_scratch with --config_name)")
    if args.config_name:
        raise InputError("--config_name goes with --from_scratch; a checkpoint carries its own config")
    model, k = load_model(args.model_name_or_path, "classification", attn, **dropout)
    if tk is not None and tk != k:
        raise InputError(f"--tokenizer_name dna{tk} does not match {args.model_name_or_path} (k={k})")
    return model, k


def run_single(args: argparse.Namespace, dist: Dist) -> dict:
    """Fine-tune (and/or evaluate) one model on ``args.data_dir``; returns all_results."""
    out = Path(args.output_dir)
    resume = resume_point(out, args.should_continue, args.overwrite_output_dir, args.do_train)
    set_seed(args.seed)  # before the model is built, so the classifier's init follows --seed
    model, k = build_model(args, resume)
    data_dir = Path(args.data_dir)
    train_data = load_tsv_dataset(data_dir / "train.tsv", k, args.max_seq_length) if args.do_train else None
    need_dev = args.do_eval or (args.do_train and args.evaluate_during_training)
    dev = load_tsv_dataset(data_dir / "dev.tsv", k, args.max_seq_length) if need_dev else None
    if args.do_predict:  # checked before training starts
        load_tsv_dataset(data_dir / "dev.tsv", k, args.max_seq_length, require_labels=False)
    resumed = read_resume_state(resume) if resume is not None and args.do_train else None  # checked before writing
    if args.do_train:
        schedule(TrainArgs.from_namespace(args), len(train_data.dataset), dist)  # impossible settings fail here
    collate = Collator(args.max_seq_length, args.dnabert_compat)
    eval_bs = args.per_gpu_eval_batch_size
    device = dist.device

    def evaluate(m, step: int) -> tuple[dict, str]:
        logits = predict_logits(m, dev.dataset, collate, eval_bs, device, desc=f"eval@{step}")
        metrics = classification_metrics(dev.labels, logits)
        return metrics, eval_results_line(metrics, args.data_dir)

    results: dict = {}
    if dist.is_main:  # every input is checked: the first write
        if args.do_train or resume is not None:
            clear_run_dir(out, fresh=resume is None and args.do_train, result_files=RESULT_FILES)
        out.mkdir(parents=True, exist_ok=True)
        io.write_run_args(out, vars(args), "finetune_args.json" if args.do_train else "eval_args.json")
    if args.do_train:
        res = train(model, train_data.dataset, collate, TrainArgs.from_namespace(args), out, k,
                    evaluate=evaluate if dev is not None else None, metric="auc", resume_from=resumed,
                    dist=dist, stats=lambda b: {"tokens": int((b["input_ids"] != 0).sum())})
        results.update(train_loss=res.average_loss, global_step=res.global_step, stopped_early=res.stopped_early)
        if res.ranks_in_sync is not None:
            results.update(world_size=dist.world_size, ddp_weights_identical=res.ranks_in_sync)
        if dist.is_main:
            io.save_model_files(out, model, k)
            if res.best is not None:
                io.write_json(out / "best_checkpoint.json", res.best)
                results["best_checkpoint"] = res.best["checkpoint"]
        barrier(dist)
    if args.do_eval and dist.is_main:
        final, _ = load_model(str(out), "classification", "eager" if args.dnabert_compat else "sdpa",
                              fine_tuned=True)
        dirs = [out] + (list_checkpoints(out) if args.eval_all_checkpoints else [])
        for d in dirs:
            m = final if d == out else load_model(str(d), "classification", final.config._attn_implementation, fine_tuned=True)[0]
            metrics, line = evaluate(m, -1)
            io.append_line(d / "eval_results.txt", line)
            suffix = "" if d == out else f"_{d.name.split('-')[-1]}"
            results.update({f"eval_{key}{suffix}": v for key, v in metrics.items()})
            if d == out:
                results["eval"] = metrics
            log.info("***** Eval results %s *****", d.name)
            for key in sorted(metrics):
                log.info("  %s = %s", key, metrics[key])
    if args.do_predict and dist.is_main:
        from .predict import run as run_predict

        pargs = copy.copy(args)
        pargs.predict_dir = args.predict_dir or args.output_dir
        run_predict(pargs, split="dev")
    if dist.is_main:  # an evaluation-only run adds to the training record instead of replacing it
        old = io.read_json(out / "all_results.json") if (out / "all_results.json").exists() and not args.do_train else {}
        io.write_json(out / "all_results.json", {**old, **results})
    return results


def run(args: argparse.Namespace) -> dict:
    """run_finetune_degradation.py: one fine-tuning, or ``--n_folds`` cross-validation."""
    dist = setup_distributed(args.local_rank, args.no_cuda)
    if not args.n_folds:
        return run_single(args, dist)
    return run_cv(args, dist)


def run_cv(args: argparse.Namespace, dist: Dist) -> dict:
    """One model per ``DATA_DIR/fold_{i}`` into ``OUTPUT_DIR/fold_{i}``, then ``cv_results.json``/``.md``.

    Folds that already finished (``all_results.json`` present) are kept when ``--should_continue``
    is given; the interrupted fold resumes from its latest checkpoint.
    """
    data, out = Path(args.data_dir), Path(args.output_dir)
    for i in range(args.n_folds):
        if not (data / f"fold_{i}" / "train.tsv").exists():
            raise InputError(f"{data / f'fold_{i}'}: missing; write the folds with get_input.py --n_folds {args.n_folds}")
    if not args.do_train or not args.evaluate_during_training and not args.do_eval:
        raise InputError("--n_folds needs --do_train and --do_eval (or --evaluate_during_training)")
    if out.is_dir() and any(out.iterdir()) and not (args.overwrite_output_dir or args.should_continue):
        raise InputError(f"{out}: output directory exists and is not empty; use --overwrite_output_dir")
    per_fold = []
    for i in range(args.n_folds):
        fold_out = out / f"fold_{i}"
        fargs = copy.copy(args)
        fargs.data_dir, fargs.output_dir = str(data / f"fold_{i}"), str(fold_out)
        done = (fold_out / "all_results.json").exists()
        if args.should_continue and done:
            res = io.read_json(fold_out / "all_results.json")
        else:
            fargs.should_continue = args.should_continue
            fargs.overwrite_output_dir = True
            log.info("===== fold %d / %d =====", i + 1, args.n_folds)
            res = run_single(fargs, dist)
        if not dist.is_main:  # rank 0 evaluates and summarises
            continue
        best = io.read_json(fold_out / "best_checkpoint.json") if (fold_out / "best_checkpoint.json").exists() else None
        fold_metrics = res.get("eval") or (best or {}).get("metrics")
        if not fold_metrics:
            raise InputError(f"{fold_out}: no evaluation results for fold {i}")
        per_fold.append({"fold": i, "metrics": fold_metrics, "best": best})
    if dist.is_main:
        summary = summarise_folds([f["metrics"] for f in per_fold])
        cv = {"n_folds": args.n_folds, "folds": per_fold, "summary": summary,
              "note": "metrics of each fold's final model on its dev fold (best-by-AUC under 'best')"}
        io.write_json(out / "cv_results.json", cv)
        io.write_text(out / "cv_results.md", cv_markdown(per_fold, summary))
        io.write_run_args(out, vars(args), "finetune_args.json")
        print(cv_markdown(per_fold, summary))
    return {"cv": per_fold}


def cv_markdown(per_fold: list[dict], summary: dict) -> str:
    """A Markdown table: one row per fold, then mean ± standard deviation."""
    keys = [key for key in (*ORIGINAL_KEYS, "aupr") if key in summary]
    lines = ["| fold | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for f in per_fold:
        lines.append(f"| {f['fold']} | " + " | ".join(f"{f['metrics'][key]:.4f}" for key in keys) + " |")
    lines.append("| mean ± sd | " + " | ".join(
        f"{summary[key]['mean']:.4f} ± {summary[key]['std']:.4f}" for key in keys) + " |")
    return "\n".join(lines) + "\n"

