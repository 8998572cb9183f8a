"""``run_predict_degradation.py`` from files to files: a TSV split scored by a fine-tuned model (the
original's ``pred_results.npy``, plus ``predictions.tsv`` and ``pred_metrics.json``), or a FASTA
streamed in chunks (:mod:`m6abert.commands.predict_fasta`), with the output folder held for the run.

With get_input.py's ``records.tsv`` beside the TSV, ``predictions.tsv`` names each row's record (``id``
after ``row``) and, when known, its genome coordinates (``chrom``, ``pos``, ``strand``, ``transcript``),
and ``predictions.bed`` places each site's P(degraded) in the genome (BED6, score = round(P x 1000),
sorted by chrom and start)."""

from __future__ import annotations

import os

import numpy as np
import torch

from .. import io
from ..constants import MAX_POSITIONS
from ..data import LabelledData, load_tsv_dataset, tsv_record_rows
from ..inference import (
    autocast,
    check_finite,
    load_classifier,
    predict,
    prediction_columns,
)
from ..preempt import held_run_dir
from ..utils import log
from .predict_fasta import PREDICTION_FILES, bed_writer, with_record_columns


def predict_files(
    model_dir: str | os.PathLike,
    predict_dir: str | os.PathLike,
    tsv: str | os.PathLike,
    k: int | None = None,
    max_seq_length: int = MAX_POSITIONS,
    batch_size: int = 8,
    dnabert_compat: bool = False,
    device: str | torch.device = "cpu",
    precision: str | None = None,
    run_args: dict | None = None,
) -> dict:
    """run_predict_degradation.py: score a TSV split with a fine-tuned model folder (a FASTA file is
    streamed by :func:`m6abert.commands.predict_fasta.predict_fasta_files`).

    Everything is read and checked before anything is written. Writes ``pred_results.npy``,
    ``predictions.tsv`` (keyed by ``row``; with ``records.tsv`` beside the TSV also ``id`` and the
    coordinates, and ``predictions.bed``), ``pred_metrics.json`` when the TSV has labels, and
    ``predict_args.json`` (``run_args``) into ``predict_dir``.

    Parameters
    ----------
    k: int or None
        k the caller expects (``--tokenizer_name``); checked against the model's. Default is None.
    precision: str or None
        ``"bf16"`` or ``"fp16"``: autocast the forward passes. Default is None (float32).

    Returns
    -------
    dict
        The metrics (empty without labels).
    """
    from ..metrics import classification_metrics

    model, model_k = load_classifier(model_dir, k, max_seq_length, dnabert_compat)
    data = load_tsv_dataset(tsv, model_k, max_seq_length, require_labels=False)
    rows = tsv_record_rows([(tsv, len(data.names), data.labels)]) if io.records_file(tsv) else None
    with autocast(device, precision):
        logits = predict(model, data.dataset, max_seq_length, dnabert_compat, batch_size, device)
    check_finite(logits, model_dir, data.names)
    metrics = classification_metrics(data.labels, logits) if data.labels is not None else {}
    if metrics:
        log.info("***** Pred results *****")
        for name in sorted(metrics):
            log.info("  %s = %s", name, metrics[name])
    if run_args is not None:  # the model's identity, not only its path (a folder may be retrained in place)
        from ..io.checkpoints import model_identity

        run_args = {**run_args, "model_identity": model_identity(model_dir)}
    files = prediction_writers(data, logits, "row", metrics, run_args, rows)
    io.write_output_set(predict_dir, files, PREDICTION_FILES, what="predictions")
    print(f"predictions of {len(data.names)} sequences written to {predict_dir}")
    return metrics


def prediction_writers(data: LabelledData, logits: np.ndarray, key: str, metrics: dict | None = None,
                       run_args: dict | None = None, rows: io.RecordRows | None = None) -> dict[str, io.Writer]:
    """The writers of a prediction's files: ``pred_results.npy`` (P(class 1) in data order),
    ``predictions.tsv`` (keyed by ``key``: ``row`` or ``id``; with ``rows`` the records' ``id`` and
    coordinates after it, and ``predictions.bed`` when some have coordinates), ``pred_metrics.json`` and
    ``predict_args.json`` when given."""
    from ..metrics import softmax_p1

    probs = softmax_p1(logits)
    columns = prediction_columns(data, probs, logits.argmax(axis=1), key)
    if rows is not None:
        columns = with_record_columns(columns, key, rows.ids if key != "id" else None, rows.coords)
    files: dict[str, io.Writer] = {"pred_results.npy": lambda p: io.save_npy(p, probs),
                                   "predictions.tsv": lambda p: io.write_predictions_tsv(p, columns)}
    if rows is not None and rows.has_coords():
        files[io.PREDICTION_BED] = bed_writer(io.bed_rows(rows.ids, rows.coords, probs))
    if metrics:
        files["pred_metrics.json"] = lambda p: io.write_json(p, metrics)
    if run_args is not None:
        files["predict_args.json"] = lambda p: io.write_run_args(p.parent, run_args, p.name)
    return files


def run_prediction(model_dir: str | os.PathLike, predict_dir: str | os.PathLike, *, tsv: str | os.PathLike | None = None,
                   fasta: str | os.PathLike | None = None, **settings) -> dict:
    """run_predict_degradation.py: with ``predict_dir`` held (its lock), a TSV split scored
    (:func:`predict_files`) or a FASTA streamed (:func:`~m6abert.commands.predict_fasta.predict_fasta_files`;
    ``settings`` then also take ``variants``, ``shard``, ``num_shards``, ``chunk_records``,
    ``pos_relative_to_site``)."""
    with held_run_dir(predict_dir):  # released (and a folder made only for it removed) if the run is refused
        if fasta is None:
            return predict_files(model_dir, predict_dir, tsv, **settings)
        from ..memory import retain_freed_memory
        from .predict_fasta import predict_fasta_files

        retain_freed_memory()  # no page faults of a batch's working set; given back after each chunk (_stream)
        return predict_fasta_files(model_dir, predict_dir, fasta, **settings)
