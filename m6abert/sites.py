"""Where the m6A site is in a window: the one rule of get_input.py and ``--pos_relative_to_site``.

The paper's windows are the site ± 250 nt: 501 nt with the m6A "A" (of DRACH's ``AC``) at index
250 (:data:`~m6abert.constants.SITE_INDEX`). A window near a transcript end is shorter: cut at its
3' end it keeps the 250 nt upstream of the site (the site at index 250), cut at its 5' end it keeps
the 250 nt downstream (the site at ``len - 251``). Of the paper's 341 shorter windows, 231 have
``AC`` only at 250, 82 only at ``len - 251``, 17 at both and 11 at neither.

:func:`site_of` places the site of a window of ``flank`` nt each side of it (250, or
``--extend_len`` for a window get_input.py cropped):

1. ``site=N`` in the record's FASTA header (``N`` the 0-based index of the site's A) wins;
2. a window of ``2 * flank + 1`` nt: ``flank``;
3. a shorter window of more than ``flank`` nt: ``len - flank - 1`` when ``AC`` stands there and
   not at ``flank`` (cut at its 5' end); otherwise ``flank`` (cut at its 3' end, and where the
   letters cannot tell, ``AC`` at both or at neither; a header's ``site=N`` settles those);
4. a longer window: its centre, ``(len - 1) // 2``;
5. a window of at most ``flank`` nt (cut at both ends): no site.

>>> site_of("G" * 250 + "AC" + "G" * 249), site_of("G" * 89 + "AC" + "G" * 249)
(Site(index=250, how='window'), Site(index=89, how="5' cut"))
>>> site_of("G" * 300).index, site_of("G" * 700).index, site_of("G" * 200).index
(250, 349, None)
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

from .constants import SITE_INDEX
from .utils import InputError

SITE_LETTER = "A"  # the m6A base (DRACH's A)
MOTIF = "AC"  # DRACH's A and C: what stands at the site of every full window of the paper's data
# how a site was placed (Site.how), in the order get_input.py counts them
HOW = ("window", "header", "3' cut", "5' cut", "undecided", "centre", "none")


class Site(NamedTuple):
    """A window's site: its 0-based ``index`` (None: no site) and ``how`` it was placed (one of :data:`HOW`)."""

    index: int | None
    how: str


def window_length(flank: int = SITE_INDEX) -> int:
    """Nucleotides of a whole window: the site and ``flank`` nt each side (501)."""
    return 2 * flank + 1


def site_of(seq: str, declared: int | None = None, flank: int = SITE_INDEX) -> Site:
    """Place the m6A site of the window ``seq`` by the module's rule.

    Parameters
    ----------
    seq: str
        The window, upper case (``U`` may stand for ``T``).
    declared: int or None
        ``site=N`` of the record's FASTA header, checked by :func:`check_declared`. Default is None.
    flank: int
        Nucleotides each side of the site in a whole window. Default is 250.

    Returns
    -------
    Site
        ``how`` is ``"header"``, ``"window"`` (whole window), ``"3' cut"``, ``"5' cut"``,
        ``"undecided"`` (a shorter window with ``AC`` at both or neither place: ``flank``),
        ``"centre"`` (a longer window) or ``"none"`` (at most ``flank`` nt; ``index`` None).
    """
    n = len(seq)
    if declared is not None:
        return Site(declared, "header")
    if n == window_length(flank):
        return Site(flank, "window")
    if n > window_length(flank):
        return Site((n - 1) // 2, "centre")
    if n <= flank:
        return Site(None, "none")
    at_3 = _motif_at(seq, flank)
    at_5 = _motif_at(seq, n - flank - 1)
    if at_5 and not at_3:
        return Site(n - flank - 1, "5' cut")
    return Site(flank, "3' cut" if at_3 and not at_5 else "undecided")


def _motif_at(seq: str, i: int) -> bool:
    return seq[i : i + len(MOTIF)].replace("U", "T") == MOTIF


def check_declared(record_id: str, seq: str, declared: int | None, path: str | os.PathLike) -> int | None:
    """``declared`` (a header's ``site=N``) if it names an A of the record, else an ``InputError``.

    A site that is not an A is most often a 1-based position given for the 0-based index.
    """
    if declared is None:
        return None
    if declared >= len(seq):
        raise InputError(f"{path}: record {record_id}: site={declared} in its header lies outside its {len(seq)} nt "
                         "(site=N is the 0-based index of the m6A A)")
    if seq[declared] != SITE_LETTER:
        raise InputError(f"{path}: record {record_id}: site={declared} in its header is {seq[declared]!r}, not the "
                         "m6A A (site=N is the 0-based index: site=250 in a 501-nt window)")
    return declared


def crop(seq: str, site: Site, extend_len: int) -> str:
    """Keep ``extend_len`` nt each side of the site (around the centre where there is none)."""
    c = site.index if site.index is not None else (len(seq) - 1) // 2
    return seq[max(0, c - extend_len) : c + extend_len + 1]


def index_in_crop(seq: str, site: Site, extend_len: int) -> int:
    """Where :func:`crop` puts the site (or the centre it cropped around) in the cropped window."""
    c = site.index if site.index is not None else (len(seq) - 1) // 2
    return c - max(0, c - extend_len)


def describe(counts: Counter | dict[str, int]) -> str:
    """``"5 whole windows, 2 cut at the 5' end"`` of :data:`HOW` counts, for log lines."""
    words = {"window": "whole windows", "header": "from site=N headers", "3' cut": "cut at the 3' end",
             "5' cut": "cut at the 5' end", "undecided": "undecided (read as cut at the 3' end)",
             "centre": "longer than a window (site at the centre)",
             "none": "too short for a site (cut at both ends)"}
    return ", ".join(f"{counts[h]} {words[h]}" for h in HOW if counts.get(h))


def count(sites: Iterable[Site]) -> dict[str, int]:
    """How many sites were placed each way, in :data:`HOW` order (ways no site took left out)."""
    c = Counter(s.how for s in sites)
    return {h: c[h] for h in HOW if c[h]}
