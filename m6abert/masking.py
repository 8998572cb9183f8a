"""DNABERT's k-mer span masking for masked-LM pretraining.

A k-mer token overlaps its k-1 neighbours, so masking one token alone leaks it through them: as in
DNABERT, span *centres* are drawn with ``mlm_probability`` and each is widened to the k-mers that
overlap it (:data:`MASK_LIST`); masked tokens become [MASK] 80 %, a random k-mer 10 %, unchanged 10 %.
:class:`SpanMaskingCollator` pads a batch and masks it with its own seeded generator stream.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .constants import MAX_POSITIONS
from .data import Collator
from .kmer import CLS_ID, MASK_ID, PAD_ID, SEP_ID

_PAD = Collator(MAX_POSITIONS)  # padding to the longest row of a batch, with the (B, L) 0/1 mask

MASK_LIST = {3: (-1, 1), 4: (-1, 1, 2), 5: (-2, -1, 1, 2), 6: (-2, -1, 1, 2, 3)}
TARGET_MASKED_FRACTION = 0.15
IGNORE_INDEX = -100


def default_mlm_probability(k: int) -> float:
    """The span-centre probability that masks about 15 % of the tokens for ``k``.

    A token is masked when any of the k centres whose span covers it is drawn, so the masked
    fraction away from the sequence ends is ``1 - (1 - p)**k``; solved for 0.15 and rounded to
    four decimals. DNABERT's README uses 0.025 for k=6 (14.0 %).
    """
    return round(1.0 - (1.0 - TARGET_MASKED_FRACTION) ** (1.0 / k), 4)


# ---------------------------------------------------------------------------- masking
class Masked(NamedTuple):
    """A masked batch."""

    input_ids: torch.Tensor  # (B, L) ids with [MASK], random or kept tokens at masked positions
    labels: torch.Tensor  # (B, L) original ids at masked positions, -100 elsewhere
    masked: torch.Tensor  # (B, L) bool, the masked positions


def maskable_positions(input_ids: torch.Tensor) -> torch.Tensor:
    """(B, L) bool: positions that may be masked, i.e. every token but [CLS], [SEP] and [PAD]."""
    return (input_ids != CLS_ID) & (input_ids != SEP_ID) & (input_ids != PAD_ID)


def expand_centres(centres: torch.Tensor, maskable: torch.Tensor, k: int) -> torch.Tensor:
    """Grow span centres into DNABERT's k-token spans.

    Every centre ``c`` also marks ``c + d`` for ``d`` in ``MASK_LIST[k]`` when ``1 <= c + d <= end``,
    ``end`` being the row's last maskable position (its last real k-mer); overlapping spans merge.

    Parameters
    ----------
    centres: torch.Tensor, shape=(B, L), bool
        Drawn span centres (only on maskable positions).
    maskable: torch.Tensor, shape=(B, L), bool
        From :func:`maskable_positions`.
    k: int
        k-mer length, 3..6.

    Returns
    -------
    torch.Tensor, shape=(B, L), bool
    """
    width = centres.shape[1]
    pos = torch.arange(width)
    last = (width - 1) - maskable.flip(1).int().argmax(1)  # B; last maskable position
    end = torch.where(maskable.any(1), last, -1)
    masked = centres.clone()
    for d in MASK_LIST[k]:  # a loop over the k-1 offsets; everything else is vectorised
        shifted = torch.zeros_like(centres)
        if d > 0:
            shifted[:, d:] = centres[:, : width - d]
        else:
            shifted[:, :d] = centres[:, -d:]
        masked |= shifted
    inside = (pos[None, :] >= 1) & (pos[None, :] <= end[:, None])  # B, L
    return masked & inside & maskable


def mask_tokens(
    input_ids: torch.Tensor,
    k: int,
    mlm_probability: float,
    vocab_size: int,
    generator: torch.Generator | None = None,
) -> Masked:
    """DNABERT's k-mer span masking (``mask_tokens`` of its run_pretrain.py), vectorised.

    Span centres are drawn with ``mlm_probability`` on every token but [CLS]/[SEP]/[PAD] and grown
    into k-token spans (:func:`expand_centres`). Each masked token independently becomes [MASK]
    with probability 0.8, else a random id over the whole vocabulary (special tokens included)
    with probability 0.5, else stays. The random draws are made in DNABERT's order and shapes, so
    with the same generator state the masks equal DNABERT's bit for bit.

    Parameters
    ----------
    input_ids: torch.Tensor, shape=(B, L), int64
        ``[CLS] k-mers [SEP]`` rows right-padded with [PAD]; not modified.
    k: int
        k-mer length, 3..6.
    mlm_probability: float
        Probability of a span centre.
    vocab_size: int
        Random replacements are drawn from ``0 .. vocab_size - 1``.
    generator: torch.Generator or None
        Source of randomness; None uses torch's global generator (as DNABERT). Default is None.

    Returns
    -------
    Masked
    """
    shape = input_ids.shape
    maskable = maskable_positions(input_ids)
    probability = torch.full(shape, mlm_probability)
    probability.masked_fill_(~maskable, 0.0)
    centres = torch.bernoulli(probability, generator=generator).bool()
    masked = expand_centres(centres, maskable, k)
    labels = input_ids.masked_fill(~masked, IGNORE_INDEX)
    inputs = input_ids.clone()
    replaced = torch.bernoulli(torch.full(shape, 0.8), generator=generator).bool() & masked
    inputs[replaced] = MASK_ID
    randomised = torch.bernoulli(torch.full(shape, 0.5), generator=generator).bool() & masked & ~replaced
    random_words = torch.randint(vocab_size, shape, dtype=torch.long, generator=generator)
    inputs[randomised] = random_words[randomised]
    return Masked(inputs, labels, masked)


class SpanMaskingCollator:
    """Pad ``[CLS] k-mers [SEP]`` rows into a batch and mask it with DNABERT's k-mer spans.

    Batch number ``i`` (``batches_done`` counts them) is masked with a fresh generator seeded with
    ``(seed, stream, i)``: the masks depend only on the batch's position in the run, so a run
    resumed at batch ``i`` (``batches_done = i``) masks as the uninterrupted run did, and a new
    collator evaluates with the same masks every time. Pass ``generator`` to draw from it instead.

    Parameters
    ----------
    k: int
        k-mer length, 3..6.
    vocab_size: int
        5 + 4**k (random replacements are drawn over it).
    mlm_probability: float or None
        Span-centre probability; None means :func:`default_mlm_probability`. Default is None.
    seed, stream: int
        Seed the per-batch generators (training uses ``stream = 1 + rank``, evaluation 0).
    dnabert_compat: bool
        Pass no ``attention_mask`` (DNABERT attended to padding while pretraining). Default is False.
    generator: torch.Generator or None
        Draw every batch's masks from this generator instead. Default is None.

    A call returns ``input_ids`` (B, L), ``labels`` (B, L) and, unless ``dnabert_compat``,
    ``attention_mask`` (B, L).
    """

    def __init__(self, k: int, vocab_size: int, mlm_probability: float | None = None, seed: int = 42,
                 stream: int = 0, dnabert_compat: bool = False, generator: torch.Generator | None = None):
        self.k, self.vocab_size = k, vocab_size
        self.mlm_probability = default_mlm_probability(k) if mlm_probability is None else mlm_probability
        self.seed, self.stream, self.dnabert_compat, self.generator = seed, stream, dnabert_compat, generator
        self.batches_done = 0

    def generator_for(self, batch: int) -> torch.Generator:
        """The generator of batch number ``batch``."""
        state = np.random.SeedSequence([self.seed, self.stream, batch]).generate_state(1, np.uint64)[0]
        return torch.Generator().manual_seed(int(state))

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        padded = _PAD(items)  # input_ids, attention_mask: B, L
        g = self.generator if self.generator is not None else self.generator_for(self.batches_done)
        self.batches_done += 1
        m = mask_tokens(padded["input_ids"], self.k, self.mlm_probability, self.vocab_size, g)
        batch = {"input_ids": m.input_ids, "labels": m.labels}
        if not self.dnabert_compat:
            batch["attention_mask"] = padded["attention_mask"]
        return batch
