"""Where a window lies in the genome: the coordinates ``m6abert-windows`` writes into FASTA headers.

A window record's header carries, after its id::

    >site7 chr1:12345:+ site=250 transcript=ENST0001 blocks=12094-12200,12300-12695

* ``chrom:pos:strand``: the m6A site, ``pos`` 1-based, on ``strand`` (``+`` or ``-``);
* ``site=N``: the 0-based index of the site in the window (:mod:`m6abert.sites`);
* ``transcript=ID``: the transcript the window was cut from (spliced windows, ``--gtf``);
* ``blocks=s-e,...``: the genomic intervals (0-based, half-open) the window's bases come from, in
  window order (5' to 3' of the window: on ``-`` the first block is the highest). A spliced window has
  one block per exon it touches; a genomic window one block. Without ``blocks`` the window is read as
  contiguous around the site.

Every later step keeps these: prediction tables gain chrom, pos, strand, transcript; scores map back to
the genome base for base (:func:`genome_positions`) for bedGraph tracks.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

import numpy as np

from ..utils import InputError

_LOCUS = re.compile(r"^(?P<chrom>[^\s:]+(?::[^\s:]+)*):(?P<pos>[0-9]+):(?P<strand>[+-])$")
_BLOCK = re.compile(r"^([0-9]+)-([0-9]+)$")


class WindowCoords(NamedTuple):
    """The genomic origin of a window (see the module's docstring)."""

    chrom: str
    pos: int  # 1-based position of the m6A site
    strand: str  # "+" or "-"
    transcript: str | None = None
    blocks: tuple[tuple[int, int], ...] | None = None  # 0-based half-open, in window order


def header_coords(header: str, path: str | os.PathLike, record_id: str) -> WindowCoords | None:
    """The coordinates in a FASTA header (after the id), or None when it names no ``chrom:pos:strand``.

    >>> header_coords("s1 chr2:101:- site=1 blocks=99-102", "x.fa", "s1")
    WindowCoords(chrom='chr2', pos=101, strand='-', transcript=None, blocks=((99, 102),))
    """
    words = header.split()[1:]
    loci = [m for m in (_LOCUS.match(w) for w in words) if m]
    if not loci:
        return None
    if len(loci) > 1:
        raise InputError(f"{path}: record {record_id}: {len(loci)} chrom:pos:strand words in its header; give one")
    m = loci[0]
    tx = [w[11:] for w in words if w.lower().startswith("transcript=")]
    blocks = [w[7:] for w in words if w.lower().startswith("blocks=")]
    return WindowCoords(m["chrom"], int(m["pos"]), m["strand"], tx[0] if tx else None,
                        _blocks(blocks[0], path, record_id) if blocks else None)


def _blocks(text: str, path: str | os.PathLike, record_id: str) -> tuple[tuple[int, int], ...]:
    out = []
    for part in text.split(","):
        m = _BLOCK.match(part)
        if not m or int(m[1]) >= int(m[2]):
            raise InputError(f"{path}: record {record_id}: blocks={text} in its header is not a list of "
                             "START-END intervals (0-based, START < END)")
        out.append((int(m[1]), int(m[2])))
    return tuple(out)


def header_text(record_id: str, c: WindowCoords, site: int | None) -> str:
    """The header (without ``>``) of a window record with coordinates ``c`` and its site index.

    >>> header_text("s1", WindowCoords("chr2", 101, "-", "T1", ((99, 102),)), 1)
    's1 chr2:101:- site=1 transcript=T1 blocks=99-102'
    """
    words = [record_id, f"{c.chrom}:{c.pos}:{c.strand}"]
    if site is not None:
        words.append(f"site={site}")
    if c.transcript:
        words.append(f"transcript={c.transcript}")
    if c.blocks:
        words.append("blocks=" + ",".join(f"{s}-{e}" for s, e in c.blocks))
    return " ".join(words)


def genome_positions(c: WindowCoords, length: int, site_index: int) -> np.ndarray:
    """The 0-based genomic position of each of the ``length`` bases of the window, in window order.

    From ``blocks`` (ascending within a block on ``+``, descending on ``-``); without them, the contiguous
    window whose base ``site_index`` is the site.

    >>> genome_positions(WindowCoords("c", 11, "-", None, ((12, 14), (5, 7))), 4, 1).tolist()
    [13, 12, 6, 5]
    >>> genome_positions(WindowCoords("c", 11, "+"), 3, 1).tolist()
    [9, 10, 11]
    """
    if c.blocks is None:
        step = 1 if c.strand == "+" else -1
        return (c.pos - 1) + step * (np.arange(length, dtype=np.int64) - site_index)
    parts = [np.arange(s, e, dtype=np.int64) if c.strand == "+" else np.arange(e - 1, s - 1, -1, dtype=np.int64)
             for s, e in c.blocks]
    out = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    if len(out) != length:
        raise ValueError(f"blocks cover {len(out)} bases, the window has {length}")
    return out
