"""Per-nucleotide relevance scores of a fine-tuned classifier: attention and integrated gradients.

This module owns visualize_all.py's two scores, both one value per nucleotide and sequence, each
row L2-normalised:

* ``attn`` (DNABERT-viz): the attention FROM ``[CLS]`` TO every k-mer token in the last (or a
  chosen) layer, summed over heads. Each batch's attention is reduced to the ``[CLS]`` row as soon
  as it is computed (the original kept an (N, heads, L, L) float64 array in memory).
* ``attr``: Captum's ``LayerIntegratedGradients`` on the output of ``model.bert.embeddings`` (or of
  one encoder layer), explaining the softmax probability of each sequence's TRUE label against a
  baseline in which every k-mer is ``[PAD]`` and ``[CLS]``/``[SEP]`` stay in place; token
  attribution = |sum over the hidden dimension|. Batches of sequences go through one Captum call.

Token scores are spread to nucleotides by averaging over the k-mers covering each base.

With ``dnabert_compat`` the original's numbers are reproduced: batches are padded to
``max_seq_length`` with the fork's unmasked (+1/0) attention mask, the attention of ``[SEP]`` and of
the padding stays in (the original's "zero the [SEP]" rule practically never fires), and the
nucleotide means count the ``[SEP]``/padding entries. Without it, padding is masked, ``[SEP]`` is
zeroed, and a nucleotide's score is the mean over the real k-mers covering it.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from . import io
from .kmer import CLS_ID, PAD_ID, SEP_ID
from .model import Collator, real_token_mask
from .utils import InputError, log, resolve_device

DELTA_WARN = 0.05  # |convergence delta| (probability units) worth a warning


# ---------------------------------------------------------------------------- k-mers -> nucleotides
def kmer_to_nucleotide(token_scores: np.ndarray, k: int, valid: np.ndarray | None = None) -> np.ndarray:
    """Spread k-mer scores to nucleotides: each base gets the mean score of the k-mers covering it.

    Token ``j`` covers nucleotides ``j .. j+k-1``. With ``valid`` only the valid entries count
    (sum and count); without it every entry counts, as the original did for its ``[SEP]`` and
    padding entries. Bases no entry covers get 0.

    Parameters
    ----------
    token_scores: np.ndarray, shape=(N, T)
        One score per k-mer position.
    k: int
        k-mer length.
    valid: np.ndarray or None, shape=(N, T), bool
        Which entries are real k-mers. Default is None (all entries count).

    Returns
    -------
    np.ndarray, shape=(N, T+k-1), float64

    >>> kmer_to_nucleotide(np.array([[1.0, 3.0, 0.0]]), 2).tolist()
    [[1.0, 2.0, 1.5, 0.0]]
    >>> kmer_to_nucleotide(np.array([[1.0, 3.0, 0.0]]), 2, np.array([[True, True, False]])).tolist()
    [[1.0, 2.0, 3.0, 0.0]]
    """
    scores = np.asarray(token_scores, dtype=np.float64)
    n, t = scores.shape
    weight = np.ones((n, t)) if valid is None else np.asarray(valid, dtype=np.float64)
    sums = np.zeros((n, t + k - 1))
    counts = np.zeros((n, t + k - 1))
    for off in reversed(range(k)):  # adds the covering k-mers left to right, as the original's loop
        sums[:, off : off + t] += scores * weight
        counts[:, off : off + t] += weight
    return np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)


def l2_normalise(scores: np.ndarray) -> np.ndarray:
    """Divide each row by its L2 norm; an all-zero row stays zero (the original gave NaN)."""
    norm = np.linalg.norm(scores, axis=1, keepdims=True)  # N, 1
    return np.divide(scores, norm, out=np.zeros_like(scores, dtype=np.float64), where=norm > 0)


def _kmer_counts(real: torch.Tensor) -> np.ndarray:
    """Number of k-mer tokens per row of a real-token mask that includes [CLS] and [SEP]."""
    return (real.sum(dim=1) - 2).cpu().numpy()


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
        A :class:`~m6abert.model.Collator` mask (standard or ``dnabert_compat``).
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
        n_kmers = _kmer_counts(real)  # B
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
    max_seq_length: int = 512,
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
        Items ``{"input_ids": [CLS] k-mers [SEP], ...}`` (:class:`~m6abert.model.KmerDataset`).
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

    collate = Collator(max_seq_length, dnabert_compat)
    model.eval().to(device)
    layer = -1 if layer is None else layer
    scores, logits_all, lengths = [], [], []
    with torch.inference_mode(), tqdm(total=len(dataset), desc="attention", unit="seq", disable=not verbose) as bar:
        for start in range(0, len(dataset), batch_size):
            batch = collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
            ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
            logits, rows = cls_attention(model, ids, mask, layer)  # B, 2; B, heads, W
            real = real_token_mask(mask)
            scores.append(attention_to_nucleotides(rows, real, k, max_seq_length, dnabert_compat))
            logits_all.append(logits.float().cpu().numpy())
            lengths.append(_kmer_counts(real) + k - 1)
            bar.update(len(ids))
    if not scores:
        return AttentionScores(np.zeros((0, max_seq_length)), np.zeros(0, np.float32), np.zeros(0, np.int64))
    return AttentionScores(np.concatenate(scores), softmax_p1(np.concatenate(logits_all)),
                           np.concatenate(lengths).astype(np.int64))


# ---------------------------------------------------------------------------- integrated gradients
class TokenAttributions(NamedTuple):
    attributions: torch.Tensor  # (B, W) signed, summed over the hidden dimension
    delta: torch.Tensor  # (B,) Captum's convergence delta: sum(attributions) - (F(x) - F(baseline))


class AttributionScores(NamedTuple):
    scores: np.ndarray  # (N, max_seq_length-2+k-1) float64, L2-normalised rows
    delta: np.ndarray  # (N,) Captum's convergence deltas
    lengths: np.ndarray  # (N,) int64, sequence length in nucleotides


def baseline_ids(input_ids: torch.Tensor) -> torch.Tensor:
    """The original's IG baseline: every token [PAD] except [CLS] and [SEP], which stay in place.

    >>> baseline_ids(torch.tensor([[2, 7, 9, 3, 0]])).tolist()
    [[2, 0, 0, 3, 0]]
    """
    keep = (input_ids == CLS_ID) | (input_ids == SEP_ID)
    return torch.where(keep, input_ids, torch.full_like(input_ids, PAD_ID))


def _probabilities(model: torch.nn.Module):
    def forward(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model(input_ids=input_ids, attention_mask=attention_mask).logits, dim=-1)  # B, 2

    return forward


def token_attributions(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    target: torch.Tensor,
    layer: int | None = None,
    n_steps: int = 50,
    internal_batch_size: int | None = None,
) -> TokenAttributions:
    """Layer integrated gradients of P(``target``) for a batch, summed over the hidden dimension.

    ``LayerIntegratedGradients(softmax(model(...)), model.bert.embeddings)`` (or the output of
    ``model.bert.encoder.layer[layer]``), method Gauss-Legendre, multiplied by inputs; the baseline
    is :func:`baseline_ids` and the attention mask is passed unchanged for input and baseline.

    Parameters
    ----------
    model: transformers.BertForSequenceClassification
        In eval mode.
    input_ids: torch.Tensor, shape=(B, W)
    attention_mask: torch.Tensor, shape=(B, W) or (B, 1, 1, W)
    target: torch.Tensor, shape=(B,)
        Class whose probability is explained (the original: the true label).
    layer: int or None
        Encoder layer whose output is attributed. Default is None (the embeddings).
    n_steps: int
        Integration steps. Default is 50.
    internal_batch_size: int or None
        Rows per forward pass inside Captum (rounded down to a multiple of B, at least B).
        Default is None (all B * n_steps rows at once).

    Returns
    -------
    TokenAttributions
        ``attributions`` (B, W) and ``delta`` (B,).
    """
    from captum.attr import LayerIntegratedGradients

    target_layer = model.bert.embeddings if layer is None else model.bert.encoder.layer[layer].output
    lig = LayerIntegratedGradients(_probabilities(model), target_layer, multiply_by_inputs=True)
    if internal_batch_size is not None:
        internal_batch_size = max(internal_batch_size, len(input_ids))
    attr, delta = lig.attribute(
        inputs=input_ids, baselines=baseline_ids(input_ids), target=target,
        additional_forward_args=(attention_mask,), n_steps=n_steps, method="gausslegendre",
        internal_batch_size=internal_batch_size, return_convergence_delta=True,
    )  # B, W, H; B
    return TokenAttributions(attr.sum(dim=-1).detach(), delta.detach())  # B, W


def attributions_to_nucleotides(
    token_attr: torch.Tensor, real: torch.Tensor, k: int, max_seq_length: int, dnabert_compat: bool = False
) -> np.ndarray:
    """visualize_all.py's attribution scores from a batch of token attributions.

    |attribution|, [CLS] and [SEP] removed (leaving ``max_seq_length-2`` entries: the k-mers, then
    padding), spread to nucleotides and L2-normalised. Compat: the padding entries count in the
    nucleotide means (diluting the last k-1 bases), as the original's. Otherwise only real k-mers
    count.

    Parameters
    ----------
    token_attr: torch.Tensor, shape=(B, W)
        From :func:`token_attributions`.
    real: torch.Tensor, shape=(B, W), bool
        Real tokens ([CLS], k-mers, [SEP]).
    k: int
    max_seq_length: int
    dnabert_compat: bool
        Default is False.

    Returns
    -------
    np.ndarray, shape=(B, max_seq_length-2+k-1), float64, L2-normalised rows
    """
    a = token_attr.double().abs().cpu().numpy()  # B, W
    n_kmers = _kmer_counts(real)  # B
    t = max_seq_length - 2
    b, w = a.shape
    if dnabert_compat:  # np.delete of [SEP] then [CLS], as the original
        keep = np.ones((b, w), dtype=bool)
        keep[:, 0] = False
        keep[np.arange(b), n_kmers + 1] = False
        s = a[keep].reshape(b, w - 2)  # B, L-2
        return l2_normalise(kmer_to_nucleotide(s, k))
    s = np.zeros((b, t))
    s[:, : w - 2] = a[:, 1 : w - 1]
    valid = np.arange(t)[None, :] < n_kmers[:, None]  # B, T
    s[~valid] = 0.0
    return l2_normalise(kmer_to_nucleotide(s, k, valid))


def attribution_scores(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    k: int,
    max_seq_length: int = 512,
    layer: int | None = None,
    dnabert_compat: bool = False,
    n_steps: int = 50,
    internal_batch_size: int | None = None,
    batch_size: int = 50,
    device: str | torch.device = "cpu",
    verbose: bool = True,
) -> AttributionScores:
    """Integrated-gradients scores (visualize_all.py ``--vis_task attr``) of every labelled sequence.

    Sequences go through Captum ``batch_size`` at a time (the original: one at a time); the
    target of each is its true label.

    Parameters
    ----------
    model: transformers.BertForSequenceClassification
    dataset: torch.utils.data.Dataset
        Items with ``input_ids`` and ``labels`` (:class:`~m6abert.model.KmerDataset` with labels).
    k: int
    max_seq_length: int
        Default is 512.
    layer: int or None
        Encoder layer whose output is attributed. Default is None (the embeddings).
    dnabert_compat: bool
        Default is False.
    n_steps: int
        Integration steps. Default is 50.
    internal_batch_size: int or None
        Rows per forward pass inside Captum. Default is None (``batch_size``: one step of a
        batch per pass).
    batch_size: int
        Sequences per Captum call. Default is 50.
    device: str or torch.device
        Default is "cpu".
    verbose: bool
        Default is True.

    Returns
    -------
    AttributionScores
        ``scores`` (N, max_seq_length-2+k-1) float64, ``delta`` (N,), ``lengths`` (N,).
    """
    collate = Collator(max_seq_length, dnabert_compat)
    model.eval().to(device)
    ibs = internal_batch_size or batch_size
    scores, deltas, lengths = [], [], []
    with tqdm(total=len(dataset), desc="attribution", unit="seq", disable=not verbose) as bar:
        for start in range(0, len(dataset), batch_size):
            batch = collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
            if "labels" not in batch:
                raise InputError("attributions need labelled sequences (the target is the true label)")
            ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
            res = token_attributions(model, ids, mask, batch["labels"].to(device), layer, n_steps, ibs)
            real = real_token_mask(mask)
            scores.append(attributions_to_nucleotides(res.attributions, real, k, max_seq_length, dnabert_compat))
            deltas.append(res.delta.double().cpu().numpy())
            lengths.append(_kmer_counts(real) + k - 1)
            bar.update(len(ids))
    if not scores:
        return AttributionScores(np.zeros((0, max_seq_length - 2 + k - 1)), np.zeros(0), np.zeros(0, np.int64))
    return AttributionScores(np.concatenate(scores), np.concatenate(deltas), np.concatenate(lengths).astype(np.int64))


# ---------------------------------------------------------------------------- visualize_all.py
def score_file_stem(vis_task: str, data_name: str, layer: int | None = None) -> str:
    """``atten_{data_name}`` / ``attributions_{data_name}``, with ``_layer_{layer}`` if given.

    >>> score_file_stem("attr", "dev", 3)
    'attributions_dev_layer_3'
    """
    stem = f"{io.SCORE_FILE_STEMS[vis_task]}_{data_name}"
    return stem if layer is None else f"{stem}_layer_{layer}"


def _load_sets(data_dir: str, names: tuple[str, ...], k: int, max_seq_length: int, require_labels: bool):
    from .predict import load_tsv_dataset

    parts = [load_tsv_dataset(Path(data_dir) / f"{n}.tsv", k, max_seq_length, require_labels) for n in names]
    has = {p.labels is not None for p in parts}
    if len(has) > 1:
        raise InputError(f"{data_dir}: some of {', '.join(n + '.tsv' for n in names)} have labels and some not")
    labels = np.concatenate([p.labels for p in parts]) if has == {True} else None
    dataset = parts[0].dataset if len(parts) == 1 else torch.utils.data.ConcatDataset([p.dataset for p in parts])
    return dataset, labels


def plot_scores(
    scores: np.ndarray, labels: np.ndarray, lengths: np.ndarray, stem: str, site_index: int, what: str
) -> dict:
    """Heatmap and profile figures of a score matrix, cropped to the longest sequence."""
    from .plots import score_heatmap, score_profile

    width = int(min(scores.shape[1], lengths.max())) if len(lengths) else scores.shape[1]
    shown = scores[:, :width].copy()
    shown[np.arange(width)[None, :] >= lengths[:, None]] = np.nan  # past each sequence's end: blank
    pos, neg = shown[labels == 1], shown[labels == 0]
    return {
        f"{stem}_heatmap": score_heatmap(pos, neg, site_index, title=what),
        f"{stem}_profile": score_profile(pos, neg, site_index, title=what),
    }


def run(args: argparse.Namespace) -> dict[str, str]:
    """visualize_all.py: score ``--data_name`` with the fine-tuned ``--model_path`` and save the arrays.

    Writes ``atten_{data_name}.npy`` + ``pred_results_{data_name}.npy`` (attn) or
    ``attributions_{data_name}.npy`` (attr) into ``--output_dir`` (``_layer_{layer}`` variants with
    ``--layer``), PNG/PDF heatmap and profile figures unless ``--no_plot``, and
    ``visualize_args.json``. Everything is read and checked before anything is written.

    Returns
    -------
    dict
        Output name -> path of every file written.
    """
    from .model import load_model

    attn = args.vis_task == "attn"
    model, k = load_model(args.model_path, "classification", attn_implementation="eager" if attn else "sdpa",
                          fine_tuned=True)
    if args.kmer is not None and args.kmer != k:
        raise InputError(f"--kmer {args.kmer} does not match the model in {args.model_path} (k={k})")
    n_layers, max_pos = model.config.num_hidden_layers, model.config.max_position_embeddings
    if args.layer is not None and not -n_layers <= args.layer < n_layers:
        raise InputError(f"--layer {args.layer}: the model has {n_layers} layers (0..{n_layers - 1})")
    if args.max_seq_length > max_pos:
        raise InputError(f"--max_seq_length {args.max_seq_length} exceeds the model's {max_pos} positions")
    names = ("train", "dev", "test") if args.data_name == "all" else (args.data_name,)
    dataset, labels = _load_sets(args.data_dir, names, k, args.max_seq_length, require_labels=not attn)
    device = resolve_device(args.no_cuda)
    out = Path(args.output_dir)
    stem = score_file_stem(args.vis_task, args.data_name, args.layer)
    common = dict(k=k, max_seq_length=args.max_seq_length, layer=args.layer, dnabert_compat=args.dnabert_compat,
                  batch_size=args.batch_size, device=device)
    written: dict[str, str] = {}
    if attn:
        res = attention_scores(model, dataset, **common)
        io.save_npy(out / f"{stem}.npy", res.scores)
        written[stem] = str(out / f"{stem}.npy")
        if args.layer is None:
            pred = out / f"pred_results_{args.data_name}.npy"
            io.save_npy(pred, res.probs)
            written["pred_results"] = str(pred)
    else:
        res = attribution_scores(model, dataset, n_steps=args.n_steps, internal_batch_size=args.internal_batch_size,
                                 **common)
        io.save_npy(out / f"{stem}.npy", res.scores)
        written[stem] = str(out / f"{stem}.npy")
        worst = float(np.abs(res.delta).max()) if len(res.delta) else 0.0
        log.info("integrated gradients: max |convergence delta| %.3g over %d sequences", worst, len(res.delta))
        if worst > DELTA_WARN:
            log.warning("integrated gradients: attributions miss F(input) - F(baseline) by up to %.3g "
                        "(probability units); a larger --n_steps (now %d) integrates more exactly",
                        worst, args.n_steps)
    if not args.no_plot:
        if labels is None:
            log.warning("no labels in %s: heatmap and profile plots are skipped", args.data_dir)
        else:
            what = f"{'attention' if attn else 'attribution'} scores, {args.data_name}"
            if args.layer is not None:
                what += f", layer {args.layer}"
            for name, fig in plot_scores(res.scores, labels, res.lengths, stem, args.site_index, what).items():
                for path in io.save_figure(fig, out / name, formats=("png", "pdf")):
                    written[f"{name}{path.suffix}"] = str(path)
    io.write_run_args(out, vars(args), "visualize_args.json")
    print(f"{args.vis_task} scores of {len(res.scores)} sequences written to {out}")
    return written
