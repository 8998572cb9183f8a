"""What a reported motif is: its windows' position frequency matrix (for logos), its consensus core and
the plain records ``find_motifs.py`` writes (instance positions relative to the m6A site). The search
itself is :mod:`m6abert.motifs`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .constants import BASES, SITE_INDEX
from .kmer import base_digits
from .motifs import LOGO_BASES, Motif, contiguous_regions


def position_frequency_matrix(seqs: Sequence[str]) -> np.ndarray:
    """Counts of A, C, G, T at each position of equal-length sequences (``U`` counts as T; N and others are skipped).

    Parameters
    ----------
    seqs: sequence of str, each of length W
        Window sequences of one motif.

    Returns
    -------
    counts: np.ndarray, shape=(W, 4), int64
        Columns in ``ACGT`` order.

    >>> position_frequency_matrix(["ACG", "ATG"]).tolist()
    [[2, 0, 0, 0], [0, 1, 0, 1], [0, 0, 2, 0]]
    """
    if not seqs:
        raise ValueError("no sequences")
    width = len(seqs[0])
    if any(len(s) != width for s in seqs):
        raise ValueError("sequences differ in length")
    codes = base_digits("".join(seqs)).reshape(len(seqs), width)  # n, W; digits in BASES order
    counts = np.zeros((width, 4), dtype=np.int64)
    for j, base in enumerate(LOGO_BASES):
        counts[:, j] = (codes == BASES.index(base)).sum(axis=0)
    return counts


def consensus(seqs: Sequence[str], min_bits: float = 1.0) -> str:
    """The conserved core of a motif's windows: the longest run of positions with at least
    ``min_bits`` of information, each as its most frequent base ("" if none).

    The key of a merged motif is its shortest member; the consensus shows the whole motif.

    >>> consensus(["CATGTAAATAGG", "GCTGTAAATACT", "TGTGTAAATATA", "ATTGTAAATACA"])
    'TGTAAATA'
    """
    freq = position_frequency_matrix(seqs).astype(np.float64)
    freq /= np.maximum(freq.sum(axis=1, keepdims=True), 1)  # W, 4
    with np.errstate(divide="ignore", invalid="ignore"):
        bits = 2 + np.where(freq > 0, freq * np.log2(freq), 0.0).sum(axis=1)  # W
    runs = contiguous_regions(bits >= min_bits, 1)
    if not len(runs):
        return ""
    start, end = max(runs, key=lambda r: r[1] - r[0])
    return "".join(LOGO_BASES[j] for j in freq[start:end].argmax(axis=1))


def motif_records(motifs: Sequence[Motif], site_index: int = SITE_INDEX, ids: Sequence[str] | None = None,
                  sites: Sequence[int | None] | None = None) -> list[dict]:
    """Plain records of reported motifs for :func:`m6abert.io.write_motif_outputs`, with each motif's
    consensus core and its instance starts relative to the m6A site (``start - site_index``; with ``sites``,
    the site index of each searched sequence, ``start`` minus its own where known); with ``ids`` (the
    searched sequences' record ids) each instance's record id (``ids``, parallel to ``positions``)."""
    records = [{
        "motif": m.motif,
        "consensus": consensus(m.seqs),
        "n_instances": int(m.n_instances),
        "p_value": float(m.p_value),
        "p_adjusted": float(m.p_adjusted),
        "seq_idx": [int(i) for i in m.seq_idx],
        "regions": [[int(s), int(e)] for s, e in m.regions],
        "positions": [int(start) - site_index for start, _ in m.regions],
        "windows": [[int(s), int(e)] for s, e in m.windows],
        "seqs": list(m.seqs),
    } for m in motifs]
    for m, r in zip(motifs, records, strict=True):
        if sites is not None:
            r["positions"] = [int(start) - (site_index if sites[i] is None else sites[i])
                              for i, (start, _) in zip(m.seq_idx, m.regions, strict=True)]
        if ids is not None:
            r["ids"] = [ids[i] for i in m.seq_idx]
    return records
