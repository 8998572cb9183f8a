"""m6A sites as genome coordinates, an indexed genome FASTA, and the window FASTA ``m6abert-windows`` writes.

**Sites** (:func:`read_sites`), one site a line, either

* BED6 (tab- or space-separated): ``chrom  start  end  name  score  strand`` with a 0-based ``start``
  and ``end = start + 1`` (one base); more columns are allowed and ignored. BED3/4/5 have no strand and
  are refused: the strand says which base is the site (an A on ``+`` is a T on the genome's ``+``
  strand for a ``-`` site). ``track``/``browser``/``#`` lines and a ``chrom start ...`` header are skipped;
* or a TSV whose first line is the header ``chrom  pos  strand`` (optionally ``name``), ``pos`` 1-based.

A name of ``.`` (or no name column) makes the site's id ``chrom:pos:strand`` (``pos`` 1-based). Both may
be gzip- or bgzip-compressed (read by content).

**Genome** (:func:`open_genome`): a FASTA indexed with pyfaidx (its ``.fai``, and ``.gzi`` for bgzip,
written next to it on first use), never read into memory; plain or bgzip-compressed. Plain gzip cannot
be read at random offsets and is refused with the command that fixes it.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from ..utils import InputError
from .files import GZIP_MAGIC, read_text_file

SITES_WHAT = "sites file (BED6, or a TSV with the header chrom pos strand [name])"
TSV_HEADER = ("chrom", "pos", "strand")
_INT = re.compile(r"[0-9]+")
_NOT_ACGTN = re.compile(r"[^ACGTN]")


class GenomeSite(NamedTuple):
    """One m6A site: ``start`` 0-based on ``chrom``, ``strand`` ``+`` or ``-``; ``line`` of its file."""

    name: str | None  # None: "." or no name column
    chrom: str
    start: int
    strand: str
    line: int

    @property
    def id(self) -> str:
        """The record id of its window: the name, else ``chrom:pos:strand`` (``pos`` 1-based)."""
        return self.name or f"{self.chrom}:{self.start + 1}:{self.strand}"


# ---------------------------------------------------------------------------- sites
def read_sites(path: str | os.PathLike) -> list[GenomeSite]:
    """The sites of a BED6 file or a ``chrom pos strand [name]`` TSV (see the module), in file order.

    Raises
    ------
    InputError
        ``FILE: line N: problem`` for a strand not ``+``/``-``, a BED ``end`` that is not ``start + 1``,
        a coordinate that is not an integer, a duplicate id, a wrong column count (BED3/4/5: no
        strand); a missing, empty or binary file, or one without sites.
    """
    path = Path(path)
    text = read_text_file(path, SITES_WHAT)
    sites: list[GenomeSite] = []
    seen: dict[str, int] = {}
    columns: int | None = None  # the TSV's, once its header is read; 0: BED
    for lineno, raw in enumerate(text.split("\n"), 1):
        fields = raw.split()
        if not fields or fields[0].startswith("#") or fields[0] in ("track", "browser"):
            continue
        if columns is None:
            columns = _format_of(path, lineno, fields)
            if columns or (len(fields) > 1 and fields[1].lower() in ("start", "chromstart")):
                continue  # the TSV's header, or a BED header line
        site = _tsv_site(path, lineno, fields, columns) if columns else _bed_site(path, lineno, fields)
        first = seen.setdefault(site.id, lineno)
        if first != lineno:
            what = f"name {site.name}" if site.name else f"site {site.id}"
            raise InputError(f"{path}: line {lineno}: duplicate {what} (also line {first}); each site's id must be "
                             "unique")
        sites.append(site)
    if not sites:
        raise InputError(f"{path}: no sites in the {SITES_WHAT}")
    return sites


def _format_of(path: Path, lineno: int, fields: list[str]) -> int:
    """0 for BED; the column count (3 or 4) of a TSV whose header ``fields`` are; else an ``InputError``."""
    lower = [f.lower() for f in fields]
    if tuple(lower[:3]) == TSV_HEADER:
        if len(lower) == 3 or (len(lower) == 4 and lower[3] == "name"):
            return len(lower)
        raise InputError(f"{path}: line {lineno}: a TSV header must be chrom pos strand [name], not "
                         f"{' '.join(fields)}")
    if len(fields) > 1 and not _INT.fullmatch(fields[1]) and lower[1] not in ("start", "chromstart"):
        raise InputError(f"{path}: line {lineno}: {fields[1]!r} is not an integer start (BED6: chrom start end "
                         "name score strand, start 0-based), and the line is not the TSV header chrom pos strand "
                         "[name] (pos 1-based)")
    return 0


def _bed_site(path: Path, lineno: int, fields: list[str]) -> GenomeSite:
    if 3 <= len(fields) < 6:
        raise InputError(f"{path}: line {lineno}: BED{len(fields)} has no strand; the strand is required: give BED6 "
                         "(chrom start end name score strand) or a TSV with the header chrom pos strand [name]")
    if len(fields) < 3:
        raise InputError(f"{path}: line {lineno}: {len(fields)} columns; a BED6 line has 6 "
                         "(chrom start end name score strand)")
    chrom, start, end, name, _, strand = fields[:6]
    for what, value in (("start", start), ("end", end)):
        if not _INT.fullmatch(value):
            raise InputError(f"{path}: line {lineno}: BED {what} {value!r} is not an integer >= 0")
    if int(end) != int(start) + 1:
        raise InputError(f"{path}: line {lineno}: BED end {end} is not start + 1 ({int(start) + 1}): a site is one "
                         "base (start 0-based, end = start + 1)")
    _check_strand(path, lineno, strand)
    return GenomeSite(None if name == "." else name, chrom, int(start), strand, lineno)


def _tsv_site(path: Path, lineno: int, fields: list[str], columns: int) -> GenomeSite:
    if len(fields) != columns:
        raise InputError(f"{path}: line {lineno}: {len(fields)} columns, the header has {columns} "
                         f"({' '.join(TSV_HEADER + ('name',) * (columns == 4))})")
    chrom, pos, strand = fields[:3]
    if not _INT.fullmatch(pos) or int(pos) < 1:
        raise InputError(f"{path}: line {lineno}: pos {pos!r} is not an integer >= 1 (pos is 1-based)")
    _check_strand(path, lineno, strand)
    name = fields[3] if columns == 4 and fields[3] != "." else None
    return GenomeSite(name, chrom, int(pos) - 1, strand, lineno)


def _check_strand(path: Path, lineno: int, strand: str) -> None:
    if strand not in ("+", "-"):
        raise InputError(f"{path}: line {lineno}: strand {strand!r} is not + or -")


# ---------------------------------------------------------------------------- genome
def is_bgzip(path: str | os.PathLike) -> bool:
    """Whether a gzip file is BGZF (bgzip's blocks, with the ``BC`` extra field), which pyfaidx indexes."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(18)
    except OSError:
        return False
    return len(head) == 18 and head[:2] == GZIP_MAGIC and bool(head[3] & 4) and head[12:14] == b"BC"


class Genome:
    """A genome FASTA read through its pyfaidx index: :attr:`lengths` and :meth:`fetch`; close it after use."""

    def __init__(self, path: Path, fasta):
        self.path, self._fa = path, fasta
        self.lengths: dict[str, int] = {name: len(fasta[name]) for name in fasta.keys()}

    def fetch(self, chrom: str, start: int, end: int) -> str:
        """Bases ``start:end`` (0-based, half-open) of ``chrom``, upper case; letters other than ACGTN
        (IUPAC codes) as N."""
        if not 0 <= start <= end <= self.lengths[chrom]:
            raise ValueError(f"{chrom}:{start}-{end} is outside {chrom} (0-{self.lengths[chrom]})")
        if start == end:
            return ""
        return _NOT_ACGTN.sub("N", str(self._fa[chrom][start:end]).upper())

    def close(self) -> None:
        self._fa.close()

    def __enter__(self) -> Genome:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_genome(path: str | os.PathLike) -> Genome:
    """The genome FASTA ``path`` (plain or bgzip), indexed by pyfaidx (its ``.fai``, and ``.gzi`` for
    bgzip, written next to it when missing or older than it).

    Raises
    ------
    InputError
        One line: missing file, plain gzip (recompress with bgzip), an index that cannot be written
        (a read-only folder), a FASTA pyfaidx cannot index (lines of unequal length, a repeated name).
    """
    import pyfaidx

    path = Path(path)
    _check_genome_file(path)
    writable = os.access(path.parent, os.W_OK)
    missing = [p for p in _index_files(path) if not p.exists()]
    if missing and not writable:
        raise InputError(f"{path}: its index {missing[0].name} is missing and the folder {path.parent} is read-only; "
                         "copy the genome into a folder you can write (or index it there with samtools faidx)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an index older than the FASTA is rebuilt (or used where read-only)
            fasta = pyfaidx.Fasta(str(path), as_raw=True, sequence_always_upper=True, strict_bounds=True,
                                  rebuild=writable)
    except pyfaidx.UnsupportedCompressionFormat:
        raise InputError(_GZIP_HINT.format(path=path)) from None
    except pyfaidx.FastaIndexingError as err:
        raise InputError(f"{path}: not an indexable FASTA ({' '.join(str(err).split())})") from None
    except ValueError as err:  # a repeated sequence name
        raise InputError(f"{path}: not an indexable FASTA ({' '.join(str(err).split())})") from None
    except OSError as err:
        raise InputError(f"{path}: cannot index it ({' '.join(str(err).split())}); is its folder {path.parent} "
                         "read-only? copy the genome into a folder you can write") from None
    return Genome(path, fasta)


_GZIP_HINT = ("{path}: plain gzip cannot be indexed for random access; recompress it with bgzip "
              "(zcat {path} | bgzip > {path}.bgz) or give an uncompressed copy")


def _check_genome_file(path: Path) -> None:
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a genome FASTA")
    if not path.is_file():
        raise InputError(f"{path}: genome FASTA not found")
    with open(path, "rb") as fh:
        head = fh.read(2)
    if head == GZIP_MAGIC and not is_bgzip(path):
        raise InputError(_GZIP_HINT.format(path=path))


def _index_files(path: Path) -> list[Path]:
    names = [f"{path.name}.fai"] + ([f"{path.name}.gzi"] if is_bgzip(path) else [])
    return [path.parent / n for n in names]


# ---------------------------------------------------------------------------- windows FASTA
def write_windows_fasta(path: str | os.PathLike, records: Iterable[tuple[str, str]], width: int = 0) -> int:
    """Write ``(header without '>', sequence)`` records as FASTA (one sequence line each, or lines of
    ``width``), streamed: the records may come from a generator. Returns how many were written."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for header, seq in records:
            lines = [seq] if width <= 0 else [seq[i : i + width] for i in range(0, len(seq), width)]
            fh.write(f">{header}\n" + "\n".join(lines) + "\n")
            n += 1
    return n
