"""Attention scores (visualize_all.py ``--vis_task attn``): DNABERT-viz's [CLS] attention per nucleotide.

The attention FROM ``[CLS]`` TO every k-mer token in the last (or a chosen) layer, summed over
heads, spread to nucleotides by averaging over the k-mers covering each base, each row
L2-normalised. Each batch's attention is reduced to the ``[CLS]`` row as soon as it is computed
(the original kept an (N, heads, L, L) float64 array in memory).

With ``dnabert_compat`` the original's numbers are reproduced: batches are padded to
``max_seq_length`` with the fork's unmasked (+1/0) attention mask, the attention of ``[SEP]`` and of
the padding stays in (the original's "zero the [SEP]" rule practically never fires), and the
nucleotide means count the ``[SEP]``/padding entries. Without it, padding is masked, ``[SEP]`` is
zeroed, and a nucleotide's score is the mean over the real k-mers covering it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch

from .constants import MAX_POSITIONS
from .data import Collator, kmer_counts, real_token_mask
from .inference import run_batches
from .kmer import kmer_to_nucleotide, l2_normalise


# ---------------------------------------------------------------------------- attention
class AttentionScores(NamedTuple):
    scores: np.ndarray  # (N, max_seq_length) float64, L2-normalised rows
    probs: np.ndarray  # (N,) float32, P(class 1)
    lengths: np.ndarray  # (N,) int64, sequence length in nucleotides


@contextlib.contextmanager
def _cls_attention_hook(model: torch.nn.Module, layer: int) -> Iterator[list[torch.Tensor]]:
    """Collect the [CLS] row of one layer's attention weights, (B, heads, W), during forwards."""
    module = model.bert.encoder.layer[layer].attention.self
    rows: list[torch.Tensor] = []

    def hook(_mod, _inp, out):
        weights = out[1] if isinstance(out, tuple) and len(out) > 1 else None  # B, heads, W, W
        if weights is None:
            raise ValueError("attention weights need attn_implementation='eager' (load_model(..., 'eager'))")
        rows.append(weights[:, :, 0, :].detach())  # B, heads, W

    handle = module.register_forward_hook(hook)
    try:
        yield rows
    finally:
        handle.remove()


