"""Windows of one locus: groups of windows that share an exact K-nt stretch, and the leakage of a split.

Overlapping windows of one transcript (a site and its neighbour 30 nt away, or one site in two splice
isoforms) share long exact stretches. If such windows sit on both sides of a split, a model that
memorises sequence is rewarded for "I have seen this locus". :func:`overlap_groups` joins every two
windows that share any exact ``k``-nt stretch (as given, one strand) into one group (connected
components); :func:`leakage` counts, for a split, the pairs of windows in different parts that share
one, by label pair.

Each window's k-mers are packed 2 bits a base into one ``uint64`` (exact for ``k <= 32``; a k-mer
with a letter other than A, C, G, T/U is skipped), all windows' k-mers are sorted once, and equal
neighbours link their windows (a k-mer index, not pairwise alignment).

>>> overlap_groups(["ACGTACGTAA", "CGTACGTAAT", "GGGGGCCCCC"], k=8).tolist()
[0, 0, 1]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .utils import InputError

MAX_K = 32  # 2 bits a base in a uint64
_CODE = np.full(256, 255, dtype=np.uint8)
for _letter, _value in zip(b"ACGTUacgtu", (0, 1, 2, 3, 3, 0, 1, 2, 3, 3), strict=True):
    _CODE[_letter] = _value


def check_k(k: int) -> None:
    """``k`` in 1..32 (the stretch length a group is joined by)."""
    if not 1 <= k <= MAX_K:
        raise InputError(f"the overlap length must be in 1..{MAX_K} nt, not {k}")


class KmerIndex(NamedTuple):
    """Every valid k-mer of every window, sorted: ``codes`` (packed k-mers) and ``windows`` (their window)."""

    codes: np.ndarray  # uint64, shape=(M,)
    windows: np.ndarray  # int64, shape=(M,)


def kmer_index(seqs: Sequence[str], k: int) -> KmerIndex:
    """The packed k-mers of all ``seqs`` with the window each comes from, sorted by k-mer (a window's
    repeated k-mer is kept once)."""
    check_k(k)
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    letters = np.frombuffer("".join(seqs).encode("ascii", "replace"), dtype=np.uint8)
    base = _CODE[letters]  # N
    starts = np.concatenate([[0], np.cumsum(lengths)])
    n_pos = max(len(base) - k + 1, 0)
    codes = np.zeros(n_pos, dtype=np.uint64)
    bad = np.zeros(n_pos, dtype=bool)
    for j in range(k):  # code = sum of base[i + j] << 2 (k - 1 - j)
        b = base[j:j + n_pos]
        bad |= b == 255
        codes |= (b.astype(np.uint64) & np.uint64(3)) << np.uint64(2 * (k - 1 - j))
    window = np.repeat(np.arange(len(seqs), dtype=np.int64), lengths)[:n_pos]
    ends = np.repeat(starts[1:], lengths)[:n_pos]  # the k-mer must end inside its own window
    keep = ~bad & (np.arange(n_pos) + k <= ends)
    codes, window = codes[keep], window[keep]
    order = np.lexsort((window, codes))
    codes, window = codes[order], window[order]
    first = np.ones(len(codes), dtype=bool)
    first[1:] = (codes[1:] != codes[:-1]) | (window[1:] != window[:-1])
    return KmerIndex(codes[first], window[first])


def _linked(index: KmerIndex) -> tuple[np.ndarray, np.ndarray]:
    """Window pairs that share a k-mer, as consecutive members of each run of one k-mer."""
    same = index.codes[1:] == index.codes[:-1]
    return index.windows[:-1][same], index.windows[1:][same]


def overlap_groups(seqs: Sequence[str], k: int = 30) -> np.ndarray:
    """A group number per window: windows sharing any exact ``k``-nt stretch, directly or through
    others, have the same number (0, 1, ... in order of each group's first window).

    Parameters
    ----------
    seqs: sequence of str
        The windows (A, C, G, T/U; other letters break a stretch).
    k: int
        The stretch length, 1..32. Default is 30.

    Returns
    -------
    numpy.ndarray, shape=(len(seqs),), dtype=int64
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(seqs)
    a, b = _linked(kmer_index(seqs, k))
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    _, first_seen = np.unique(labels, return_index=True)
    renumber = np.empty(len(first_seen), dtype=np.int64)
    renumber[np.argsort(np.argsort(first_seen))] = np.arange(len(first_seen))
    return renumber[labels]


def shared_pairs(seqs: Sequence[str], k: int = 30) -> np.ndarray:
    """Every pair ``(i, j)``, ``i < j``, of windows that share at least one exact ``k``-nt stretch.

    Returns
    -------
    numpy.ndarray, shape=(P, 2), dtype=int64, sorted
    """
    index = kmer_index(seqs, k)
    bounds = np.flatnonzero(np.concatenate([[True], index.codes[1:] != index.codes[:-1], [True]]))
    pairs = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        if hi - lo > 1:
            members = index.windows[lo:hi]
            i, j = np.triu_indices(len(members), 1)
            pairs.append(np.stack([members[i], members[j]], axis=1))
    if not pairs:
        return np.zeros((0, 2), dtype=np.int64)
    both = np.sort(np.concatenate(pairs), axis=1)
    return np.unique(both, axis=0)


def leakage(seqs: Sequence[str], labels: Sequence[int], parts: Sequence[str], k: int = 30,
            ids: Sequence[str] | None = None, max_listed: int = 1000) -> dict:
    """How a split lets windows of one locus sit on both sides: the pairs of windows in different
    ``parts`` (split or fold names) that share an exact ``k``-nt stretch, by label pair, and how many
    windows have such a partner, by label.

    Returns
    -------
    dict
        ``k``, ``n_windows``, ``cross_part_pairs`` (total and ``"pos-pos"``, ``"neg-neg"``,
        ``"pos-neg"``), ``windows_with_cross_part_partner`` (total, ``pos``, ``neg``) and
        ``same_part_pairs``; with ``ids``, also ``pairs``: the first ``max_listed`` cross-part pairs
        as ``[id, part, id, part]``.
    """
    labels, parts = np.asarray(labels), np.asarray(parts)
    pairs = shared_pairs(seqs, k)
    i, j = pairs[:, 0], pairs[:, 1]
    cross = parts[i] != parts[j]
    kind = np.where(labels[i] == labels[j], np.where(labels[i] == 1, "pos-pos", "neg-neg"), "pos-neg")
    leaky = np.unique(np.concatenate([i[cross], j[cross]]))
    return {
        "k": k, "n_windows": len(seqs),
        "cross_part_pairs": {"total": int(cross.sum()),
                             **{name: int((cross & (kind == name)).sum()) for name in ("pos-pos", "neg-neg", "pos-neg")}},
        "windows_with_cross_part_partner": {"total": len(leaky), "pos": int((labels[leaky] == 1).sum()),
                                            "neg": int((labels[leaky] == 0).sum())},
        "same_part_pairs": int((~cross).sum()),
        **({"pairs": [[ids[a], str(parts[a]), ids[b], str(parts[b])] for a, b in zip(i[cross], j[cross], strict=True)][:max_listed]}
           if ids is not None else {}),
    }


def leakage_line(report: dict, where: str) -> str:
    """One log line of a :func:`leakage` report."""
    pairs, windows = report["cross_part_pairs"], report["windows_with_cross_part_partner"]
    line = (f"{where}: {pairs['total']} pairs of windows in different parts share an exact {report['k']}-nt stretch "
            f"({pairs['pos-pos']} pos-pos, {pairs['neg-neg']} neg-neg, {pairs['pos-neg']} pos-neg; {windows['total']} "
            f"of {report['n_windows']} windows)")
    return line + (f"; --group_overlap {report['k']} keeps them together" if pairs["total"] else "")


def sharing(seqs: Sequence[str], others: Sequence[str], k: int = 30) -> np.ndarray:
    """Whether each of ``seqs`` shares an exact ``k``-nt stretch with any of ``others``.

    Returns
    -------
    numpy.ndarray, shape=(len(seqs),), dtype=bool
    """
    mine, theirs = kmer_index(seqs, k), kmer_index(others, k)
    out = np.zeros(len(seqs), dtype=bool)
    out[mine.windows[np.isin(mine.codes, theirs.codes)]] = True
    return out


def grouped_parts(labels: Sequence[int], groups: Sequence[int], n_parts: int, seed: int,
                  what: str = "windows", hint: str = "lower the number of folds or --group_overlap",
                  purpose: str = "asked for") -> np.ndarray:
    """A part 0..``n_parts``-1 per window that keeps every group in one part, class proportions as
    even as the groups allow: scikit-learn's ``StratifiedGroupKFold(n_parts, shuffle=True,
    random_state=seed)``, part ``i`` = the test indices of its split ``i``.

    Raises
    ------
    InputError
        Fewer groups (of either class) than parts.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    labels, groups = np.asarray(labels), np.asarray(groups)
    for label, name in ((1, "positives"), (0, "negatives")):
        n = len(np.unique(groups[labels == label]))
        if n < n_parts:
            raise InputError(f"{what}: the {name} form {n} group{'s' * (n != 1)} of windows sharing a stretch, "
                             f"fewer than the {n_parts} parts {purpose}; {hint}")
    part = np.empty(len(labels), dtype=np.int64)
    splitter = StratifiedGroupKFold(n_parts, shuffle=True, random_state=seed)
    for i, (_, test) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups)):
        part[test] = i
    return part
