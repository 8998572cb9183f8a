"""Sharded prediction files: the shard record, tables spooled to disk while a FASTA streams, merging.

A shard of ``run_predict_degradation.py --predict_fasta F --shard I --num_shards N`` writes, with
its prediction files, :data:`SHARD_RECORD` (``shard.json``): which shard of which FASTA it is, the
records it predicted (a contiguous block of input order) and the table row of each variant effect
it wrote. :func:`read_shard_record` reads it back for the merge, which joins the shards' files in
input order (:func:`concat_tables`, :func:`sorted_table`). A shard of ``visualize_all.py --shard I
--num_shards N`` records its shard in the ``.npy.json`` beside each score array instead
(:func:`read_score_shards`).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ..utils import InputError
from .files import _fmt, make_dirs, read_json, read_text_file, temp_prefix

SHARD_RECORD = "shard.json"


def table_lines(columns: dict[str, Sequence]) -> list[str]:
    """The rows of a table of equal-length columns, formatted as :func:`~m6abert.io.write_predictions_tsv`
    writes them (no header, no line ends)."""
    names = list(columns)
    return ["\t".join(_fmt(columns[c][i]) for c in names) for i in range(len(columns[names[0]]))]


class Spool:
    """A text file that grows while a run streams, under a temporary name of this toolkit in ``folder``.

    Lines are appended with :meth:`write`; :meth:`move_to` renames the finished file to its final
    (staging) path. Leaving the ``with`` block removes a spool that was not moved (an error part-way).
    """

    def __init__(self, folder: str | os.PathLike, name: str, header: str):
        self.folder, self.name, self.header = Path(folder), name, header
        self.path: Path | None = None
        self._fh = None

    def __enter__(self) -> Spool:
        make_dirs(self.folder)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(self.name), suffix=".tmp", dir=self.folder)
        self.path = Path(tmp)
        self._fh = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        self._fh.write(self.header + "\n")
        return self

    def write(self, lines: Iterable[str]) -> None:
        for line in lines:
            self._fh.write(line + "\n")

    def move_to(self, path: str | os.PathLike) -> None:
        """Close the spool and rename it to ``path`` (a writer of :func:`~m6abert.io.write_output_set`)."""
        self._fh.close()
        os.replace(self.path, path)
        self.path = None

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(OSError):
            self._fh.close()
            if self.path is not None:
                self.path.unlink(missing_ok=True)


def read_shard_record(folder: str | os.PathLike) -> dict:
    """The ``shard.json`` of a shard's output folder; a missing or malformed one is an ``InputError``."""
    path = Path(folder) / SHARD_RECORD
    if not path.exists():
        raise InputError(f"{folder}: no {SHARD_RECORD}; not the output of run_predict_degradation.py --shard "
                         "(nor of visualize_all.py --shard)")
    try:
        record = json.loads(read_text_file(path, "shard record"))
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: shard record is not valid JSON ({err})") from None
    keys = ("shard", "num_shards", "fasta", "n_records", "records", "chunk_records", "variants")
    if not isinstance(record, dict) or any(key not in record for key in keys):
        raise InputError(f"{path}: not a shard record (needs {', '.join(keys)})")
    return record


SCORE_SHARD_KEYS = ("shard", "num_shards", "rows", "n_rows", "arrays", "tables")


def read_score_shards(folder: str | os.PathLike) -> dict[str, dict]:
    """The ``*.npy.json`` records of a ``visualize_all.py --shard`` output folder that carry a ``shard``
    entry, by file name (none: not such a folder); a malformed one is an ``InputError``."""
    out = {}
    for path in sorted(Path(folder).glob("*.npy.json")):
        record = read_json(path, "score record")
        shard = record.get("shard")
        if shard is None:
            continue
        if not isinstance(shard, dict) or any(key not in shard for key in SCORE_SHARD_KEYS):
            raise InputError(f"{path}: not a shard record (its shard needs {', '.join(SCORE_SHARD_KEYS)})")
        out[path.name] = record
    return out


def _table_body(path: Path) -> Iterator[tuple[str, str]]:
    """(header, line) for every data line of a TSV written by this toolkit, streamed."""
    try:
        fh = open(path, encoding="utf-8", newline="\n")
    except FileNotFoundError:
        raise InputError(f"{path}: missing; the shard is incomplete") from None
    with fh:
        header = fh.readline()
        for line in fh:
            yield header, line


def concat_tables(paths: Sequence[Path], dest: Path) -> None:
    """Write the tables ``paths`` (equal headers) one after the other into ``dest``, one header, streamed."""
    header = None
    with open(dest, "w", encoding="utf-8", newline="\n") as out:
        for path in paths:
            first = True
            for head, line in _table_body(path):
                if header is None:
                    header = head
                    out.write(head)
                elif first and head != header:
                    raise InputError(f"{path}: columns differ from {paths[0]}'s")
                first = False
                out.write(line)
            if header is None:  # a table without rows still has its header
                with open(path, encoding="utf-8", newline="\n") as fh:
                    header = fh.readline()
                out.write(header)


def sorted_table(parts: Sequence[tuple[Path, Sequence[int]]], dest: Path) -> None:
    """Merge tables whose rows carry their place in the full table (``parts``: (path, row indices)),
    into ``dest`` in row order."""
    rows: list[tuple[int, str]] = []
    header = ""
    for path, indices in parts:
        body = list(_table_body(path))
        if len(body) != len(indices):
            raise InputError(f"{path}: {len(body)} rows, but its {SHARD_RECORD} lists {len(indices)}")
        header = body[0][0] if body else header or _header(path)
        rows.extend(zip(indices, (line for _, line in body), strict=True))
    rows.sort()
    with open(dest, "w", encoding="utf-8", newline="\n") as out:
        out.write(header)
        out.writelines(line for _, line in rows)


def _header(path: Path) -> str:
    with open(path, encoding="utf-8", newline="\n") as fh:
        return fh.readline()
