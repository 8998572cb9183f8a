"""In-silico saturation mutagenesis (visualize_all.py ``--vis_task ism``).

Every position of a window of each sequence is mutated to each of the three other bases; the
mutants are k-merised with the model's k and scored through the one inference loop
(:func:`m6abert.inference.predict_logits`), hundreds of mutants per forward pass, under inference
mode. The effect of a mutant is its change of log-odds (logit of class 1 minus logit of class 0)
against the unmutated sequence, which is scored in the same loop:

* ``delta`` (N, L, 4) float32, columns A, C, G, T: mutant minus reference log-odds; 0 at the
  reference base, outside the window, past a sequence's end and at non-ACGT bases (N);
* ``summary`` (N, L) float64: the mean |delta| over the three substitutions of each position, the
  per-nucleotide score heatmaps, profiles and ``find_motifs.py --vis_task ism`` use.

ISM needs no baseline (unlike integrated gradients) and no labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from .constants import ALPHABET, MAX_POSITIONS, SITE_INDEX
from .data import Collator, KmerDataset
from .inference import predict_logits
from .kmer import encode_many, normalise
from .metrics import log_odds
from .utils import InputError

ISM_COLUMNS = ALPHABET  # column order of the delta array (not DNABERT's ATCG)
BATCH_SIZE = 256  # mutants per forward pass
_COLUMN = {b: i for i, b in enumerate(ISM_COLUMNS)}


class IsmResult(NamedTuple):
    delta: np.ndarray  # (N, L, 4) float32, mutant - reference log-odds, columns A, C, G, T
    summary: np.ndarray  # (N, L) float64, mean |delta| over the three substitutions
    ref_logodds: np.ndarray  # (N,) float64, logit1 - logit0 of the unmutated sequences
    lengths: np.ndarray  # (N,) int64, sequence lengths in nucleotides
    starts: np.ndarray  # (N,) int64, first mutated index of each sequence
    ends: np.ndarray  # (N,) int64, one past the last mutated index


def window_bounds(
    lengths: np.ndarray, window: tuple[int, int] | None = None, site_index: int = SITE_INDEX
) -> tuple[np.ndarray, np.ndarray]:
    """Sequence indices ``[start, end)`` to mutate in each sequence.

    Parameters
    ----------
    lengths: np.ndarray, shape=(N,)
        Sequence lengths in nucleotides.
    window: tuple of int or None
        ``(START, END)`` relative to the site, half-open as a Python slice: ``(-150, 50)`` mutates
        indices ``site_index - 150 .. site_index + 49``. Default is None (every position).
    site_index: int
        Sequence index of the m6A site. Default is 250.

    Returns
    -------
    starts, ends: np.ndarray, shape=(N,), int64

    Raises
    ------
    InputError
        ``START >= END``, or the window does not lie inside every sequence.

    >>> [b.tolist() for b in window_bounds(np.array([101, 90]), (-10, 5), 50)]
    [[40, 40], [55, 55]]
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if window is None:
        return np.zeros_like(lengths), lengths.copy()
    start, end = window
    if start >= end:
        raise InputError(f"--ism_window {start}:{end}: START must be less than END")
    lo, hi = site_index + start, site_index + end
    bad = np.flatnonzero((lo < 0) | (hi > lengths))
    if len(bad):
        n = int(lengths[bad[0]])
        raise InputError(f"--ism_window {start}:{end} (indices {lo}..{hi - 1} with --site_index {site_index}) "
                         f"lies outside row {int(bad[0])}'s {n} nt (allowed: within {-site_index}:{n - site_index})")
    return np.full_like(lengths, lo), np.full_like(lengths, hi)


