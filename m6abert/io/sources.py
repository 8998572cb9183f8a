"""Where labelled site windows come from: a *source* of records, never a folder of fixed file names.

The library reads positives and negatives through :class:`LabelledSources`, a pair of sources. A
source is anything with the four members of :class:`Source` (a name for messages, the records and
their declared sites, a digest for resumed runs, a record for run files); :class:`FastaSource`, a
FASTA file (gzip or bgzip compressed too, read by content), is the one built in. Another kind of
input (m6A sites as BED plus a genome FASTA, cut into windows) is one more class here and its flag
in ``m6abert/cli/`` (docs/architecture.md, "Add an input source").

What a source's records mean is checked where they are used, the same for every kind: a ``site=N``
naming an A of its record (:func:`m6abert.splits.read_windows`), unique ids, k-mer lengths.

``records.tsv`` (:data:`RECORDS`), written by get_input.py beside its split TSVs, says who each row of
each TSV is: its record id, label, the site's index in the written window and, when the source gave
them, the window's genome coordinates. :func:`part_records` reads the rows of one TSV back
(prediction, scores) as :class:`RecordRows`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

from ..utils import InputError
from .coords import WindowCoords, genome_positions
from .files import file_sha256, read_columns
from .sequences import FastaRecord, iter_fasta_chunks, read_fasta

PAPER_FILES = ("pos.fa", "neg.fa")  # the paper's layout of a data folder: positives, negatives


@runtime_checkable
class Source(Protocol):
    """What the library needs of an input of labelled site windows (one class: positives or negatives).

    ``name``
        How messages name the input (a FASTA source: its path), e.g. ``"data/pos.fa: record p3: ..."``.
    ``read()``
        ``(records, declared)``: the records in their input order (:class:`FastaRecord`, ids unique
        within the source, sequences upper-cased, letters of ACGTUN) and the 0-based index of the m6A
        site of every record whose input names one, by record id (a FASTA header's ``site=N``). A
        record without one has its site placed by the rule of :mod:`m6abert.sites`. A bad input is
        an :class:`~m6abert.utils.InputError` of one line starting with ``name``.
    ``sha256()``
        A hex digest that changes whenever ``read()`` would (a FASTA source: its file's bytes); a
        resumed run is checked against it.
    ``describe()``
        A JSON-able dict for run records: ``{"kind": ..., ...}`` (a FASTA source: ``{"kind": "fasta",
        "path": ...}``).

    Optional: ``coords()``, the genome coordinates of the records whose input names them, by record id
    (:class:`~m6abert.io.coords.WindowCoords`; a FASTA source: its headers' ``chrom:pos:strand``,
    ``transcript=``, ``blocks=``). A source without it gives none (:func:`m6abert.splits.read_coords`);
    get_input.py writes them into ``records.tsv``.
    """

    @property
    def name(self) -> str: ...

    def read(self) -> tuple[list[FastaRecord], dict[str, int]]: ...

    def sha256(self) -> str: ...

    def describe(self) -> dict: ...


class FastaSource(NamedTuple):
    """A FASTA file of site windows, one record per site (a header's ``site=N`` names its index)."""

    path: Path

    @property
    def name(self) -> str:
        return str(self.path)

    def read(self) -> tuple[list[FastaRecord], dict[str, int]]:
        """The records in file order and the ``site=N`` of their headers (:func:`read_fasta`)."""
        declared: dict[str, int] = {}
        records = read_fasta(self.path, declared)
        return records, declared

    def coords(self) -> dict[str, WindowCoords]:
        """The genome coordinates of the records whose headers carry them (streamed: no records kept)."""
        out: dict[str, WindowCoords] = {}
        for _ in iter_fasta_chunks(self.path, coords=out):
            pass
        return out

    def sha256(self) -> str:
        return file_sha256(self.path)

    def describe(self) -> dict:
        return {"kind": "fasta", "path": str(self.path)}


def fasta_source(path: str | os.PathLike) -> FastaSource:
    """A :class:`FastaSource` of an existing file (checked now, so a flag is refused before work starts).

    Raises
    ------
    InputError
        ``PATH: FASTA file not found`` or ``PATH: is a directory, expected a FASTA file`` (as the
        reader says it).
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a FASTA file")
    if not path.is_file():
        raise InputError(f"{path}: FASTA file not found")
    return FastaSource(path)


class LabelledSources(NamedTuple):
    """The positives (label 1: degraded) and negatives (label 0) of a data set."""

    pos: Source
    neg: Source

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> LabelledSources:
        """The paper's layout: ``folder/pos.fa`` and ``folder/neg.fa`` (each checked to exist)."""
        return cls.from_args(folder)

    @classmethod
    def from_args(cls, data_dir: str | os.PathLike | None, pos_fasta: str | os.PathLike | None = None,
                  neg_fasta: str | os.PathLike | None = None) -> LabelledSources:
        """``--pos_fasta`` / ``--neg_fasta`` where given, else ``data_dir/pos.fa`` / ``data_dir/neg.fa``.

        Raises
        ------
        InputError
            A file that does not exist or is a folder (one line naming its path), or neither a file
            nor ``data_dir`` for a class.
        """
        paths = []
        for given, default, flag in zip((pos_fasta, neg_fasta), PAPER_FILES, ("--pos_fasta", "--neg_fasta"), strict=True):
            if given is None and data_dir is None:
                raise InputError(f"no {default}: give {flag} FILE or a data folder that holds {default}")
            paths.append(given if given is not None else Path(data_dir) / default)
        return cls(*(fasta_source(p) for p in paths))

    def describe(self) -> dict:
        """``{"pos": ..., "neg": ...}``: each source's :meth:`Source.describe`, for run records."""
        return {"pos": self.pos.describe(), "neg": self.neg.describe()}


# ---------------------------------------------------------------------------- records.tsv
RECORDS = "records.tsv"  # beside get_input.py's TSVs: who each row of each TSV is
RECORD_COLUMNS = ("id", "part", "row", "label", "site")  # then COORD_COLUMNS and blocks, when known
COORD_COLUMNS = ("chrom", "pos", "strand", "transcript")
_FOLD = re.compile(r"fold_[0-9]+")
_STALE = "records.tsv does not describe these TSVs: re-run get_input.py (or remove it)"


class RecordRows(NamedTuple):
    """Who the rows of a data set are, row-aligned: record ids, the m6A site's index in each window (None:
    unknown) and the window's genome coordinates (None: unknown; ``blocks`` those of the window as written);
    with the true labels (None: unlabelled) and the sequences of a FASTA (None: rebuilt from TSV k-mers)."""

    ids: list[str]
    sites: list[int | None]
    coords: list[WindowCoords | None]
    labels: np.ndarray | None = None
    seqs: list[str] | None = None

    def has_coords(self) -> bool:
        return any(c is not None for c in self.coords)

    def take(self, block: range) -> RecordRows:
        """The rows ``block`` (a shard)."""
        cut = slice(block.start, block.stop)
        return RecordRows(self.ids[cut], self.sites[cut], self.coords[cut],
                          None if self.labels is None else self.labels[cut],
                          None if self.seqs is None else self.seqs[cut])


def blocks_text(blocks: tuple[tuple[int, int], ...] | None) -> str:
    """``s-e,s-e`` as a header's ``blocks=`` writes them ("" for None)."""
    return ",".join(f"{s}-{e}" for s, e in blocks) if blocks else ""


def blocks_of(positions: np.ndarray, strand: str) -> tuple[tuple[int, int], ...]:
    """The genomic intervals (0-based, half-open, in window order) of a window's base positions.

    >>> blocks_of(np.array([13, 12, 6, 5]), "-"), blocks_of(np.array([4, 5, 9]), "+")
    (((12, 14), (5, 7)), ((4, 6), (9, 10)))
    """
    step = 1 if strand == "+" else -1
    runs = np.split(np.asarray(positions, dtype=np.int64), np.flatnonzero(np.diff(positions) != step) + 1)
    return tuple((int(min(r[0], r[-1])), int(max(r[0], r[-1])) + 1) for r in runs if len(r))


def placed_coords(c: WindowCoords | None, length: int, site: int | None, lo: int = 0,
                  hi: int | None = None) -> WindowCoords | None:
    """The coordinates of bases ``[lo, hi)`` of a window of ``length`` nt with explicit ``blocks`` (from its
    blocks, or contiguous around its site); ``blocks`` None when neither is known (the bases cannot be placed)."""
    if c is None or (c.blocks is None and site is None):
        return c
    where = genome_positions(c, length, site or 0)[lo:hi]
    return c._replace(blocks=blocks_of(where, c.strand))


def coord_columns(coords: list[WindowCoords | None], with_blocks: bool = False) -> dict[str, list]:
    """``chrom``, ``pos``, ``strand``, ``transcript`` (and ``blocks``) columns of a table; "" where unknown."""
    out: dict[str, list] = {c: ["" if w is None else (getattr(w, c) or "") for w in coords] for c in COORD_COLUMNS}
    if with_blocks:
        out["blocks"] = [blocks_text(None if w is None else w.blocks) for w in coords]
    return out


def records_file(tsv: str | os.PathLike) -> tuple[Path, str] | None:
    """The ``records.tsv`` that describes ``tsv`` and its part: ``(folder/records.tsv, stem)``, or for a
    ``fold_{i}/`` TSV ``(parent/records.tsv, "fold_{i}/stem")``; None without one."""
    tsv = Path(tsv)
    if (tsv.parent / RECORDS).is_file():
        return tsv.parent / RECORDS, tsv.stem
    if _FOLD.fullmatch(tsv.parent.name) and (tsv.parent.parent / RECORDS).is_file():
        return tsv.parent.parent / RECORDS, f"{tsv.parent.name}/{tsv.stem}"
    return None


def part_records(tsv: str | os.PathLike, n_rows: int, labels: np.ndarray | None = None) -> RecordRows | None:
    """The rows of ``records.tsv`` (:func:`records_file`) that describe the ``n_rows`` rows of ``tsv``, in row
    order (None without a records.tsv); refused when they are not its rows 0..n-1 once each, or a label differs.

    Raises
    ------
    InputError
        ``PATH: the rows of part test are not rows 0..19 of test.tsv (18 listed); records.tsv does not ...``.
    """
    found = records_file(tsv)
    if found is None:
        return None
    path, part = found
    table = read_columns(path, "records table")
    missing = [c for c in RECORD_COLUMNS if c not in table]
    if missing:
        raise InputError(f"{path}: no {missing[0]} column; not a records table of get_input.py")
    where = [i for i, p in enumerate(table["part"]) if p == part]
    rows = [_number(table["row"][i], path, "row") for i in where]
    if sorted(rows) != list(range(n_rows)):
        raise InputError(f"{path}: the rows of part {part} are not rows 0..{n_rows - 1} of {Path(tsv).name} "
                         f"({len(rows)} listed); {_STALE}")
    order = [i for _, i in sorted(zip(rows, where, strict=True))]
    for row, i in enumerate(order if labels is not None else ()):
        if table["label"][i] != str(int(labels[row])):
            raise InputError(f"{path}: part {part} row {row}: label {table['label'][i]}, but row {row} of "
                             f"{Path(tsv).name} has label {int(labels[row])}; {_STALE}")
    sites = [_number(table["site"][i], path, "site") if table["site"][i] else None for i in order]
    coords = [_coords(table, i, path) for i in order]
    return RecordRows([table["id"][i] for i in order], sites, coords)


def read_ids_tables(paths: list[Path]) -> RecordRows:
    """The rows of ``{stem}.ids.tsv`` tables (visualize_all.py's, one after the other) as :class:`RecordRows`
    (labels None unless every row has one)."""
    ids, sites, coords, labels = [], [], [], []
    for path in paths:
        table = read_columns(path, "ids table")
        for i in range(len(table.get("id", []))):
            ids.append(table["id"][i])
            sites.append(_number(table["site"][i], path, "site") if table["site"][i] else None)
            coords.append(_coords(table, i, path))
            labels.append(table["label"][i])
    known = bool(labels) and all(labels)
    return RecordRows(ids, sites, coords, np.asarray([int(y) for y in labels], np.int64) if known else None)


def _number(text: str, path: Path, column: str) -> int:
    if not text.isdigit():
        raise InputError(f"{path}: {column} {text!r} is not a number >= 0; not a records table of get_input.py")
    return int(text)


def _coords(table: dict[str, list[str]], i: int, path: Path) -> WindowCoords | None:
    """The coordinates of row ``i`` of a records table (None where its chrom is empty)."""
    if not table.get("chrom", [""] * (i + 1))[i]:
        return None
    strand, blocks = table["strand"][i], table.get("blocks", [""] * (i + 1))[i]
    try:
        parsed = tuple(tuple(int(x) for x in b.split("-", 1)) for b in blocks.split(",")) if blocks else None
    except ValueError:
        parsed = ()
    if strand not in ("+", "-") or not table["pos"][i].isdigit() or parsed == () or \
            any(len(b) != 2 for b in parsed or ()):
        raise InputError(f"{path}: record {table['id'][i]}: coordinates {table['chrom'][i]}:{table['pos'][i]}:"
                         f"{strand} blocks={blocks} are not chrom:pos:strand with START-END blocks")
    return WindowCoords(table["chrom"][i], int(table["pos"][i]), strand, table["transcript"][i] or None, parsed)
