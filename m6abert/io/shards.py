"""Sharded prediction files: the shard record, tables spooled to disk while a FASTA streams, merging.

A shard of ``run_predict_degradation.py --predict_fasta F --shard I --num_shards N`` writes, with
its prediction files, :data:`SHARD_RECORD` (``shard.json``): which shard of which FASTA it is, the
records it predicted (a contiguous block of input order) and the table row of each variant effect
it wrote. :func:`read_shard_record` reads it back for the merge, which joins the shards' files in
input order (:func:`concat_tables`, :func:`sorted_table`). A shard of ``visualize_all.py --shard I
--num_shards N`` records its shard in the ``.npy.json`` beside each score array instead
(:func:`read_score_shards`).

Shards of one run must not be mixed with another run's: every record holds what determines the
shard's results (the model's identity, the SHA-256 of the data, the flags of the forward passes),
and the merge refuses shards that differ in any of it (:func:`check_same_run`), tables whose rows do
not match their record (:func:`check_shard_tables`), an output folder inside a shard and a shard
that a live run holds (:func:`check_merge_dirs`). A record of an older version, which lacks those
fields, or one whose fields have wrong types (a hand edit) is refused with one line.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from ..utils import InputError
from .files import _fmt, current_umask, make_dirs, read_json, read_text_file, temp_prefix, write_error

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
        try:
            fd, tmp = tempfile.mkstemp(prefix=temp_prefix(self.name), suffix=".tmp", dir=self.folder)
        except OSError as err:
            raise write_error(self.folder / self.name, err) from None
        self.path = Path(tmp)
        self._fh = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        self.write([self.header])
        return self

    def write(self, lines: Iterable[str]) -> None:
        """Append ``lines``; a failed write (a full disk) is an ``InputError`` naming the final file."""
        try:
            for line in lines:
                self._fh.write(line + "\n")
        except OSError as err:
            raise write_error(self.folder / self.name, err) from None

    def move_to(self, path: str | os.PathLike) -> None:
        """Close the spool and rename it to ``path`` (a writer of :func:`~m6abert.io.write_output_set`),
        with the permissions the umask gives a new file (``mkstemp`` made it private)."""
        try:
            self._fh.close()
            os.chmod(self.path, 0o666 & ~current_umask())
        except OSError as err:
            raise write_error(self.folder / self.name, err) from None
        os.replace(self.path, path)
        self.path = None

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(OSError):  # a full disk fails the last flush too
            self._fh.close()
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------- the shard records
def _is_int(v: object, low: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _is_block(v: object) -> bool:
    return isinstance(v, list) and len(v) == 2 and all(_is_int(x) for x in v) and v[0] <= v[1]


def _is_names(v: object, suffix: str) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) and x.endswith(suffix) and Path(x).name == x
                                       and not x.startswith(".") for x in v)


def _is_sha(v: object) -> bool:
    return isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v)


# field -> (what it must be, check); the first group is what every version wrote
SHARD_FIELDS: dict[str, tuple[str, object]] = {
    "shard": ("an integer >= 0", _is_int),
    "num_shards": ("an integer >= 1", lambda v: _is_int(v, 1)),
    "fasta": ("a path", lambda v: isinstance(v, str)),
    "n_records": ("an integer >= 0", _is_int),
    "records": ("[first, stop], two integers, first <= stop", _is_block),
    "chunk_records": ("an integer >= 1", lambda v: _is_int(v, 1)),
    "variants": ("a path or null", lambda v: v is None or isinstance(v, str)),
}
# written since shards record what determines their results (an older shard.json lacks them)
SHARD_FIELDS_V2: dict[str, tuple[str, object]] = {
    "variant_rows": ("a list of integers >= 0", lambda v: isinstance(v, list) and all(_is_int(x) for x in v)),
    "fasta_sha256": ("a SHA-256 (64 hex digits)", _is_sha),
    "variants_sha256": ("a SHA-256 (64 hex digits) or null", lambda v: v is None or _is_sha(v)),
    "model_identity": ("a SHA-256 (64 hex digits)", _is_sha),
    "max_seq_length": ("an integer >= 1", lambda v: _is_int(v, 1)),
    "precision": ("fp32, bf16 or fp16", lambda v: v in ("fp32", "bf16", "fp16")),
    "dnabert_compat": ("true or false", lambda v: isinstance(v, bool)),
    "pos_relative_to_site": ("true or false", lambda v: isinstance(v, bool)),
    "batch_size": ("an integer >= 1", lambda v: _is_int(v, 1)),
}
# what a shard of one run must share with every other (in the order they are compared) -> its name
PREDICTION_RUN_KEYS = {
    "model_identity": "the model (SHA-256 of config.json and weights)",
    "fasta_sha256": "the FASTA's content (SHA-256)",
    "variants_sha256": "the --variants table's content (SHA-256)",
    "max_seq_length": "--max_seq_length",
    "precision": "the precision (--bf16, --fp16)",
    "dnabert_compat": "--dnabert_compat",
    "pos_relative_to_site": "--pos_relative_to_site",
    "batch_size": "--per_gpu_pred_batch_size",
    "chunk_records": "--chunk_records",
    "num_shards": "--num_shards",
    "n_records": "the FASTA's number of records",
}
SCORE_SHARD_FIELDS: dict[str, tuple[str, object]] = {
    "shard": SHARD_FIELDS["shard"],
    "num_shards": SHARD_FIELDS["num_shards"],
    "rows": ("[first, stop], two integers, first <= stop", _is_block),
    "n_rows": ("an integer >= 0", _is_int),
    "arrays": ("a list of .npy file names", lambda v: _is_names(v, ".npy")),
    "tables": ("a list of .tsv file names", lambda v: _is_names(v, ".tsv")),
}
SCORE_SHARD_KEYS = tuple(SCORE_SHARD_FIELDS)
# the score record's fields that name what determines the scores, compared first -> their names
SCORE_RUN_KEYS = {
    "model_identity": "the model (SHA-256 of config.json and weights)",
    "sources": "the scored TSVs' content (SHA-256)",
    "m6abert_version": "the m6abert version",
    "max_seq_length": "--max_seq_length",
    "precision": "the precision (--bf16, --fp16)",
    "dnabert_compat": "--dnabert_compat",
    "batch_size": "--batch_size",
    "ism_batch_size": "--ism_batch_size",
    "num_shards": "--num_shards",
}
NOT_COMPARED = ("shard", "rows", "model_path")  # a shard's own block, and a path (the model's identity is compared)


def _check_fields(record: dict, fields: dict, path: Path, what: str) -> None:
    for key, (must, ok) in fields.items():
        if not ok(record[key]):
            shown = json.dumps(record[key])
            raise InputError(f"{path}: {what} field {key!r} must be {must}, not "
                             f"{shown if len(shown) <= 60 else shown[:57] + '...'}")


def _older(path: Path, record: dict, keys: Iterable[str], how: str) -> None:
    missing = [key for key in keys if key not in record]
    if missing:
        raise InputError(f"{path}: written by an older version of m6abert (no {', '.join(missing[:3])}"
                         f"{', ...' if len(missing) > 3 else ''}), which did not record what its results depend on; "
                         f"re-run {how} with this version")


def read_shard_record(folder: str | os.PathLike) -> dict:
    """The ``shard.json`` of a shard's output folder, with every field of the right type.

    A missing or malformed record, a field of a wrong type (a hand edit) or a record of an older
    version (without the fields that say what determined the shard's results) is an ``InputError``.
    """
    path = Path(folder) / SHARD_RECORD
    if not path.exists():
        raise InputError(f"{folder}: no {SHARD_RECORD}; not the output of run_predict_degradation.py --shard "
                         "(nor of visualize_all.py --shard)")
    try:
        record = json.loads(read_text_file(path, "shard record"))
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: shard record is not valid JSON ({err})") from None
    if not isinstance(record, dict) or any(key not in record for key in SHARD_FIELDS):
        raise InputError(f"{path}: not a shard record (needs {', '.join(SHARD_FIELDS)})")
    _check_fields(record, SHARD_FIELDS, path, "shard record")
    _older(path, record, SHARD_FIELDS_V2, "the shard")
    _check_fields(record, SHARD_FIELDS_V2, path, "shard record")
    if record["shard"] >= record["num_shards"] or record["records"][1] > record["n_records"]:
        raise InputError(f"{path}: shard {record['shard']} of {record['num_shards']} holding records "
                         f"{record['records']} of {record['n_records']} is impossible; not a record this toolkit wrote")
    return record


def read_score_shards(folder: str | os.PathLike) -> dict[str, dict]:
    """The ``*.npy.json`` records of a ``visualize_all.py --shard`` output folder that carry a ``shard``
    entry, by file name (none: not such a folder); a malformed or older one is an ``InputError``."""
    out = {}
    for path in sorted(Path(folder).glob("*.npy.json")):
        record = read_json(path, "score record")
        shard = record.get("shard")
        if shard is None:
            continue
        if not isinstance(shard, dict) or any(key not in shard for key in SCORE_SHARD_KEYS):
            raise InputError(f"{path}: not a shard record (its shard needs {', '.join(SCORE_SHARD_KEYS)})")
        _check_fields(shard, SCORE_SHARD_FIELDS, path, "shard")
        _older(path, record, ("model_identity",), "the shard")
        out[path.name] = record
    return out


def score_run_key(record: dict) -> dict:
    """What every shard of one ``visualize_all.py`` run shares: its score record but for the shard's own
    block and the model's path (its identity is compared), with the shard count and the files joined."""
    key = {k: v for k, v in record.items() if k not in NOT_COMPARED}
    return key | {k: record["shard"][k] for k in ("num_shards", "n_rows", "arrays", "tables")}


def _shown(v: object) -> str:
    return f"{v[:12]}..." if _is_sha(v) else json.dumps(v)


def check_same_run(names: Sequence[str | os.PathLike], keys: Sequence[dict], labels: dict[str, str]) -> None:
    """Refuse the first shard whose ``keys`` (what determines its results) differ from the first shard's,
    naming both shards and the field (``labels``: the fields compared first, by name; then any other)."""
    first = keys[0]
    for name, key in zip(names[1:], keys[1:], strict=True):
        order = [*labels, *(k for k in first if k not in labels), *(k for k in key if k not in first)]
        for field in order:
            if key.get(field) != first.get(field):
                raise InputError(f"{name}: a shard of another run than {names[0]}: {labels.get(field, field)} differs "
                                 f"({_shown(key.get(field))} here, {_shown(first.get(field))} there); "
                                 "re-run the shards that differ with the same model, data and flags")


def check_prediction_shards(dirs: Sequence[Path], records: Sequence[dict]) -> None:
    """Refuse prediction shards of different runs (any of :data:`PREDICTION_RUN_KEYS` differs) and
    variant rows claimed by two shards."""
    check_same_run(dirs, [{k: r[k] for k in PREDICTION_RUN_KEYS} for r in records], PREDICTION_RUN_KEYS)
    owner: dict[int, Path] = {}
    for d, r in zip(dirs, records, strict=True):
        for row in r["variant_rows"]:
            if owner.setdefault(row, d) != d:
                raise InputError(f"{d}: variant row {row} is also in {owner[row]}; the shards overlap: re-run them")


def check_merge_dirs(shard_dirs: Sequence[str | os.PathLike], output_dir: str | os.PathLike) -> None:
    """Refuse, before anything is touched, an output folder that is (or is inside) a shard folder (the
    merge would replace the shard's files) and a shard folder that a live run holds."""
    from .rundir import check_unlocked

    out = Path(os.path.abspath(output_dir)).resolve()
    for d in shard_dirs:
        shard = Path(os.path.abspath(d)).resolve()
        if out == shard or shard in out.parents:
            where = "is" if out == shard else "is inside"
            raise InputError(f"{output_dir}: --output_dir {where} the shard folder {d}; the merged files must not go "
                             "into a shard's folder (they would replace its files): give another --output_dir")
    for d in shard_dirs:
        check_unlocked(d)


def check_shard_tables(parts: Sequence[tuple[Path, int]], unique_ids: bool = True) -> None:
    """Count each shard table's data rows against the rows its shard record holds (``parts``: (path,
    rows)) and, with ``unique_ids``, refuse an id (first column) held twice: a table cut short, or
    replaced by another shard's. Streamed; 8 bytes of memory per row (ids compared by a 64-bit hash,
    then exactly)."""
    hashes = []
    for path, expected in parts:
        h = np.fromiter(_id_hashes(path), dtype=np.int64)
        if len(h) != expected:
            raise InputError(f"{path}: {len(h)} rows, but its shard holds {expected}; the file was cut short or "
                             "replaced: re-run the shard")
        hashes.append(h)
    if not unique_ids or not hashes:
        return
    ordered = np.sort(np.concatenate(hashes))
    clash = set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())
    seen: dict[str, Path] = {}
    for path, _ in parts if clash else ():
        for _, line in _table_body(path):
            name = _first_field(line)
            if hash(name) not in clash:
                continue
            if name in seen:
                where = "twice" if seen[name] == path else f"also in {seen[name]}"
                raise InputError(f"{path}: id {name} is {where}; a shard's table was replaced by another's "
                                 "or edited: re-run the shard")
            seen[name] = path


