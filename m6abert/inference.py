"""Prediction: the one batched inference loop, probabilities, and run_predict_degradation.py's files.

:func:`run_batches` is the only loop that runs a model over a data set without training it: it
serves prediction, dev-set evaluation while fine-tuning, the masked-LM evaluation of pretraining,
attention and attribution. It puts the model in eval mode on the requested device for the loop
and gives it back in the mode and on the device it found it.

As the original, :func:`m6abert.commands.predict.predict_files` scores ``test.tsv`` with a fine-tuned model and saves
P(class 1) as ``predict_dir/pred_results.npy`` (float32, shape (N,), TSV row order). New:
``predictions.tsv`` (row, probability, predicted label, true label), ``pred_metrics.json`` when
labels are present, and FASTA input keyed by record id.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import numpy as np
import torch

from .constants import MAX_POSITIONS
from .data import Collator, LabelledData
from .progress import progress_bar
from .utils import InputError, check_fp16, check_model_k

PREDICTION_OUTPUTS = ("pred_results.npy", "predictions.tsv", "pred_metrics.json", "predict_args.json",
                      "variant_effects.tsv", "shard.json")


@contextlib.contextmanager
def borrowed(model: torch.nn.Module, device: str | torch.device) -> Iterator[torch.nn.Module]:
    """``model`` in eval mode on ``device`` for a block; its mode and device are restored afterwards."""
    from .model import inference_attention

    was_training = model.training
    first = next(model.parameters(), None)
    home = first.device if first is not None else torch.device(device)
    model.eval().to(device)
    try:
        with inference_attention(model):
            yield model
    finally:
        model.to(home)
        model.train(was_training)


def run_batches(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    collate: Callable[[list[dict]], dict],
    step: Callable[[torch.nn.Module, dict], object],
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    desc: str = "predict",
    verbose: bool = True,
    grad: bool = False,
) -> list:
    """Run ``step(model, batch)`` over ``dataset`` in order, ``batch_size`` items at a time.

    Parameters
    ----------
    model: torch.nn.Module
        Borrowed in eval mode on ``device`` (see :func:`borrowed`).
    dataset: torch.utils.data.Dataset
        Items for ``collate``.
    collate: callable
        Pads a list of items into a batch of tensors (moved to ``device`` before ``step``).
    step: callable
        ``step(model, batch) -> result``; one result per batch is returned.
    batch_size: int
        Default is 8.
    device: str or torch.device
        Default is "cpu".
    desc: str
        Label of the progress bar. Default is "predict".
    verbose: bool
        Show progress (sequences): a bar on a terminal, a log line now and then elsewhere. Default is True.
    grad: bool
        Keep autograd on (attribution); otherwise the loop runs under ``torch.inference_mode``.
        Default is False.

    Returns
    -------
    list
        The results of ``step``, one per batch.
    """
    out = []
    mode = contextlib.nullcontext() if grad else torch.inference_mode()
    bar = progress_bar(len(dataset), desc, "seq", disable=not verbose, leave=False)  # a log line in batch logs
    with borrowed(model, device), mode, bar:
        for start in range(0, len(dataset), batch_size):
            items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
            batch = {key: v.to(device) for key, v in collate(items).items()}
            out.append(step(model, batch))
            bar.update(len(items))
    return out


def _logits(model: torch.nn.Module, batch: dict) -> np.ndarray:
    inputs = {key: v for key, v in batch.items() if key != "labels"}
    return model(**inputs).logits.float().cpu().numpy()  # B, 2


class _Reordered(torch.utils.data.Dataset):
    """``dataset`` seen in the item order ``order``."""

    def __init__(self, dataset: torch.utils.data.Dataset, order: np.ndarray):
        self.dataset, self.order = dataset, order

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int) -> dict:
        return self.dataset[int(self.order[i])]


def length_order(dataset: torch.utils.data.Dataset) -> np.ndarray:
    """Item indices from the longest row to the shortest (stable): batches of similar lengths pad least.

    >>> length_order([{"input_ids": [1, 2]}, {"input_ids": [1, 2, 3]}, {"input_ids": [1]}]).tolist()
    [1, 0, 2]
    """
    lengths = np.fromiter((len(dataset[i]["input_ids"]) for i in range(len(dataset))), dtype=np.int64,
                          count=len(dataset))
    return np.argsort(-lengths, kind="stable")


def predict_logits(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    collate: Callable[[list[dict]], dict],
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    desc: str = "predict",
    verbose: bool = True,
) -> np.ndarray:
    """Logits of ``model`` for every item of ``dataset``, in the dataset's order.

    Unless ``collate`` pads every batch to a fixed width (``dnabert_compat``), the items run from the
    longest to the shortest, so a batch pads to rows of about its own length (the padding is masked,
    so a row's logits do not depend on its batch beyond float rounding).

    Returns
    -------
    logits: np.ndarray, shape=(N, 2), float32
    """
    bucketed = not getattr(collate, "dnabert_compat", True) and len(dataset) > batch_size
    order = length_order(dataset) if bucketed else None
    data = _Reordered(dataset, order) if bucketed else dataset
    out = run_batches(model, data, collate, _logits, batch_size, device, desc, verbose)
    logits = np.concatenate(out) if out else np.zeros((0, 2), dtype=np.float32)
    if bucketed:
        restored = np.empty_like(logits)
        restored[order] = logits
        logits = restored
    return logits


def predict(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    max_seq_length: int = MAX_POSITIONS,
    dnabert_compat: bool = False,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    verbose: bool = True,
) -> np.ndarray:
    """Logits of a classifier for a data set of k-mer rows (:class:`~m6abert.data.KmerDataset`).

    Returns
    -------
    logits: np.ndarray, shape=(N, 2), float32
    """
    return predict_logits(model, dataset, Collator(max_seq_length, dnabert_compat), batch_size, device,
                          verbose=verbose)


def check_finite(values: np.ndarray, where: str | os.PathLike, names: list[str] | None = None,
                 what: str = "outputs") -> None:
    """Raise if a model's outputs hold NaN or infinite values (rows along the first axis).

    A broken checkpoint must never yield ``probability nan`` or all-zero scores that read as "no signal".
    """
    bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1) if len(values) else np.zeros(0, bool)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        label = names[first] if names is not None else str(first)
        raise InputError(f"{where}: the model gives NaN or infinite {what} for {int(bad.sum())} of {len(values)} "
                         f"sequences (first: {label}); the checkpoint is not usable")


def autocast(device: str | torch.device, precision: str | None):
    """``torch.autocast`` for ``precision`` ("bf16", "fp16" on CUDA) on ``device``'s type; a no-op for None."""
    kind = torch.device(device).type
    if precision is None:
        return contextlib.nullcontext()
    check_fp16(precision == "fp16", kind)
    return torch.autocast(kind, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def prediction_columns(data: LabelledData, probs: np.ndarray, preds: np.ndarray, key: str) -> dict:
    columns = {key: data.names, "probability": probs.tolist(), "predicted_label": preds.tolist()}
    if data.labels is not None:
        columns["true_label"] = data.labels.tolist()
    return columns


def load_classifier(model_dir: str | os.PathLike, k: int | None, max_seq_length: int,
                    dnabert_compat: bool = False) -> tuple[torch.nn.Module, int]:
    """A fine-tuned classifier folder, checked against the caller's k and ``max_seq_length``."""
    from .model import check_positions, load_model

    model, model_k = load_model(str(model_dir), "classification",
                                attn_implementation="eager" if dnabert_compat else "sdpa", fine_tuned=True)
    check_model_k(f"--tokenizer_name dna{k}", k, model_k, f"the model in {model_dir}")
    check_positions(model, max_seq_length, str(model_dir))
    return model, model_k


