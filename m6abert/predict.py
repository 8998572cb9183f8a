"""Probabilities and metrics for labelled or new data (run_predict_degradation.py).

As the original: ``test.tsv`` of ``--data_dir`` is scored by the fine-tuned model in
``--output_dir`` and P(class 1) is saved as ``predict_dir/pred_results.npy`` (float32, shape (N,),
TSV row order). New: ``predictions.tsv`` (row, probability, predicted label, true label),
``pred_metrics.json`` when labels are present, and ``--predict_fasta`` to score the records of a
FASTA file directly, keyed by record id.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from . import io
from .data import check_lengths
from .kmer import encode_kmer_sentences, encode_many
from .metrics import classification_metrics, softmax_p1
from .model import Collator, KmerDataset, check_data_k, check_length, check_letters, load_model
from .utils import InputError, log, resolve_device


def predict_logits(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    collate: Collator,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    desc: str = "predict",
    verbose: bool = True,
) -> np.ndarray:
    """Run ``model`` over ``dataset`` in order.

    Returns
    -------
    logits: np.ndarray, shape=(N, 2), float32
    """
    model.eval().to(device)
    out = []
    with torch.inference_mode():
        for start in tqdm(range(0, len(dataset), batch_size), desc=desc, disable=not verbose, leave=False):
            items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
            batch = collate(items)
            batch.pop("labels", None)
            logits = model(**{key: v.to(device) for key, v in batch.items()}).logits  # B, 2
            out.append(logits.float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.float32)


class LabelledData(NamedTuple):
    dataset: KmerDataset
    labels: np.ndarray | None
    names: list[str]  # row numbers (TSV) or record ids (FASTA)


def load_tsv_dataset(path: str | Path, k: int, max_seq_length: int, require_labels: bool = True) -> LabelledData:
    """A TSV split as a dataset, checked against the model's k and ``max_seq_length``."""
    tsv = io.read_tsv(path, require_labels=require_labels)
    check_data_k(tsv.sentences, k, str(path))
    check_letters(tsv.sentences, str(path))
    enc = encode_kmer_sentences(tsv.sentences, k)
    if enc.n_unknown:
        log.warning("%s: %d k-mers are not in the dna%d vocabulary and are read as [UNK]", path, enc.n_unknown, k)
    check_length(enc, max_seq_length, str(path))
    return LabelledData(KmerDataset(enc, tsv.labels, max_seq_length), tsv.labels,
                        [str(i) for i in range(len(tsv.sentences))])


def load_fasta_dataset(path: str | Path, k: int, max_seq_length: int) -> LabelledData:
    """The records of a FASTA file, k-merised on the fly with the model's k."""
    records = io.read_fasta(path)
    check_lengths(records, k, str(path))
    enc = encode_many([r.seq for r in records], k)
    if enc.n_unknown:
        log.warning("%s: %d k-mers contain N and are read as [UNK]", path, enc.n_unknown)
    check_length(enc, max_seq_length, str(path))
    return LabelledData(KmerDataset(enc, None, max_seq_length), None, [r.id for r in records])


def run(args: argparse.Namespace, split: str = "test") -> dict:
    """run_predict_degradation.py: score ``split``.tsv (or ``--predict_fasta``) with ``--output_dir``'s model.

    Everything is read and checked before anything is written.

    Returns
    -------
    dict
        The metrics (empty without labels).
    """
    from .options import tokenizer_k

    model, k = load_model(args.output_dir, "classification",
                          attn_implementation="eager" if args.dnabert_compat else "sdpa", fine_tuned=True)
    tk = tokenizer_k(args)
    if tk is not None and tk != k:
        raise InputError(f"--tokenizer_name dna{tk} does not match the model in {args.output_dir} (k={k})")
    if args.predict_fasta:
        data = load_fasta_dataset(args.predict_fasta, k, args.max_seq_length)
    else:
        data = load_tsv_dataset(Path(args.data_dir) / f"{split}.tsv", k, args.max_seq_length, require_labels=False)
    device = resolve_device(args.no_cuda)
    logits = predict_logits(model, data.dataset, Collator(args.max_seq_length, args.dnabert_compat),
                            args.per_gpu_pred_batch_size, device)
    probs = softmax_p1(logits)
    preds = logits.argmax(axis=1)
    predict_dir = Path(args.predict_dir or args.output_dir)
    metrics = classification_metrics(data.labels, logits) if data.labels is not None else {}
    key = "id" if args.predict_fasta else "row"
    columns = {key: data.names, "probability": probs.tolist(), "predicted_label": preds.tolist()}
    if data.labels is not None:
        columns["true_label"] = data.labels.tolist()
    io.save_npy(predict_dir / "pred_results.npy", probs)  # FASTA record order with --predict_fasta
    io.write_predictions_tsv(predict_dir / "predictions.tsv", columns)
    if metrics:
        io.write_json(predict_dir / "pred_metrics.json", metrics)
        log.info("***** Pred results *****")
        for name in sorted(metrics):
            log.info("  %s = %s", name, metrics[name])
    io.write_run_args(predict_dir, vars(args), "predict_args.json")
    print(f"predictions of {len(probs)} sequences written to {predict_dir}")
    return metrics