def cls_attention(
    model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, layer: int = -1
) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass returning the logits and the attention from [CLS] in ``layer``.

    Only the [CLS] query row of that layer is kept, so memory stays at one layer's attention of
    one batch. The model must use eager attention.

    Parameters
    ----------
    model: transformers.BertForSequenceClassification
        In eval mode, ``attn_implementation="eager"``.
    input_ids: torch.Tensor, shape=(B, W)
    attention_mask: torch.Tensor, shape=(B, W) or (B, 1, 1, W)
        A :class:`~m6abert.data.Collator` mask (standard or ``dnabert_compat``).
    layer: int
        Encoder layer (Python indexing). Default is -1 (the last).

    Returns
    -------
    logits: torch.Tensor, shape=(B, 2)
    attention: torch.Tensor, shape=(B, heads, W)
        ``attention[b, h, j]`` = weight of key ``j`` for the [CLS] query; each (b, h) row sums to 1.
    """
    with _cls_attention_hook(model, layer) as rows:
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits  # B, 2
    return logits, rows[0]


def attention_to_nucleotides(
    cls_rows: torch.Tensor, real: torch.Tensor, k: int, max_seq_length: int, dnabert_compat: bool = False
) -> np.ndarray:
    """DNABERT-viz scores from the [CLS] attention rows of a batch.

    Token position ``i`` (1-based after [CLS]) gives the score of k-mer ``i-1``: the attention
    summed over heads. Compat: positions ``1 .. L-k+1`` of the padded row are taken as they are,
    the first entry followed by an exact 0 is zeroed (the original's [SEP] rule), every entry
    counts in the nucleotide means. Otherwise only real k-mers score ([SEP] and padding are 0) and
    count; scores past ``max_seq_length`` nucleotides are dropped, as in the original.

    Parameters
    ----------
    cls_rows: torch.Tensor, shape=(B, heads, W)
        From :func:`cls_attention`; ``W == max_seq_length`` with ``dnabert_compat``.
    real: torch.Tensor, shape=(B, W), bool
        Real tokens ([CLS], k-mers, [SEP]).
    k: int
    max_seq_length: int
    dnabert_compat: bool
        Default is False.

    Returns
    -------
    np.ndarray, shape=(B, max_seq_length), float64, L2-normalised rows
    """
    length = max_seq_length
    summed = cls_rows.double().sum(dim=1).cpu().numpy()  # B, W
    if dnabert_compat:
        s = summed[:, 1 : length - k + 2].copy()  # B, L-k+1: k-mers, [SEP] and padding
        zero_next = s[:, 1:] == 0  # B, L-k
        first = zero_next.argmax(axis=1)
        rows = np.flatnonzero(zero_next.any(axis=1))
        s[rows, first[rows]] = 0.0
        nt = kmer_to_nucleotide(s, k)  # B, L
    else:
        n_kmers = kmer_counts(real)  # B
        t = max(length - 2, summed.shape[1] - 2)
        s = np.zeros((len(summed), t))  # B, T
        w = min(summed.shape[1] - 1, t)
        s[:, :w] = summed[:, 1 : 1 + w]
        valid = np.arange(t)[None, :] < n_kmers[:, None]  # B, T
        s[~valid] = 0.0  # [SEP] and padding
        nt = kmer_to_nucleotide(s, k, valid)[:, :length]  # B, L
    return l2_normalise(nt)


def attention_scores(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    k: int,
    max_seq_length: int = MAX_POSITIONS,
    layer: int | None = None,
    dnabert_compat: bool = False,
    batch_size: int = 50,
    device: str | torch.device = "cpu",
    verbose: bool = True,
) -> AttentionScores:
    """Attention scores (visualize_all.py ``--vis_task attn``) of every sequence of ``dataset``.

    Parameters
    ----------
    model: transformers.BertForSequenceClassification
        Loaded with ``attn_implementation="eager"``.
    dataset: torch.utils.data.Dataset
        Items ``{"input_ids": [CLS] k-mers [SEP], ...}`` (:class:`~m6abert.data.KmerDataset`).
    k: int
        k-mer length of the model.
    max_seq_length: int
        Tokens incl. [CLS]/[SEP]; the width of the score rows. Default is 512.
    layer: int or None
        Encoder layer whose attention is used. Default is None (the last).
    dnabert_compat: bool
        Reproduce the original (unmasked padding to ``max_seq_length``). Default is False.
    batch_size: int
        Sequences per forward pass. Default is 50.
    device: str or torch.device
        Default is "cpu".
    verbose: bool
        Show a progress bar. Default is True.

    Returns
    -------
    AttentionScores
        ``scores`` (N, max_seq_length) float64, ``probs`` (N,) float32 P(class 1), ``lengths``
        (N,) sequence lengths in nucleotides.
    """
    from .metrics import softmax_p1

    layer = -1 if layer is None else layer

    def step(m: torch.nn.Module, batch: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        logits, rows = cls_attention(m, batch["input_ids"], batch["attention_mask"], layer)  # B, 2; B, heads, W
        real = real_token_mask(batch["attention_mask"])
        return (attention_to_nucleotides(rows, real, k, max_seq_length, dnabert_compat),
                logits.float().cpu().numpy(), kmer_counts(real) + k - 1)

    out = run_batches(model, dataset, Collator(max_seq_length, dnabert_compat), step, batch_size, device,
                      "attention", verbose)
    if not out:
        return AttentionScores(np.zeros((0, max_seq_length)), np.zeros(0, np.float32), np.zeros(0, np.int64))
    scores, logits, lengths = (np.concatenate(parts) for parts in zip(*out, strict=True))
    return AttentionScores(scores, softmax_p1(logits), lengths.astype(np.int64))


def attention_output(model: torch.nn.Module, data, s, common: dict):
    """``--vis_task attn`` as a score method (:mod:`m6abert.score_methods`): the attention scores of ``data``
    and, over the last layer, P(class 1) (``pred_results_*.npy``), both checked finite."""
    from .inference import check_finite
    from .score_methods import ScoreOutput

    res = attention_scores(model, data.dataset, **common)
    check_finite(res.probs, s.model_path, data.names, "probabilities")
    check_finite(res.scores, s.model_path, data.names, "attention")
    return ScoreOutput(res.scores, res.lengths, {"probs": res.probs} if common["layer"] is None else {})