def _id_hashes(path: Path) -> Iterator[int]:
    """The hash of each data row's id (first field), every row checked to be whole (all its fields and
    its line end: a file cut in its last line has as many lines as a whole one)."""
    for n, (header, line) in enumerate(_table_body(path), 1):
        if not line.endswith("\n") or line.count("\t") != header.count("\t"):
            raise InputError(f"{path}: row {n} is incomplete; the file was cut short: re-run the shard")
        yield hash(_first_field(line))


def _first_field(line: str) -> str:
    return line.rstrip("\r\n").split("\t", 1)[0]


def _table_body(path: Path) -> Iterator[tuple[str, str]]:
    """(header, line) for every data line of a TSV written by this toolkit, streamed."""
    try:
        fh = open(path, encoding="utf-8", newline="\n")
    except FileNotFoundError:
        raise InputError(f"{path}: missing; the shard is incomplete") from None
    rows = 0
    with fh:
        try:
            header = fh.readline()
            for line in fh:
                yield header, line
                rows += 1
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text after row {rows}; not a table this toolkit wrote: re-run the "
                             "shard") from None


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
                header = _header(path)
                out.write(header)


def table_bed_rows(paths: Sequence[Path], probs: np.ndarray) -> tuple[list[tuple], int]:
    """The BED6 rows (:func:`~m6abert.io.results.bed_rows`) of prediction tables read one after the other
    (their ``id``, ``chrom``, ``pos``, ``strand`` columns, streamed), row ``i`` scored by ``probs[i]``; and
    how many rows had no coordinates."""
    from .results import bed_score

    rows, n, without = [], 0, 0
    for path in paths:
        for header, line in _table_body(path):
            row = dict(zip(header.rstrip("\r\n").split("\t"), line.rstrip("\r\n").split("\t"), strict=True))
            if n >= len(probs):
                raise InputError(f"{path}: more rows than pred_results.npy's {len(probs)}")
            if row.get("chrom"):
                pos = int(row["pos"])
                rows.append((row["chrom"], pos - 1, pos, row["id"], bed_score(probs[n]), row["strand"]))
            else:
                without += 1
            n += 1
    return rows, without


def table_columns(path: Path) -> list[str]:
    """The column names of a table (its header line)."""
    return _header(path).rstrip("\r\n").split("\t")


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
    """The first line of a table (its header)."""
    try:
        with open(path, encoding="utf-8", newline="\n") as fh:
            return fh.readline()
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text in its header; not a table this toolkit wrote: re-run the "
                         "shard") from None
