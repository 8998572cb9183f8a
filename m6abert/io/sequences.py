"""Sequence files: FASTA, the ``seq<TAB>label`` TSVs, variants tables and streamed pretraining corpora."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..constants import FASTA_LETTERS
from ..utils import InputError
from .coords import header_coords
from .files import is_gzip, read_text_file, write_text


class FastaRecord(NamedTuple):
    """One FASTA record: the first word of its header and its upper-cased sequence."""

    id: str
    seq: str


def read_fasta(path: str | os.PathLike, sites: dict[str, int] | None = None,
               coords: dict | None = None, labels: dict[str, int] | None = None) -> list[FastaRecord]:
    r"""Read and validate a FASTA file.

    Sequences may span lines; they are upper-cased (``U`` is kept here, and read as ``T`` when
    k-merised). Every letter must be one of ACGTUN. Lines end at ``\n`` only (a ``\r`` before
    it is dropped): a form feed, NEL or line separator inside a header stays in the header.

    Parameters
    ----------
    path: str or PathLike
        The FASTA file.
    sites: dict or None
        If given, the ``site=N`` word of each header that has one (the 0-based index of the
        record's m6A site, see :mod:`m6abert.sites`) is stored in it by record id. Default is None
        (headers are not read beyond the id).
    coords: dict or None
        If given, the genomic coordinates of each header that has them (``chrom:pos:strand``,
        ``transcript=``, ``blocks=``; :class:`m6abert.io.coords.WindowCoords`) by record id; ``blocks``
        must cover the record's length. Default is None.
    labels: dict or None
        If given, the ``label=0`` / ``label=1`` word of each header that has one (1: degraded) by
        record id (``visualize_all.py --fasta``). Default is None.

    Returns
    -------
    records: list[FastaRecord]
        In file order.

    Raises
    ------
    InputError
        Missing, empty, binary or non-FASTA file; a record without sequence; an illegal letter; a
        ``site=`` that is not an index (with ``sites``), ``blocks=`` not covering the record (with
        ``coords``), a ``label=`` other than 0 or 1 (with ``labels``).
    """
    path = Path(path)
    text = read_text_file(path, "FASTA file")
    return list(_parse_fasta(path, enumerate(fasta_lines(text), 1), sites, coords=coords, labels=labels))


def fasta_lines(text: str) -> list[str]:
    r"""The lines of a FASTA text: split at ``\n`` only, a trailing ``\r`` dropped.

    ``str.splitlines`` would also split at a form feed, NEL (U+0085) or U+2028 inside a header
    and make the rest of the header a sequence line.

    >>> fasta_lines(">p1 a\x0cb\r\nACGT\n")
    ['>p1 a\x0cb', 'ACGT', '']
    """
    return [line.removesuffix("\r") for line in text.split("\n")]


def check_unique_ids(*sources: tuple[str | os.PathLike, Sequence[FastaRecord]]) -> None:
    """Refuse a record id that appears twice, in one FASTA file or in two of them.

    Outputs keyed by record id (``folds.json``, ``predictions.tsv``) would be ambiguous.

    Parameters
    ----------
    *sources: (path, records)
        Each FASTA file's path (for the message) and its records in file order.

    Raises
    ------
    InputError
        Naming the file, the id and both record numbers (1-based, in file order).
    """
    seen: dict[str, tuple[str, int]] = {}
    for path, records in sources:
        for number, rec in enumerate(records, 1):
            first = seen.setdefault(rec.id, (str(path), number))
            if first == (str(path), number):
                continue
            if first[0] == str(path):
                raise InputError(f"{path}: duplicate record id {rec.id} (records {first[1]} and {number}); "
                                 "record ids must be unique")
            raise InputError(f"{path}: record id {rec.id} (record {number}) is also record {first[1]} of "
                             f"{first[0]}; record ids must be unique")


class RecordTooLong(InputError):
    """A FASTA record longer than the ``max_length`` its reader was given; only its length was kept."""

    def __init__(self, path: str | os.PathLike, record_id: str, number: int, length: int, max_length: int):
        super().__init__(f"{path}: record {record_id}: {length} nt, longer than the {max_length} nt allowed")
        self.record_id, self.number, self.length = record_id, number, length


def _parse_fasta(path: Path, numbered_lines: Iterator[tuple[int, str]], sites: dict[str, int] | None = None,
                 max_length: int | None = None, coords: dict | None = None,
                 labels: dict[str, int] | None = None) -> Iterator[FastaRecord]:
    """FASTA records, validated, from ``(line number, line)`` pairs (the one parser of both readers).

    With ``max_length``, a longer record is counted to its end without being kept and raises
    :class:`RecordTooLong`: memory never holds more of it than one line.
    """
    header: str | None = None
    chunks: list[str] = []
    start = number = size = 0
    into = (sites, coords, labels)
    for lineno, line in numbered_lines:
        line = line.strip()
        if not line:
            continue
        if line.startswith(">"):
            if header is not None:
                number += 1
                yield _fasta_record(path, header, chunks, start, number, _Limits(size, max_length, *into))
            header, chunks, start, size = line[1:].strip(), [], lineno, 0
        elif header is None:
            raise InputError(f"{path}: line {lineno}: not FASTA (expected a '>' header line first)")
        else:
            part = "".join(line.split())
            size += len(part)
            if max_length is None or size <= max_length:
                chunks.append(part)
    if header is None:
        raise InputError(f"{path}: empty FASTA file")
    yield _fasta_record(path, header, chunks, start, number + 1, _Limits(size, max_length, *into))


class _Limits(NamedTuple):
    size: int  # letters of the record
    max_length: int | None
    sites: dict[str, int] | None  # where a header's site=N goes
    coords: dict | None = None  # where a header's coordinates go (io.coords.WindowCoords)
    labels: dict | None = None  # where a header's label=0|1 goes


_SITE_VALUE = re.compile(r"[0-9]+")


def header_site(header: str, path: str | os.PathLike, record_id: str) -> int | None:
    """The ``site=N`` word of a FASTA header (after the id; any case), or None; a value that is no
    0-based index, or two such words, is an ``InputError``.

    >>> header_site("p1 site=250 chr1:+", "x.fa", "p1"), header_site("p1 note", "x.fa", "p1")
    (250, None)
    """
    values = [w[5:] for w in header.split()[1:] if w[:5].lower() == "site="]
    if not values:
        return None
    if len(values) > 1:
        raise InputError(f"{path}: record {record_id}: {len(values)} site= words in its header; give one")
    if not _SITE_VALUE.fullmatch(values[0]):
        raise InputError(f"{path}: record {record_id}: site={values[0]} in its header is not a 0-based index "
                         "(site=N with N = 0, 1, 2, ...)")
    return int(values[0])


def header_label(header: str, path: str | os.PathLike, record_id: str) -> int | None:
    """The ``label=0`` or ``label=1`` word of a FASTA header (any case), or None.

    >>> header_label("p1 label=1 site=250", "x.fa", "p1"), header_label("p1", "x.fa", "p1")
    (1, None)
    """
    values = [w[6:] for w in header.split()[1:] if w[:6].lower() == "label="]
    if not values:
        return None
    if len(values) > 1 or values[0] not in ("0", "1"):
        raise InputError(f"{path}: record {record_id}: label={values[-1]} in its header; give one label=0 or label=1")
    return int(values[0])


class LabelledTsv(NamedTuple):
    """A ``seq<TAB>label`` file: k-mer sentences and labels (None when the file has no labels)."""

    sentences: list[str]
    labels: np.ndarray | None  # (n,) int64 in {0, 1}


def read_tsv(path: str | os.PathLike, require_labels: bool = True) -> LabelledTsv:
    """Read a ``seq<TAB>label`` TSV as get_input.py writes it.

    The first row is a header unless its label column is a number (or, in a one-column file, it
    looks like k-mers): a header-less file keeps its first example, unlike the original, which
    always dropped row 0; a bad label number is reported.

    Parameters
    ----------
    path: str or PathLike
        The TSV (LF or CRLF line endings).
    require_labels: bool
        If False, a one-column file (sequences only) is accepted and ``labels`` is None.
        Default is True.

    Raises
    ------
    InputError
        Missing or empty file, rows without the ``seq<TAB>label`` shape, labels outside {0, 1}.
    """
    path = Path(path)
    text = read_text_file(path, "TSV file")
    rows = [line.split("\t") for line in text.splitlines()]
    first = rows[0]
    if len(first) == 2:
        header = not first[1].strip().lstrip("+-").isdigit()
    else:  # one column: a header has letters that no k-mer sentence has
        header = bool(re.search(r"[^ACGTNacgtn \r]", first[0]))
    if header:
        rows = rows[1:]
    while rows and rows[-1] == [""]:
        rows.pop()
    if not rows:
        raise InputError(f"{path}: no data rows after the header")
    ncol = len(rows[0])
    if ncol != 2 and not (ncol == 1 and not require_labels):
        raise InputError(f"{path}: row 1: expected 2 tab-separated columns (seq, label), found {ncol}")
    sentences, labels = [], []
    for i, row in enumerate(rows, 1):
        if len(row) != ncol:
            raise InputError(f"{path}: row {i}: expected {ncol} tab-separated columns, found {len(row)}")
        if not row[0].strip():
            raise InputError(f"{path}: row {i}: empty sequence")
        sentences.append(row[0].strip())
        if ncol == 2:
            lab = row[1].strip()
            if lab not in ("0", "1"):
                raise InputError(f"{path}: row {i}: label {lab!r} is not 0 or 1")
            labels.append(int(lab))
    return LabelledTsv(sentences, np.asarray(labels, dtype=np.int64) if ncol == 2 else None)


def tsv_text(sentences: list[str], labels: list[int] | np.ndarray) -> str:
    """The exact bytes of the original's TSVs (as text): header, ``seq\\tlabel`` rows, CRLF."""
    lines = ["seq\tlabel"] + [f"{s}\t{int(y)}" for s, y in zip(sentences, labels, strict=True)]
    return "\r\n".join(lines) + "\r\n"


def write_tsv(path: str | os.PathLike, sentences: list[str], labels: list[int] | np.ndarray) -> None:
    """Write a ``seq<TAB>label`` TSV exactly as the original's ``csv.writer`` did (CRLF)."""
    write_text(path, tsv_text(sentences, labels), newline="")


# ---------------------------------------------------------------------------- variants tables
class Variant(NamedTuple):
    """One row of a variants table: record id, position as written, ref and alt (stripped), line number."""

    id: str
    pos: int
    ref: str
    alt: str
    line: int  # 1-based line of the file, for messages


_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUCLEOTIDES = re.compile(r"[ACGTUNacgtun]+")
VARIANT_COLUMNS = ("id", "pos", "ref", "alt")


def read_variants(path: str | os.PathLike) -> list[Variant]:
    r"""Read a variants table: ``id<TAB>pos<TAB>ref<TAB>alt`` rows, an optional header line first.

    The first line is a header if it starts with ``#``, or if it has four columns, its ``pos``
    is not an integer and its ``ref`` and ``alt`` are not both nucleotide letters (``id pos ref
    alt``, ``name position reference alternative``); a data row with a bad position is reported.
    Blank lines are skipped; lines end at ``\n`` (a ``\r`` before it is dropped). What the
    positions and letters mean is checked against the records by :mod:`m6abert.variants`.

    Parameters
    ----------
    path: str or PathLike
        The TSV.

    Returns
    -------
    variants: list[Variant]
        In file order.

    Raises
    ------
    InputError
        Missing, binary or empty file, no row after the header, a row without four tab-separated
        columns, an empty field, a position that is not an integer.
    """
    path = Path(path)
    text = read_text_file(path, "variants file")
    rows = [(n, line.split("\t")) for n, line in enumerate(fasta_lines(text), 1) if line.strip()]
    if _is_variants_header(rows[0][1]):
        rows = rows[1:]
    if not rows:
        raise InputError(f"{path}: no variants after the header line")
    return [_variant(path, n, fields) for n, fields in rows]


def _is_variants_header(fields: list[str]) -> bool:
    if fields[0].lstrip().startswith("#"):
        return True
    if len(fields) != len(VARIANT_COLUMNS):
        return False  # reported as a malformed row
    _, pos, ref, alt = (f.strip() for f in fields)
    return not _INTEGER.fullmatch(pos) and not (_NUCLEOTIDES.fullmatch(ref) and _NUCLEOTIDES.fullmatch(alt))


def _variant(path: Path, lineno: int, fields: list[str]) -> Variant:
    """One data row of :func:`read_variants`, checked."""
    if len(fields) != len(VARIANT_COLUMNS):
        raise InputError(f"{path}: line {lineno}: expected 4 tab-separated columns (id, pos, ref, alt), "
                         f"found {len(fields)}")
    values = [f.strip() for f in fields]
    for name, value in zip(VARIANT_COLUMNS, values, strict=True):
        if not value:
            raise InputError(f"{path}: line {lineno}: empty {name}")
    rid, pos, ref, alt = values
    if not _INTEGER.fullmatch(pos):
        raise InputError(f"{path}: line {lineno}: position {pos!r} is not an integer")
    return Variant(rid, int(pos), ref, alt, lineno)


# ---------------------------------------------------------------------------- pretraining corpus
CORPUS_CHUNK_BYTES = 1 << 24  # about 16 MiB of text per chunk of a streamed file


class CorpusChunk(NamedTuple):
    """Consecutive non-empty lines of a line-by-line corpus (stripped) and where they are."""

    lines: list[str]
    line_numbers: np.ndarray  # (n,) int64, 1-based line numbers in the file


def _line_blocks(path: Path, what: str, chunk_bytes: int,
                 newline: str | None = None) -> Iterator[tuple[int, list[str]]]:
    r"""Blocks of about ``chunk_bytes`` of lines as ``(number of the first line, lines)``.

    Checks what :func:`~m6abert.io.files.read_text_file` checks (a folder, a missing file, NUL bytes, UTF-8) without
    holding the whole file in memory. ``newline`` is :func:`open`'s: ``"\n"`` ends lines at
    ``\n`` only (FASTA headers); None at ``\n``, ``\r\n`` or ``\r``.
    """
    import gzip
    import zlib

    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a {what}")
    try:
        if is_gzip(path):  # gzip or bgzip: decompressed as it is read
            fh = gzip.open(path, "rt", encoding="utf-8-sig", newline=newline)
        else:
            fh = open(path, encoding="utf-8-sig", newline=newline)
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read {what} ({err.strerror})") from None
    lineno = 0
    with fh:
        while True:
            try:
                block = fh.readlines(chunk_bytes)
            except UnicodeDecodeError:
                raise InputError(f"{path}: not UTF-8 text after line {lineno}, expected a {what}") from None
            except (EOFError, gzip.BadGzipFile, zlib.error):
                raise InputError(f"{path}: a damaged or truncated gzip file after line {lineno}, expected a {what}") from None
            except OSError as err:
                raise InputError(f"{path}: cannot read {what} ({err.strerror})") from None
            if not block:
                return
            if any("\0" in line for line in block):
                raise InputError(f"{path}: binary file, expected a {what}")
            n = len(block)  # the consumer may shrink the list in place
            yield lineno + 1, block
            lineno += n


def iter_corpus_chunks(
    path: str | os.PathLike, chunk_bytes: int = CORPUS_CHUNK_BYTES, what: str = "corpus"
) -> Iterator[CorpusChunk]:
    """Stream a line-by-line pretraining corpus (one k-mer sentence per line) in chunks.

    The same lines as :func:`read_lines` (non-empty, stripped), but about ``chunk_bytes`` of
    text at a time, so a corpus of millions of lines is tokenised chunk by chunk without a
    Python string per line for the whole file.

    Parameters
    ----------
    path: str or PathLike
        The corpus (``get_input.py --task pretrain`` writes ``pre/{k}.txt``; LF or CRLF).
    chunk_bytes: int
        Approximate characters of text per chunk. Default is 16 MiB.
    what: str
        What the file is, for error messages. Default is "corpus".

    Yields
    ------
    CorpusChunk
        ``lines`` and their 1-based ``line_numbers``, shape=(n,).

    Raises
    ------
    InputError
        Missing, unreadable, binary, non-UTF-8 or empty (no non-blank line) file.
    """
    path = Path(path)
    empty = True
    for first, block in _line_blocks(path, what, chunk_bytes):
        numbers, kept = [], 0
        for lineno, line in enumerate(block, first):  # strip in place: one copy of the text
            line = line.strip()
            if line:
                block[kept] = line
                kept += 1
                numbers.append(lineno)
        del block[kept:]
        if kept:
            empty = False
            yield CorpusChunk(block, np.asarray(numbers, dtype=np.int64))
    if empty:
        raise InputError(f"{path}: empty {what}")


def _fasta_record(path: Path, header: str, chunks: list[str], lineno: int, number: int,
                  limits: _Limits) -> FastaRecord:
    """Validate one record as :func:`read_fasta` does (``number`` is its 1-based position)."""
    rid = header.split()[0] if header.split() else f"#{number}"
    if not limits.size:
        raise InputError(f"{path}: record {rid} (line {lineno}): empty sequence")
    if limits.max_length is not None and limits.size > limits.max_length:
        raise RecordTooLong(path, rid, number, limits.size, limits.max_length)
    seq = "".join(chunks).upper()
    bad = set(seq) - FASTA_LETTERS
    if bad:
        letter = min(bad, key=seq.index)
        raise InputError(
            f"{path}: record {rid}: illegal letter {letter!r} at position {seq.index(letter) + 1}"
            " (allowed: A, C, G, T, U, N)"
        )
    if limits.sites is not None:
        site = header_site(header, path, rid)
        if site is not None:
            limits.sites[rid] = site
    if limits.coords is not None:
        where = header_coords(header, path, rid)
        if where is not None and where.blocks and sum(e - s for s, e in where.blocks) != len(seq):
            raise InputError(f"{path}: record {rid}: blocks= in its header cover "
                             f"{sum(e - s for s, e in where.blocks)} nt, its sequence has {len(seq)}")
        if where is not None:
            limits.coords[rid] = where
    if limits.labels is not None and (label := header_label(header, path, rid)) is not None:
        limits.labels[rid] = label
    return FastaRecord(rid, seq)


def iter_fasta_chunks(path: str | os.PathLike, chunk_records: int = 10_000, max_length: int | None = None,
                      sites: dict[str, int] | None = None, coords: dict | None = None) -> Iterator[list[FastaRecord]]:
    r"""Stream a FASTA file as lists of at most ``chunk_records`` records, in file order.

    The records and checks of :func:`read_fasta`, in bounded memory (pretraining FASTAs are large);
    lines end at ``\n`` only, as there. ``sites`` and ``coords`` as in :func:`read_fasta`.

    Parameters
    ----------
    max_length: int or None
        A record of more letters raises :class:`RecordTooLong` (its length counted, its letters
        not kept) before the chunk that holds it is yielded. Default is None (no limit).

    Raises
    ------
    InputError
        Missing, empty, binary or non-FASTA file; a record without sequence; an illegal letter;
        a record longer than ``max_length`` (:class:`RecordTooLong`).
    """
    path = Path(path)
    lines = ((lineno, line.removesuffix("\n").removesuffix("\r"))
             for first, block in _line_blocks(path, "FASTA file", CORPUS_CHUNK_BYTES, newline="\n")
             for lineno, line in enumerate(block, first))
    batch: list[FastaRecord] = []
    for record in _parse_fasta(path, lines, sites, max_length, coords):
        batch.append(record)
        if len(batch) >= chunk_records:
            yield batch
            batch = []
    if batch:
        yield batch
