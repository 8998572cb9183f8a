"""Integrated-gradients attribution (visualize_all.py ``--vis_task attr``) per nucleotide.

Captum's ``LayerIntegratedGradients`` on the output of ``model.bert.embeddings`` (or of one
encoder layer), explaining the softmax probability (or the log-odds) of each sequence's TRUE label against a
baseline: the original's, in which every k-mer is ``[PAD]`` and ``[CLS]``/``[SEP]`` stay in place, or
``n_baselines`` dinucleotide-shuffled copies of the sequence (tangermeme's ``dinucleotide_shuffle``),
k-merised, the attributions averaged over them (integrated gradients over several references, as
genomics tools explain a model against shuffled sequences); token
attribution = |sum over the hidden dimension|, spread to nucleotides by averaging over the k-mers
covering each base, each row L2-normalised. Batches of sequences go through one Captum call, in
the one inference loop (:func:`m6abert.inference.run_batches`) with autograd on.

With ``dnabert_compat`` the original's numbers are reproduced (unmasked padding to
``max_seq_length``; the padding entries count in the nucleotide means).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .constants import MAX_POSITIONS
from .data import Collator, kmer_counts, real_token_mask
from .inference import run_batches
from .integration import Tolerance, integrate_pairs
from .kmer import (
    CLS_ID,
    PAD_ID,
    SEP_ID,
    SPECIAL_TOKENS,
    encode,
    kmer2seq,
    kmer_to_nucleotide,
    l2_normalise,
    vocab,
)
from .utils import InputError

METHODS = ("ig",)
N_SPECIAL = len(SPECIAL_TOKENS)  # ids below are [PAD], [UNK], [CLS], [SEP], [MASK]

# ---------------------------------------------------------------------------- integrated gradients
class TokenAttributions(NamedTuple):
    attributions: torch.Tensor  # (B, W) signed, summed over the hidden dimension
    delta: torch.Tensor  # (B,) Captum's convergence delta: sum(attributions) - (F(x) - F(baseline))
    abs_delta: torch.Tensor | None = None  # (B,) mean over the references of |delta| (signed deltas can cancel)
    steps: torch.Tensor | None = None  # (B,) int64: the most Gauss-Legendre steps one of its references took


class AttributionScores(NamedTuple):
    scores: np.ndarray  # (N, max_seq_length-2+k-1) float64, |attribution| per nucleotide, L2-normalised rows
    delta: np.ndarray  # (N,) Captum's convergence deltas (the mean over the references)
    lengths: np.ndarray  # (N,) int64, sequence length in nucleotides
    signed: np.ndarray | None = None  # (N, like scores) float64, signed attribution per nucleotide (raw units)
    f_input: np.ndarray | None = None  # (N,) the explained target at the input, F(x)
    f_baseline: np.ndarray | None = None  # (N,) and at the baseline, F(baseline) (the mean over references)
    gap: np.ndarray | None = None  # (N,) mean over references of |F(x) - F(reference)|: what the quadrature integrates
    abs_delta: np.ndarray | None = None  # (N,) mean over references of |delta|: the quadrature's error
    steps: np.ndarray | None = None  # (N,) int64: the most steps one of its references needed


TARGETS = ("prob", "logodds")
BASELINES = ("pad", "shuffle")


def baseline_ids(input_ids: torch.Tensor) -> torch.Tensor:
    """The original's IG baseline: every token [PAD] except [CLS] and [SEP], which stay in place.

    >>> baseline_ids(torch.tensor([[2, 7, 9, 3, 0]])).tolist()
    [[2, 0, 0, 3, 0]]
    """
    keep = (input_ids == CLS_ID) | (input_ids == SEP_ID)
    return torch.where(keep, input_ids, torch.full_like(input_ids, PAD_ID))


def dinucleotide_shuffles(seq: str, n: int, seed: int) -> list[str]:
    """``n`` dinucleotide-shuffled copies of ``seq`` (first and last base kept; every dinucleotide's
    count kept), by tangermeme's ``dinucleotide_shuffle``; the same ``seq`` and ``seed`` give the same
    copies whatever the batch.

    >>> copies = dinucleotide_shuffles("ACGTTGCAACGT", 3, seed=0)
    >>> len(copies), all(len(c) == 12 and c[0] == "A" and c[-1] == "T" for c in copies)
    (3, True)
    """
    import hashlib

    from tangermeme.ersatz import dinucleotide_shuffle
    from tangermeme.utils import characters, one_hot_encode

    alphabet = ["A", "C", "G", "T"]
    digest = int.from_bytes(hashlib.sha256(f"{seed}:{seq}".encode()).digest()[:4], "little")
    x = one_hot_encode(seq, alphabet=alphabet).unsqueeze(0)  # 1, 4, L
    try:
        shuffled = dinucleotide_shuffle(x, n=n, random_state=digest)[0]  # n, 4, L
    except ValueError as err:
        if "identical" not in str(err):
            raise
        # a low-complexity sequence (poly-A, ACACAC..., or too few distinct shuffles for n draws):
        # tangermeme refuses n identical shuffles, but they are a true sample of its shuffles; draw
        # them one at a time (tangermeme checks only several at once)
        shuffled = torch.cat([dinucleotide_shuffle(x, n=1, random_state=(digest + j) % 2**32)[0] for j in range(n)])
    return [characters(one, alphabet=alphabet) for one in shuffled]


def shuffled_baseline_ids(input_ids: torch.Tensor, attention_mask: torch.Tensor, k: int, n: int,
                          seed: int = 0) -> torch.Tensor:
    """``n`` dinucleotide-shuffled references of every sequence of a batch, k-merised in place of its
    k-mers ([CLS], [SEP] and padding unchanged).

    Parameters
    ----------
    input_ids, attention_mask: torch.Tensor, shape=(B, W)
    k: int
    n: int
        References per sequence.
    seed: int
        Default is 0.

    Returns
    -------
    torch.Tensor, shape=(B * n, W)
        Row ``b * n + j`` is the ``j``-th reference of sequence ``b``.
    """
    words = vocab(k)
    n_kmers = kmer_counts(real_token_mask(attention_mask))  # B
    rows = []
    for b in range(len(input_ids)):
        ids = input_ids[b, 1 : 1 + n_kmers[b]].tolist()
        if min(ids, default=N_SPECIAL) < N_SPECIAL:
            raise InputError(f"sequence {b} of a batch has unknown k-mers ([UNK]): a shuffled baseline needs "
                             "A/C/G/T sequences; use --baseline pad")
        for copy in dinucleotide_shuffles(kmer2seq([words[i] for i in ids]), n, seed):
            row = input_ids[b].clone()
            row[1 : 1 + n_kmers[b]] = torch.from_numpy(encode(copy, k))
            rows.append(row)
    return torch.stack(rows)  # B * n, W


def target_function(model: torch.nn.Module, target: str = "prob"):
    """The function whose column ``label`` integrated gradients explain.

    ``"prob"``: the softmax probabilities (the original's; saturates near 0 and 1). ``"logodds"``:
    the log-odds of each class, (logit0 - logit1, logit1 - logit0), which does not saturate.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, not {target!r}")

    def forward(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits  # B, 2
        if target == "prob":
            return torch.softmax(logits, dim=-1)
        odds = logits[:, 1] - logits[:, 0]  # B
        return torch.stack([-odds, odds], dim=1)  # B, 2

    return forward


def token_attributions(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    target: torch.Tensor,
    layer: int | None = None,
    n_steps: int = 50,
    internal_batch_size: int | None = None,
    attr_target: str = "prob",
    baselines: torch.Tensor | None = None,
    tolerance: Tolerance | None = None,
    gap: torch.Tensor | None = None,
) -> TokenAttributions:
    """Layer integrated gradients of P(``target``) for a batch, summed over the hidden dimension.

    ``LayerIntegratedGradients(softmax(model(...)), model.bert.embeddings)`` (or the output of
    ``model.bert.encoder.layer[layer]``), method Gauss-Legendre, multiplied by inputs; the baseline
    is :func:`baseline_ids` (or ``baselines``, n per sequence, the attributions and deltas averaged
    over them) and the attention mask is passed unchanged for input and baseline.

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
        Integration steps (without ``tolerance``). Default is 50.
    internal_batch_size: int or None
        Rows per forward pass inside Captum: the (sequence, reference) pairs go to Captum at most this
        many at a time. Default is None (all pairs x n_steps rows at once).
    attr_target: str
        ``"prob"`` (the original's probability) or ``"logodds"`` (see :func:`target_function`).
        Default is "prob".
    baselines: torch.Tensor or None, shape=(B * n, W)
        ``n`` references per sequence (row ``b * n + j``, as :func:`shuffled_baseline_ids`). Default is
        None (:func:`baseline_ids`, one per sequence).
    tolerance: Tolerance or None
        Adaptive integration (:func:`m6abert.integration.integrate_pairs`) with these steps and
        tolerances; needs ``gap``. Default is None (``n_steps`` for every pair).
    gap: torch.Tensor or None, shape=(B * n,)
        |F(x) - F(reference)| of every pair (:func:`pair_targets`).

    Returns
    -------
    TokenAttributions
        ``attributions`` (B, W) and ``delta`` (B,), averaged over the references, ``abs_delta``
        (B,), the mean of the references' |delta| (their signed deltas can cancel in ``delta``), and
        ``steps`` (B,), the most steps any of its references took.
    """
    from captum.attr import LayerIntegratedGradients

    target_layer = model.bert.embeddings if layer is None else model.bert.encoder.layer[layer].output
    lig = LayerIntegratedGradients(target_function(model, attr_target), target_layer, multiply_by_inputs=True)
    n = 1 if baselines is None else len(baselines) // len(input_ids)
    ids, mask, target = (t.repeat_interleave(n, dim=0) for t in (input_ids, attention_mask, target))  # B*n, ...
    refs = baseline_ids(ids) if baselines is None else baselines

    def call(pairs: torch.Tensor, steps: int, rows: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        every = len(pairs) == len(ids)
        attr, delta = lig.attribute(
            inputs=ids if every else ids[pairs], baselines=refs if every else refs[pairs],
            target=target if every else target[pairs], additional_forward_args=(mask if every else mask[pairs],),
            n_steps=steps, method="gausslegendre", internal_batch_size=rows, return_convergence_delta=True,
        )  # pairs, W, H; pairs
        return attr.sum(dim=-1).detach(), delta.detach()

    tol = Tolerance.fixed(n_steps) if tolerance is None else tolerance
    if tolerance is not None and gap is None:
        raise ValueError("adaptive integration needs the gap of every pair")
    pairs = integrate_pairs(call, torch.zeros(len(ids), dtype=torch.float64) if gap is None else gap.double(), n,
                            tol, internal_batch_size)
    attr = pairs.attributions.view(len(input_ids), n, -1).mean(dim=1)  # B, W
    delta = pairs.delta.to(attr.dtype).view(len(input_ids), n)  # B, n (Captum's dtype)
    steps = pairs.steps.view(len(input_ids), n).max(dim=1).values
    return TokenAttributions(attr, delta.mean(dim=1), delta.abs().mean(dim=1), steps)


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
    return _spread(token_attr.double().abs().cpu().numpy(), real, k, max_seq_length, dnabert_compat, True)


def _spread(a: np.ndarray, real: torch.Tensor, k: int, max_seq_length: int, dnabert_compat: bool,
            normalise: bool) -> np.ndarray:
    """Token values (B, W) without [CLS]/[SEP] to nucleotides, L2-normalised if ``normalise``."""
    norm = l2_normalise if normalise else (lambda x: x)
    n_kmers = kmer_counts(real)  # B
    t = max_seq_length - 2
    b, w = a.shape
    if dnabert_compat:  # np.delete of [SEP] then [CLS], as the original
        keep = np.ones((b, w), dtype=bool)
        keep[:, 0] = False
        keep[np.arange(b), n_kmers + 1] = False
        s = a[keep].reshape(b, w - 2)  # B, L-2
        return norm(kmer_to_nucleotide(s, k))
    s = np.zeros((b, t))
    s[:, : w - 2] = a[:, 1 : w - 1]
    valid = np.arange(t)[None, :] < n_kmers[:, None]  # B, T
    s[~valid] = 0.0
    return norm(kmer_to_nucleotide(s, k, valid))


def attribution_scores(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    k: int,
    max_seq_length: int = MAX_POSITIONS,
    layer: int | None = None,
    dnabert_compat: bool = False,
    n_steps: int = 50,
    internal_batch_size: int | None = None,
    batch_size: int = 50,
    device: str | torch.device = "cpu",
    verbose: bool = True,
    attr_target: str = "prob",
    baseline: str = "pad",
    n_baselines: int = 1,
    seed: int = 0,
    tolerance: Tolerance | None = None,
) -> AttributionScores:
    """Integrated-gradients scores (visualize_all.py ``--vis_task attr``) of every labelled sequence.

    Sequences go through Captum ``batch_size`` at a time (the original: one at a time); the
    target of each is its true label.

    Parameters
    ----------
    model: transformers.BertForSequenceClassification
    dataset: torch.utils.data.Dataset
        Items with ``input_ids`` and ``labels`` (:class:`~m6abert.data.KmerDataset` with labels).
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

    attr_target: str
        ``"prob"`` (the original's) or ``"logodds"`` of the true label (:func:`target_function`).
        Default is "prob".
    baseline: str
        ``"pad"`` (the original's all-[PAD] sequence, :func:`baseline_ids`) or ``"shuffle"``
        (``n_baselines`` dinucleotide shuffles of each sequence, :func:`shuffled_baseline_ids`; the
        attributions are averaged and F(baseline) is their mean). Default is "pad".
    n_baselines: int
        References per sequence with ``baseline="shuffle"``. Default is 1.
    seed: int
        Seed of the shuffles. Default is 0.
    tolerance: Tolerance or None
        Adaptive integration: each pair's steps and when a sequence adds up (:mod:`m6abert.integration`).
        Default is None (``n_steps`` for every pair).

    Returns
    -------
    AttributionScores
        ``scores`` (N, max_seq_length-2+k-1) float64, ``delta`` (N,), ``lengths`` (N,), ``signed``
        (like ``scores``, raw), ``f_input`` and ``f_baseline`` (N,), ``gap``, ``abs_delta`` and ``steps`` (N,).
    """
    ibs = internal_batch_size or batch_size
    check_baseline(baseline, n_baselines, dnabert_compat)

    def step(m: torch.nn.Module, batch: dict) -> tuple[np.ndarray, ...]:
        if "labels" not in batch:
            raise InputError("attributions need labelled sequences (the target is the true label)")
        ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
        refs = shuffled_baseline_ids(ids, mask, k, n_baselines, seed) if baseline == "shuffle" else None
        f_in, f_ref = pair_targets(m, attr_target, ids, mask, labels, refs)  # B; B, n
        gap = (f_in[:, None] - f_ref).abs()  # B, n: what each reference's quadrature integrates
        res = token_attributions(m, ids, mask, labels, layer, n_steps, ibs, attr_target, refs, tolerance,
                                 gap.flatten())
        real = real_token_mask(mask)
        signed = _spread(res.attributions.double().cpu().numpy(), real, k, max_seq_length, dnabert_compat, False)
        return (attributions_to_nucleotides(res.attributions, real, k, max_seq_length, dnabert_compat),
                res.delta.double().cpu().numpy(), kmer_counts(real) + k - 1, signed, f_in.cpu().numpy(),
                f_ref.mean(dim=1).cpu().numpy(), gap.mean(dim=1).cpu().numpy(), res.abs_delta.double().cpu().numpy(),
                res.steps.cpu().numpy())

    out = run_batches(model, dataset, Collator(max_seq_length, dnabert_compat), step, batch_size, device,
                      "attribution", verbose, grad=True)
    if not out:
        width = max_seq_length - 2 + k - 1
        return AttributionScores(np.zeros((0, width)), np.zeros(0), np.zeros(0, np.int64), np.zeros((0, width)),
                                 np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, np.int64))
    scores, deltas, lengths, signed, f_in, f_base, gap, abs_delta, steps = (np.concatenate(parts)
                                                                            for parts in zip(*out, strict=True))
    return AttributionScores(scores, deltas, lengths.astype(np.int64), signed, f_in, f_base, gap, abs_delta,
                             steps.astype(np.int64))


def check_baseline(baseline: str, n_baselines: int, dnabert_compat: bool = False) -> None:
    """The baseline settings, before any work: a known kind, at least one reference, one for ``pad``."""
    if baseline not in BASELINES:
        raise InputError(f"--baseline must be one of {', '.join(BASELINES)}, not {baseline!r}")
    if n_baselines < 1:
        raise InputError(f"--n_baselines must be >= 1, not {n_baselines}")
    if baseline == "pad" and n_baselines != 1:
        raise InputError(f"--n_baselines {n_baselines} needs --baseline shuffle (the [PAD] baseline is one sequence)")
    if dnabert_compat and baseline != "pad":
        raise InputError("--dnabert_compat reproduces the original's [PAD] baseline: drop --baseline shuffle")


def pair_targets(m: torch.nn.Module, attr_target: str, ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor,
                 refs: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """F(x) (B,) and F(reference) (B, n) of the true label, float64: the attributions of each reference
    add up to their difference, whose size is what its quadrature integrates."""
    with torch.no_grad():
        f = target_function(m, attr_target)
        rows = torch.arange(len(labels))
        f_in = f(ids, mask)[rows, labels].double()  # B
        if refs is None:
            return f_in, f(baseline_ids(ids), mask)[rows, labels].double()[:, None]  # B, 1
        n = len(refs) // len(ids)
        per_ref = f(refs, mask.repeat_interleave(n, dim=0))[torch.arange(len(refs)), labels.repeat_interleave(n)]
        return f_in, per_ref.double().view(len(ids), n)  # B, n


def attribute(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    k: int,
    method: str = "ig",
    **kwargs,
) -> AttributionScores:
    """Per-nucleotide attribution scores of every labelled sequence of ``dataset`` by ``method``.

    ``"ig"`` is :func:`attribution_scores` (layer integrated gradients; ``kwargs`` are its
    parameters). New methods are added here.
    """
    if method not in METHODS:
        raise InputError(f"attribution method must be one of {', '.join(METHODS)}, not {method!r}")
    return attribution_scores(model, dataset, k, **kwargs)


def relative_error(res: AttributionScores) -> np.ndarray:
    """Per sequence, the quadrature's relative completeness error: the mean over the references of
    |delta| over the mean over the references of |F(x) - F(reference)| (inf where that is 0); for one
    reference (the [PAD] baseline) |delta| / |F(x) - F(baseline)|. Each reference's integral is checked
    against its own size, and neither the signed deltas nor the signed gaps can cancel."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(res.gap > 0, res.abs_delta / res.gap, np.inf)
