"""Motifs from per-nucleotide score arrays (DNABERT's ``motif_utils``, re-implemented).

This module owns the motif search of the original ``visualize_find_motif_{pos,neg}.py`` and
``motif_utils.py``: high-score regions of each sequence become candidate motifs, candidates
enriched in the target set are kept (hypergeometric test, Benjamini-Hochberg), similar
motifs are merged by ungapped alignment, and every instance is cut to a fixed window around
its motif. The module works on strings and arrays; find_motifs.py's file-to-file driver is
:func:`m6abert.commands.motifs.find_motifs`.

Differences from the original, on purpose (the README lists them): DNABERT's sequence background
for the hypergeometric test (``background="motif_counts"`` gives the m6A fork's), ties merged by
score rather than alignment path, offsets from modern Biopython's ``Alignment.aligned``, windows
allowed to end at the sequence end (``strict_end=True`` restores the original bound), results
sorted by adjusted p and written as text, TSV and JSON (no pickle) with an offline logo.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .constants import ALPHABET
from .utils import log

BACKGROUNDS = ("sequences", "motif_counts")
LOGO_BASES = ALPHABET  # column order of position frequency matrices (logomaker's)
# the library's defaults are find_motifs.py's (the original visualize_find_motif_*.py's)
PVAL_CUTOFF = 0.005
WINDOW_SIZE, MIN_LEN, MIN_N_MOTIF = 24, 5, 3


class Instance(NamedTuple):
    """One motif occurrence: sequence index and half-open region ``[start, end)``."""

    seq_idx: int
    start: int
    end: int


class Window(NamedTuple):
    """An instance cut to a fixed window ``[start, end)`` of its sequence."""

    instance: Instance
    start: int
    end: int
    seq: str


class Enrichment(NamedTuple):
    """Per-motif hypergeometric test results, in the order of ``motifs``."""

    motifs: list[str]
    n_target: np.ndarray  # (M,) int64: target sequences containing the motif
    n_all: np.ndarray  # (M,) int64: target + background sequences containing it
    p_values: np.ndarray  # (M,) float64: P[X >= n_target]
    p_adjusted: np.ndarray  # (M,) float64: Benjamini-Hochberg


class Motif(NamedTuple):
    """A reported motif.

    ``regions`` are the instances in the motif's own frame (a merged instance is shifted onto
    the key), ``windows`` the fixed-size windows around them and ``seqs`` their sequences. All
    three lists, and ``seq_idx``, are parallel and have ``n_instances`` entries.
    """

    motif: str
    seq_idx: list[int]
    regions: list[tuple[int, int]]
    windows: list[tuple[int, int]]
    seqs: list[str]
    p_value: float
    p_adjusted: float
    n_instances: int


# ---------------------------------------------------------------------------- regions
def contiguous_regions(condition: np.ndarray, min_len: int = 5) -> np.ndarray:
    """Half-open ``(start, end)`` runs of True in a boolean vector, at least ``min_len`` long.

    Parameters
    ----------
    condition: np.ndarray, shape=(L,)
        Boolean (or 0/1) vector.
    min_len: int
        Shortest run kept. Default is 5.

    Returns
    -------
    regions: np.ndarray, shape=(R, 2), int64
        Runs in order; ``condition[start:end]`` is all True.

    >>> contiguous_regions(np.array([1, 1, 0, 1, 1, 1], bool), 2).tolist()
    [[0, 2], [3, 6]]
    """
    cond = np.asarray(condition, dtype=bool).ravel()
    if cond.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    idx = np.flatnonzero(np.diff(cond.astype(np.int8))) + 1  # positions where the value changes
    if cond[0]:
        idx = np.r_[0, idx]
    if cond[-1]:
        idx = np.r_[idx, cond.size]
    regions = idx.astype(np.int64).reshape(-1, 2)  # R, 2
    return regions[regions[:, 1] - regions[:, 0] >= min_len]


def find_high_scores(score: np.ndarray, min_len: int = 5, cond: np.ndarray | None = None) -> np.ndarray:
    """Regions of high score: ``score > mean(score)`` and ``score > 10 * min(score)``, runs >= ``min_len``.

    The second test is DNABERT's; with a minimum of 0 it reduces to ``score > 0``. NaN scores
    are never high.

    Parameters
    ----------
    score: np.ndarray, shape=(L,)
        Per-nucleotide score of one sequence (already cut to the sequence length).
    min_len: int
        Shortest region kept. Default is 5.
    cond: np.ndarray or None, shape=(L,)
        A boolean mask to use instead of the default test. Default is None.

    Returns
    -------
    regions: np.ndarray, shape=(R, 2), int64
    """
    score = np.asarray(score, dtype=np.float64)
    if cond is None:
        if score.size == 0:
            return np.zeros((0, 2), dtype=np.int64)
        cond = (score > score.mean()) & (score > 10 * score.min())
    return contiguous_regions(cond, min_len)


def candidate_motifs(
    seqs: Sequence[str], scores: Sequence[np.ndarray] | np.ndarray, min_len: int = 5
) -> dict[str, list[Instance]]:
    """Every high-score region's exact substring, with where it was found.

    Parameters
    ----------
    seqs: sequence of str, length n
        Target sequences.
    scores: np.ndarray, shape=(n, W) with W >= each sequence's length, or a list of vectors
        Per-nucleotide scores; row ``i`` is cut to ``len(seqs[i])``.
    min_len: int
        Shortest region. Default is 5.

    Returns
    -------
    dict[str, list[Instance]]
        Candidate motif -> its instances, in order of discovery.
    """
    found: dict[str, list[Instance]] = {}
    for i, seq in enumerate(seqs):
        row = np.asarray(scores[i], dtype=np.float64)
        if row.shape[0] < len(seq):
            raise ValueError(f"score row {i} has {row.shape[0]} values for a sequence of {len(seq)} nt")
        for start, end in find_high_scores(row[: len(seq)], min_len):
            found.setdefault(seq[start:end], []).append(Instance(i, int(start), int(end)))
    return found


# ---------------------------------------------------------------------------- enrichment
def count_motif_instances(seqs: Sequence[str], motifs: Sequence[str]) -> np.ndarray:
    """How many sequences contain each motif (Aho-Corasick; overlaps allowed; one count per sequence).

    Parameters
    ----------
    seqs: sequence of str
        Sequences to search.
    motifs: sequence of str, length M
        Exact strings to look for.

    Returns
    -------
    counts: np.ndarray, shape=(M,), int64
    """
    import ahocorasick

    unique = list(dict.fromkeys(m for m in motifs if m))
    counts = np.zeros(len(unique), dtype=np.int64)
    if unique:
        automaton = ahocorasick.Automaton()
        for j, motif in enumerate(unique):
            automaton.add_word(motif, j)
        automaton.make_automaton()
        for seq in seqs:
            hits = {j for _, j in automaton.iter(seq)}
            if hits:
                counts[list(hits)] += 1
    by_motif = dict(zip(unique, counts.tolist(), strict=True))
    return np.array([by_motif.get(m, 0) for m in motifs], dtype=np.int64)


def hypergeom_test(
    target_seqs: Sequence[str],
    background_seqs: Sequence[str],
    motifs: Sequence[str],
    background: str = "sequences",
    verbose: bool = False,
) -> Enrichment:
    """One-sided hypergeometric enrichment of each motif in the target set, with BH adjustment.

    ``p = hypergeom.sf(x - 1, N, K, n)`` = P[X >= x] for ``x`` target sequences among the
    ``n`` sequences containing the motif.

    Parameters
    ----------
    target_seqs, background_seqs: sequence of str
        The sequences the motifs came from, and the others.
    motifs: sequence of str, length M
        Candidate motifs.
    background: str
        ``"sequences"`` (DNABERT: ``N`` = all sequences, ``K`` = target sequences) or
        ``"motif_counts"`` (the m6A fork: ``N``, ``K`` = the counts summed over all motifs).
        Default is "sequences".
    verbose: bool
        Log motifs with p < 1e-5. Default is False.

    Returns
    -------
    Enrichment
    """
    from scipy.stats import hypergeom
    from statsmodels.stats.multitest import multipletests

    if background not in BACKGROUNDS:
        raise ValueError(f"background must be one of {BACKGROUNDS}, not {background!r}")
    motifs = list(motifs)
    n_target = count_motif_instances(target_seqs, motifs)
    n_all = n_target + count_motif_instances(background_seqs, motifs)
    if background == "sequences":
        big_n, big_k = len(target_seqs) + len(background_seqs), len(target_seqs)
    else:
        big_n, big_k = int(n_all.sum()), int(n_target.sum())
    if not motifs:
        empty = np.zeros(0, dtype=np.float64)
        return Enrichment(motifs, n_target, n_all, empty, empty.copy())
    p = np.clip(hypergeom.sf(n_target - 1, big_n, big_k, n_all), 0.0, 1.0)  # M
    p_adj = multipletests(p, method="fdr_bh")[1]
    if verbose:
        for m, x, n, pv in zip(motifs, n_target, n_all, p, strict=True):
            if pv < 1e-5:
                log.info("motif %s: %d of %d sequences in the target set, p = %.3g", m, x, n, pv)
    return Enrichment(motifs, n_target, n_all, p, p_adj)


# ---------------------------------------------------------------------------- merging
def _aligner():
    """Ungapped global aligner: match 1, mismatch 0, free end gaps, no internal gaps."""
    from Bio.Align import PairwiseAligner

    aligner = PairwiseAligner(mode="global", match_score=1.0, mismatch_score=0.0, gap_score=0.0)
    aligner.internal_gap_score = -10000.0
    return aligner


def key_offset(aligner, motif: str, key: str) -> int | None:
    """Where ``key`` starts in ``motif``'s coordinates in their best ungapped alignment.

    The first optimal alignment Biopython enumerates is used; its aligned block pairs
    ``motif[a:b]`` with ``key[c:d]``, so the offset is ``a - c`` (negative when the key starts
    left of the motif). None when nothing is aligned.

    >>> key_offset(_aligner(), "GGACTTA", "GACT")
    1
    """
    blocks = aligner.align(motif, key)[0].aligned  # 2, n_blocks, 2
    offsets = {int(t[0]) - int(q[0]) for t, q in zip(blocks[0], blocks[1], strict=True)}
    return offsets.pop() if len(offsets) == 1 else None


def merge_motifs(
    motif_instances: dict[str, list[Instance]], min_len: int = 5, align_all_ties: bool = True
) -> dict[str, list[Instance]]:
    """Merge similar motifs into shorter "key" motifs by ungapped alignment.

    Motifs are visited shortest first (ties keep their order). A motif joins an existing key
    when their alignment score reaches ``max(min_len - 1, 0.5 * min(len(motif), len(key)))``;
    it joins the best-scoring key (all keys with the best score if ``align_all_ties``), and its
    instances are moved onto the key's frame. Otherwise it becomes a new key.

    Parameters
    ----------
    motif_instances: dict[str, list[Instance]]
        Motif -> instances (left unchanged).
    min_len: int
        Minimum motif length, for the score threshold. Default is 5.
    align_all_ties: bool
        Merge into every best-scoring key, not just the first. Default is True.

    Returns
    -------
    dict[str, list[Instance]]
        Key motif -> its own instances followed by those merged into it, shifted so that
        ``end - start == len(key)``.
    """
    aligner = _aligner()
    merged: dict[str, list[Instance]] = {}
    for motif in sorted(motif_instances, key=len):
        hits = []
        for key in merged:
            score = aligner.score(motif, key)
            if score >= max(min_len - 1, 0.5 * min(len(motif), len(key))):
                hits.append((score, key))
        if not hits:
            merged[motif] = list(motif_instances[motif])
            continue
        best = max(score for score, _ in hits)
        keys = [key for score, key in hits if score == best]
        for key in keys if align_all_ties else keys[:1]:
            off = key_offset(aligner, motif, key)
            if off is None:  # cannot happen for a positive score; keep the motif's instances out
                continue
            merged[key].extend(
                Instance(i.seq_idx, i.start + off, i.start + off + len(key)) for i in motif_instances[motif]
            )
    return merged


def make_window(
    motif_instances: dict[str, list[Instance]],
    seqs: Sequence[str],
    window_size: int = WINDOW_SIZE,
    strict_end: bool = False,
) -> dict[str, list[Window]]:
    """Cut each instance to a ``window_size`` window centred on it; the odd nucleotide goes right.

    A region longer than the window is shrunk the same way. Windows that would start before 0
    or end after the sequence are dropped.

    Parameters
    ----------
    motif_instances: dict[str, list[Instance]]
        Motif -> instances, ``seq_idx`` indexing ``seqs``.
    seqs: sequence of str
        The sequences the instances are in.
    window_size: int
        Window length. Default is 24.
    strict_end: bool
        Also drop windows ending exactly at the sequence end, as the original did. Default is False.

    Returns
    -------
    dict[str, list[Window]]
        Same keys; a motif whose windows were all dropped maps to an empty list.

    >>> make_window({"GGACT": [Instance(0, 3, 8)]}, ["AAAGGACTAA"], 7)["GGACT"][0].seq
    'AGGACTA'
    """
    out: dict[str, list[Window]] = {}
    for motif, instances in motif_instances.items():
        kept = []
        for inst in instances:
            start = inst.start - (window_size - (inst.end - inst.start)) // 2
            end = start + window_size
            seq = seqs[inst.seq_idx]
            if start >= 0 and (end < len(seq) if strict_end else end <= len(seq)):
                kept.append(Window(inst, start, end, seq[start:end]))
        out[motif] = kept
    return out


# ---------------------------------------------------------------------------- analysis
def motif_analysis(
    pos_seqs: Sequence[str],
    neg_seqs: Sequence[str],
    pos_scores: Sequence[np.ndarray] | np.ndarray,
    window_size: int = WINDOW_SIZE,
    min_len: int = MIN_LEN,
    pval_cutoff: float = PVAL_CUTOFF,
    min_n_motif: int = MIN_N_MOTIF,
    align_all_ties: bool = False,
    background: str = "sequences",
    verbose: bool = False,
) -> list[Motif]:
    """Motifs in high-score regions of ``pos_seqs`` that are enriched against ``neg_seqs``.

    Steps: candidate regions (:func:`find_high_scores`), hypergeometric test with BH
    adjustment, keep adjusted p < ``pval_cutoff``, :func:`merge_motifs`, :func:`make_window`,
    keep motifs with at least ``min_n_motif`` windows. For motifs enriched in the negatives,
    pass the negatives (and their scores) as ``pos_*``.

    Parameters
    ----------
    pos_seqs: sequence of str, length n
        Target sequences (as given: no case folding).
    neg_seqs: sequence of str
        Background sequences.
    pos_scores: np.ndarray, shape=(n, W), W >= every target sequence's length
        Per-nucleotide scores of the target sequences, row-aligned with ``pos_seqs``.
    window_size: int
        Length of the reported windows. Default is 24.
    min_len: int
        Shortest high-score region, and the merge threshold. Default is 5.
    pval_cutoff: float
        Keep motifs with BH-adjusted p strictly below this. Default is 0.005.
    min_n_motif: int
        Fewest windows a reported motif has. Default is 3.
    align_all_ties: bool
        See :func:`merge_motifs`. Default is False.
    background: str
        See :func:`hypergeom_test`. Default is "sequences".
    verbose: bool
        Log the counts of each step. Default is False.

    Returns
    -------
    list[Motif]
        Sorted by adjusted p, then by instance count (descending), then by motif.
    """
    if len(pos_scores) != len(pos_seqs):
        raise ValueError(f"{len(pos_scores)} score rows for {len(pos_seqs)} sequences")
    if min_len < 1 or window_size < 1:
        raise ValueError("min_len and window_size must be >= 1")
    candidates = candidate_motifs(pos_seqs, pos_scores, min_len)
    enrichment = hypergeom_test(pos_seqs, neg_seqs, list(candidates), background, verbose)
    stats = {
        m: (float(p), float(q))
        for m, p, q in zip(enrichment.motifs, enrichment.p_values, enrichment.p_adjusted, strict=True)
        if q < pval_cutoff
    }
    merged = merge_motifs({m: candidates[m] for m in stats}, min_len, align_all_ties)
    windows = make_window(merged, pos_seqs, window_size)
    motifs = [
        Motif(
            motif=m,
            seq_idx=[w.instance.seq_idx for w in ws],
            regions=[(w.instance.start, w.instance.end) for w in ws],
            windows=[(w.start, w.end) for w in ws],
            seqs=[w.seq for w in ws],
            p_value=stats[m][0],
            p_adjusted=stats[m][1],
            n_instances=len(ws),
        )
        for m, ws in windows.items()
        if len(ws) >= min_n_motif
    ]
    motifs.sort(key=lambda m: (m.p_adjusted, -m.n_instances, m.motif))
    if verbose:
        log.info(
            "%d candidate motifs, %d enriched (adjusted p < %g), %d after merging, %d with >= %d windows",
            len(candidates), len(stats), pval_cutoff, len(merged), len(motifs), min_n_motif,
        )
    return motifs


