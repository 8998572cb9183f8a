"""The comparison table's built-in fold runners (named by :data:`m6abert.table_models.SLOTS`): each
trains one model on the other folds and scores the held-out fold (:class:`~m6abert.table_models.FoldJob`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .. import io
from ..corpus import SHARED
from ..table_models import FoldJob
from ..utils import set_seed
from .table import MAX_SEQ_LENGTH, TableSettings, cnn_args, finetune_args, pretrained_dir


def _bert_fold(s: TableSettings, out: Path, protocol: str, i: int, pretrained: Path | None, dist) -> tuple[np.ndarray, dict]:
    """Fine-tune a BERT on fold ``i``'s ``train.tsv`` (pretrained or from scratch); logits of its ``dev.tsv``."""
    from ..data import Collator, load_tsv_dataset
    from ..finetune import FinetuneSettings
    from ..inference import autocast, load_classifier, predict_logits
    from .finetune import run_finetune

    name = "m6a_bert_deg" if pretrained else "bert_scratch"
    fold_dir, fold_out = out / "data" / protocol / f"fold_{i}", out / "runs" / protocol / name / f"fold_{i}"
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


def pretrained_bert_fold(job: FoldJob) -> tuple[np.ndarray, dict]:
    """m6A-BERT-Deg: the pretrained BERT (the shared one, or the fold's with ``pretrain_per_fold``) fine-tuned."""
    key = f"{job.protocol}/fold_{job.fold}" if job.settings.pretrain_per_fold else SHARED
    return _bert_fold(job.settings, job.out, job.protocol, job.fold, pretrained_dir(job.out, key), job.dist)


def scratch_bert_fold(job: FoldJob) -> tuple[np.ndarray, dict]:
    """BERT-Deg without pretraining: the same architecture fine-tuned from random initialisation."""
    return _bert_fold(job.settings, job.out, job.protocol, job.fold, None, job.dist)


def cnn_fold(job: FoldJob) -> tuple[np.ndarray, dict]:
    """Train the CNN+LSTM on the other folds with the toolkit's loop; logits of the held-out fold."""
    from ..baselines import (
        CnnLstmConfig,
        CnnLstmForSequenceClassification,
        NucleotideCollator,
        NucleotideDataset,
    )
    from ..inference import predict_logits
    from ..train import train

    s, dist = job.settings, job.dist
    train_recs, train_labels, dev_seqs, _ = job.train_dev()
    train_seqs = [r.seq for r in train_recs]
    fold_out = job.out / "runs" / job.protocol / "cnn_lstm" / f"fold_{job.fold}"
    set_seed(s.seed)
    checkpoints = io.list_checkpoints(fold_out) if fold_out.is_dir() else []
    latest = checkpoints[-1] if checkpoints else None  # a killed fold resumes where it saved (save_steps)
    model = CnnLstmForSequenceClassification.from_pretrained(latest) if latest else \
        CnnLstmForSequenceClassification(CnnLstmConfig())
    res = train(model, NucleotideDataset(train_seqs, train_labels), NucleotideCollator(), cnn_args(s), fold_out,
                None, dist=dist, resume_from=latest)
    io.save_model_folder(fold_out, model)
    logits = predict_logits(model, NucleotideDataset(dev_seqs), NucleotideCollator(), s.batch_size, dist.device,
                            desc="cnn_lstm")
    return logits, {"train_loss": res.average_loss, "global_step": res.global_step}


def kmer_lr_fold(job: FoldJob) -> tuple[np.ndarray, dict]:
    """k-mer frequency LR fitted on the other folds (k by inner CV, grouped by locus under the grouped
    protocol); log-probabilities of the held-out fold."""
    from ..baselines import fit_kmer_lr, kmer_frequencies

    s = job.settings
    train_recs, train_labels, dev_seqs, _ = job.train_dev()
    groups = [job.plan.groups[r.id] for r in train_recs] if job.protocol == "grouped" else None
    fit = fit_kmer_lr([r.seq for r in train_recs], train_labels, s.kmer_ks, s.inner_folds, s.seed, groups)
    proba = fit.model.predict_proba(kmer_frequencies(dev_seqs, fit.k))
    return np.log(np.clip(proba, 1e-300, 1.0)), {"k": fit.k, "inner_auc": {str(k): v for k, v in fit.inner_auc.items()}}


def gc_lr_fold(job: FoldJob) -> tuple[np.ndarray, dict]:
    """GC-content LR fitted on the other folds; log-probabilities of the held-out fold."""
    from ..baselines import fit_gc_lr, gc_content

    train_recs, train_labels, dev_seqs, _ = job.train_dev()
    proba = fit_gc_lr([r.seq for r in train_recs], train_labels, job.settings.seed).predict_proba(gc_content(dev_seqs))
    return np.log(np.clip(proba, 1e-300, 1.0)), {}