def mutants(seq: str, start: int, end: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The single-base mutants of ``seq[start:end]``: every other base of A, C, G, T at each position.

    Positions whose base is not A, C, G or T (N) are not mutated.

    Returns
    -------
    seqs: list[str]
        The mutated sequences, position by position, bases in A, C, G, T order.
    positions: np.ndarray, shape=(M,), int64
        Index of the mutated base of each mutant.
    columns: np.ndarray, shape=(M,), int64
        Column (0..3 for A, C, G, T) of the new base of each mutant.

    >>> mutants("ACG", 1, 2)[0]
    ['AAG', 'AGG', 'ATG']
    """
    seq = normalise(seq)
    out, positions, columns = [], [], []
    for p in range(start, end):
        ref = seq[p]
        if ref not in _COLUMN:
            continue
        for base in ISM_COLUMNS:
            if base != ref:
                out.append(seq[:p] + base + seq[p + 1 :])
                positions.append(p)
                columns.append(_COLUMN[base])
    return out, np.asarray(positions, dtype=np.int64), np.asarray(columns, dtype=np.int64)


class MutantDataset(torch.utils.data.Dataset):
    """Per sequence, its reference then its mutants (:func:`mutants`), as ``[CLS] k-mers [SEP]`` rows.

    Items are built one sequence at a time (k-merised with :func:`~m6abert.kmer.encode_many`
    when the loop reaches the sequence), so memory stays at one sequence's mutants.
    """

    def __init__(self, seqs: Sequence[str], k: int, starts: np.ndarray, ends: np.ndarray,
                 max_seq_length: int = MAX_POSITIONS):
        self.seqs, self.k, self.max_seq_length = list(seqs), k, max_seq_length
        self.starts, self.ends = np.asarray(starts), np.asarray(ends)
        counts = [1 + 3 * sum(b in _COLUMN for b in normalise(s[a:e]))
                  for s, a, e in zip(self.seqs, self.starts, self.ends, strict=True)]
        self.offsets = np.zeros(len(self.seqs) + 1, dtype=np.int64)
        np.cumsum(counts, out=self.offsets[1:])
        self._cached: tuple[int, KmerDataset] | None = None

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def sequence(self, j: int) -> tuple[KmerDataset, np.ndarray, np.ndarray]:
        """Sequence ``j``'s rows (reference first) with the positions and columns of its mutants."""
        mutated, positions, columns = mutants(self.seqs[j], int(self.starts[j]), int(self.ends[j]))
        rows = KmerDataset(encode_many([normalise(self.seqs[j]), *mutated], self.k), None, self.max_seq_length)
        return rows, positions, columns

    def __getitem__(self, i: int) -> dict:
        j = int(np.searchsorted(self.offsets, i, side="right")) - 1
        if self._cached is None or self._cached[0] != j:
            self._cached = (j, self.sequence(j)[0])
        return self._cached[1][i - int(self.offsets[j])]


def saturation_mutagenesis(
    model: torch.nn.Module,
    seqs: Sequence[str],
    k: int,
    window: tuple[int, int] | None = None,
    site_index: int = SITE_INDEX,
    max_seq_length: int = MAX_POSITIONS,
    dnabert_compat: bool = False,
    batch_size: int = BATCH_SIZE,
    device: str | torch.device = "cpu",
    verbose: bool = True,
) -> IsmResult:
    """Δ log-odds of every single-base mutant in a window of each sequence.

    Parameters
    ----------
    model: transformers.BertForSequenceClassification
        A fine-tuned classifier (borrowed in eval mode by the inference loop).
    seqs: sequence of str
        Nucleotide sequences (any case, ``U`` read as ``T``).
    k: int
        k-mer length of the model.
    window: tuple of int or None
        ``(START, END)`` relative to the site, half-open (see :func:`window_bounds`).
        Default is None (every position).
    site_index: int
        Sequence index of the m6A site. Default is 250.
    max_seq_length: int
        Tokens incl. [CLS]/[SEP] (the collator's width with ``dnabert_compat``). Default is 512.
    dnabert_compat: bool
        Pad every batch to ``max_seq_length`` with the original's unmasked mask. Default is False.
    batch_size: int
        Mutants per forward pass. Default is 256.
    device: str or torch.device
        Default is "cpu".
    verbose: bool
        Show a progress bar (mutants). Default is True.

    Returns
    -------
    IsmResult
        ``delta`` (N, L, 4) float32 and ``summary`` (N, L) float64 with L the longest sequence,
        the reference log-odds, lengths and the mutated ranges.
    """
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    starts, ends = window_bounds(lengths, window, site_index)
    dataset = MutantDataset(seqs, k, starts, ends, max_seq_length)
    logits = predict_logits(model, dataset, Collator(max_seq_length, dnabert_compat), batch_size, device,
                            desc="ism", verbose=verbose)
    logodds = log_odds(logits)  # M
    width = int(lengths.max()) if len(lengths) else 0
    delta = np.zeros((len(seqs), width, 4), dtype=np.float32)
    for j in range(len(seqs)):
        lo = dataset.offsets[j]
        _, positions, columns = mutants(seqs[j], int(starts[j]), int(ends[j]))
        delta[j, positions, columns] = logodds[lo + 1 : dataset.offsets[j + 1]] - logodds[lo]
    summary = np.abs(delta.astype(np.float64)).sum(axis=2) / 3.0  # the reference column is 0
    return IsmResult(delta, summary, logodds[dataset.offsets[:-1]], lengths, starts, ends)


def check_rebuilt(seqs: Sequence[str], dataset: torch.utils.data.Dataset, k: int, where: str) -> None:
    """Raise if a sequence rebuilt from a TSV's k-mers does not k-merise back to that row's k-mers.

    A row whose k-mers do not overlap as a sequence's do (damaged, or not k-merised with stride 1)
    would otherwise be mutated as another sequence than the one the TSV holds.
    """
    enc = encode_many([normalise(s) for s in seqs], k)
    for i in range(len(seqs)):
        if not np.array_equal(enc.row(i), dataset[i]["input_ids"][1:-1]):
            raise InputError(f"{where}: row {i + 1}: the k-mers do not overlap as those of one sequence; "
                             "ISM mutates the sequence rebuilt from them")
