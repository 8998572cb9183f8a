"""Transcript models from a GTF or GFF3 annotation: the exons of each transcript (``--gtf``).

Streamed line by line (a human GTF is 1.5 GB; gzip or bgzip too, read by content), keeping only the
``exon`` lines: GTF exons name their transcript with the ``transcript_id "..."`` attribute, GFF3 exons
with ``Parent=`` (several comma-separated parents: the exon belongs to each). The format is GFF3 where
the file says ``##gff-version 3`` or the first exon's attributes are ``key=value`` pairs, else GTF.
Transcript ids are kept as the file spells them (Ensembl's GFF3 writes ``transcript:ENST...``).
"""

from __future__ import annotations

import os
import re
from itertools import pairwise
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote

from ..utils import InputError
from .sequences import CORPUS_CHUNK_BYTES, _line_blocks

GTF_WHAT = "GTF/GFF3 annotation"
_GTF_TX = re.compile(r'(?:^|;)\s*transcript_id\s+"?([^";\s]+)"?')
_INT = re.compile(r"[0-9]+")


class Transcript(NamedTuple):
    """A transcript: its exons (0-based half-open, ascending on the genome, never overlapping) on one
    chromosome and strand; ``line`` is its first exon's line in the annotation."""

    id: str
    chrom: str
    strand: str
    exons: tuple[tuple[int, int], ...]
    line: int

    @property
    def length(self) -> int:
        """Nucleotides of the spliced mRNA."""
        return sum(e - s for s, e in self.exons)


class _Exons(NamedTuple):
    chrom: str
    strand: str
    line: int
    exons: list  # (start, end, line)


def read_transcripts(path: str | os.PathLike) -> dict[str, Transcript]:
    """The transcripts of a GTF or GFF3 file (see the module), by id, in the order of their first exon.

    Raises
    ------
    InputError
        ``FILE: line N: problem``: a line of other than 9 tab-separated columns, an exon whose start or
        end is not an integer (or start > end), whose strand is not ``+``/``-``, without a transcript id,
        or on another chromosome or strand than its transcript's earlier exons; overlapping exons of
        one transcript; a missing, binary or empty file, or one without exons.
    """
    path = Path(path)
    found: dict[str, _Exons] = {}
    gff3: bool | None = None
    for first, block in _line_blocks(path, GTF_WHAT, CORPUS_CHUNK_BYTES):
        for lineno, line in enumerate(block, first):
            if line.startswith("#"):
                if line.startswith("##FASTA"):  # GFF3's sequences follow: no more features
                    return _finish(path, found)
                gff3 = True if line.startswith("##gff-version 3") else gff3
                continue
            if not line.strip():
                continue
            cols = line.rstrip("\r\n").split("\t")
            if len(cols) != 9:
                raise InputError(f"{path}: line {lineno}: {len(cols)} tab-separated columns; a GTF/GFF3 line has 9")
            if cols[2] != "exon":
                continue
            if gff3 is None:
                gff3 = not _GTF_TX.search(cols[8]) and "=" in cols[8]
            for tx in (_gff3_parents if gff3 else _gtf_transcript)(path, lineno, cols[8]):
                _add_exon(path, lineno, cols, tx, found)
    return _finish(path, found)


def _gtf_transcript(path: Path, lineno: int, attributes: str) -> list[str]:
    m = _GTF_TX.search(attributes)
    if not m:
        raise InputError(f'{path}: line {lineno}: GTF exon without a transcript_id "..." attribute')
    return [m[1]]


def _gff3_parents(path: Path, lineno: int, attributes: str) -> list[str]:
    for pair in attributes.split(";"):
        key, _, value = pair.strip().partition("=")
        if key == "Parent" and value:
            return [unquote(v) for v in value.split(",") if v]
    raise InputError(f"{path}: line {lineno}: GFF3 exon without a Parent= attribute (its transcript)")


def _add_exon(path: Path, lineno: int, cols: list[str], tx: str, found: dict[str, _Exons]) -> None:
    chrom, start, end, strand = cols[0], cols[3], cols[4], cols[6]
    if not (_INT.fullmatch(start) and _INT.fullmatch(end)) or not 1 <= int(start) <= int(end):
        raise InputError(f"{path}: line {lineno}: exon start {start!r} and end {end!r} are not integers with "
                         "1 <= start <= end (GTF/GFF3 are 1-based, end inclusive)")
    if strand not in ("+", "-"):
        raise InputError(f"{path}: line {lineno}: exon strand {strand!r} is not + or -")
    entry = found.get(tx)
    if entry is None:
        entry = found[tx] = _Exons(chrom, strand, lineno, [])
    elif (entry.chrom, entry.strand) != (chrom, strand):
        raise InputError(f"{path}: line {lineno}: exon of transcript {tx} on {chrom}:{strand}, its earlier exons "
                         f"(line {entry.line}) on {entry.chrom}:{entry.strand}")
    entry.exons.append((int(start) - 1, int(end), lineno))


def _finish(path: Path, found: dict[str, _Exons]) -> dict[str, Transcript]:
    if not found:
        raise InputError(f"{path}: no exon lines in the {GTF_WHAT} (feature 'exon', column 3)")
    out = {}
    for tx, entry in found.items():
        exons = sorted(entry.exons)
        for (s1, e1, l1), (s2, e2, l2) in pairwise(exons):
            if s2 < e1:
                raise InputError(f"{path}: line {max(l1, l2)}: exon {s2 + 1}-{e2} of transcript {tx} overlaps its "
                                 f"exon {s1 + 1}-{e1} (line {min(l1, l2)})")
        out[tx] = Transcript(tx, entry.chrom, entry.strand, tuple((s, e) for s, e, _ in exons), entry.line)
    return out
