"""``merge_shards.py`` from files to files: the shards of a streamed FASTA prediction
(``run_predict_degradation.py --shard``) or of ``visualize_all.py --shard`` joined in order into files
equal to an unsharded run's; everything checked (same run, every row once) before anything is written."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import io
from ..io.shards import (
    SCORE_RUN_KEYS,
    check_merge_dirs,
    check_prediction_shards,
    check_same_run,
    check_shard_tables,
    read_score_shards,
    score_run_key,
)
from ..preempt import held_run_dir
from ..utils import InputError
from ..variants import VARIANT_OUTPUT
from .predict_fasta import PREDICTION_FILES, bed_writer
from .visualize import track_writer

MERGE_RECORD = "merge_args.json"


def _check_shards(dirs: Sequence[Path], records: list[dict]) -> list[tuple[Path, dict]]:
    """The shards in order, checked to be every shard of one run (the same model, data and flags), exactly
    once, covering the FASTA."""
    check_prediction_shards(dirs, records)
    return _in_order(dirs, records, "records", "n_records")


def _in_order(dirs: Sequence[Path], records: list[dict], rows: str, total: str) -> list[tuple[Path, dict]]:
    """The shards sorted by number, checked to be every shard once, their blocks ``rows`` covering ``total``."""
    n = records[0]["num_shards"]
    shards = sorted(zip(dirs, records, strict=True), key=lambda x: x[1]["shard"])
    numbers = [r["shard"] for _, r in shards]
    if numbers != list(range(n)):
        missing = sorted(set(range(n)) - set(numbers))
        twice = sorted({i for i in numbers if numbers.count(i) > 1})
        raise InputError(f"{len(dirs)} shard folders for --num_shards {n}: "
                         + (f"shard(s) {twice} given twice" if twice else f"missing shard(s) {missing}"))
    stop = 0
    for d, r in shards:
        if r[rows][0] != stop:
            raise InputError(f"{d}: {rows} {r[rows]} do not follow the previous shard's (up to {stop})")
        stop = r[rows][1]
    if stop != records[0][total]:
        raise InputError(f"the shards cover {stop} of the {records[0][total]} {rows}")
    return shards


def merge(shard_dirs: Sequence[str | os.PathLike], output_dir: str | os.PathLike) -> dict:
    """merge_shards.py: the folders checked (none is ``output_dir`` or inside it) before the output folder is
    held, then :func:`merge_shards`."""
    check_merge_dirs(shard_dirs, output_dir)  # before the lock touches --output_dir (a shard's, maybe)
    with held_run_dir(output_dir):
        return merge_shards(shard_dirs, output_dir)


def merge_shards(shard_dirs: Sequence[str | os.PathLike], output_dir: str | os.PathLike) -> dict:
    """Join the outputs of every shard of a sharded prediction into ``output_dir``, in input order.

    ``pred_results.npy`` and ``predictions.tsv`` are concatenated in shard order,
    ``variant_effects.tsv`` rows are put back in variants-table order and, when the tables carry genome
    coordinates, ``predictions.bed`` is written from the joined rows (shards write none): the files
    equal an unsharded run's byte for byte. ``merge_args.json`` names the shards. Everything is checked first (every
    shard of one run, exactly once, complete); then the files are written as one set.
    """
    dirs = [Path(d) for d in shard_dirs]
    if not dirs:
        raise InputError("no shard folders given")
    check_merge_dirs(dirs, output_dir)
    if not any((d / io.SHARD_RECORD).exists() for d in dirs) and any(read_score_shards(d) for d in dirs):
        return merge_score_shards(dirs, output_dir)
    shards = _check_shards(dirs, [io.read_shard_record(d) for d in dirs])
    arrays = []
    for d, r in shards:
        a = io.load_npy(d / "pred_results.npy")
        if a.shape != (r["records"][1] - r["records"][0],):
            raise InputError(f"{d / 'pred_results.npy'}: shape {a.shape}, but the shard holds records {r['records']}")
        arrays.append(a)
    probs = np.concatenate(arrays)
    first = shards[0][1]
    check_shard_tables([(d / "predictions.tsv", r["records"][1] - r["records"][0]) for d, r in shards])
    if first["variants"] is not None:
        check_shard_tables([(d / VARIANT_OUTPUT, len(r["variant_rows"])) for d, r in shards], unique_ids=False)
    files: dict[str, io.Writer] = {
        "pred_results.npy": lambda p: io.save_npy(p, probs),
        "predictions.tsv": lambda p: io.concat_tables([d / "predictions.tsv" for d, _ in shards], p),
        MERGE_RECORD: lambda p: io.write_json(p, {"fasta": first["fasta"], "n_records": first["n_records"],
                                                  "shards": [str(d) for d, _ in shards]}),
    }
    if first["variants"] is not None:
        files[VARIANT_OUTPUT] = lambda p: io.sorted_table([(d / VARIANT_OUTPUT, r["variant_rows"]) for d, r in shards], p)
    if "chrom" in io.table_columns(shards[0][0] / "predictions.tsv"):
        files[io.PREDICTION_BED] = bed_writer(io.table_bed_rows([d / "predictions.tsv" for d, _ in shards], probs))
    io.write_output_set(output_dir, files, (*PREDICTION_FILES, MERGE_RECORD), what="merged predictions")
    print(f"{len(shards)} shards, {len(probs)} predictions merged into {output_dir}")
    return {"n_shards": len(shards), "n_records": int(len(probs))}


def merge_score_shards(shard_dirs: Sequence[str | os.PathLike], output_dir: str | os.PathLike) -> dict:
    """Join the shards of ``visualize_all.py --shard I --num_shards N`` into ``output_dir``, in row order.

    Every ``*.npy.json`` with a ``shard`` entry names its arrays (concatenated along the rows) and
    tables (``attributions_*_qc.tsv``, the ids tables ``*.ids.tsv``, one after the other); the merged
    files equal an unsharded run's, and each ``.npy.json`` is the unsharded one (no ``shard``, all ``rows``). Figures are not
    merged (each shard drew its own rows'; ``--no_plot`` in the shards skips them).
    ``merge_args.json`` names the shards. Everything is checked before anything is written.
    """
    dirs = [Path(d) for d in shard_dirs]
    found = [read_score_shards(d) for d in dirs]
    names = sorted(set().union(*found))
    for d, records in zip(dirs, found, strict=True):
        missing = [n for n in names if n not in records]
        if missing:
            raise InputError(f"{d}: no sharded {missing[0]} (not a shard of visualize_all.py --shard, or of "
                             "another task than the other folders)")
    files: dict[str, io.Writer] = {}
    for name in names:
        files.update(_score_writers(name, dirs, [records[name] for records in found]))
    first = found[0][names[0]]["shard"]
    files[MERGE_RECORD] = lambda p: io.write_json(p, {"n_rows": first["n_rows"], "shards": [str(d) for d in dirs]})
    io.write_output_set(output_dir, files, [*files], what="merged scores")
    print(f"{first['num_shards']} shards, scores of {first['n_rows']} rows merged into {output_dir}")
    return {"n_shards": first["num_shards"], "n_rows": first["n_rows"], "files": sorted(files)}


def _score_writers(name: str, dirs: Sequence[Path], metas: list[dict]) -> dict[str, io.Writer]:
    """The merged arrays, tables and ``.npy.json`` of one sharded score record ``name``, checked."""
    check_same_run([d / name for d in dirs], [score_run_key(m) for m in metas], SCORE_RUN_KEYS)
    shards = _in_order(dirs, [m["shard"] for m in metas], "rows", "n_rows")
    spec = metas[0]["shard"]
    for t in spec["tables"]:  # rows counted; a QC table's row numbers restart per split under --data_name all
        check_shard_tables([(d / t, r["rows"][1] - r["rows"][0]) for d, r in shards], unique_ids=False)
    merged = {a: _joined_array(a, shards) for a in spec["arrays"]}
    meta = {k: v for k, v in metas[0].items() if k != "shard"} | {"rows": spec["n_rows"]}
    files: dict[str, io.Writer] = {a: (lambda p, x=x: io.save_npy(p, x)) for a, x in merged.items()}
    files.update({t: (lambda p, t=t: io.concat_tables([d / t for d, _ in shards], p)) for t in spec["tables"]})
    track, ids = meta.get("bedgraph"), f"{name.removesuffix('.npy.json')}.ids.tsv"
    if track is not None and track["values"] in merged and ids in spec["tables"]:  # the shards wrote none
        files[track["file"]] = track_writer(track, merged[track["values"]], io.read_ids_tables([d / ids for d, _ in shards]))
    files[name] = lambda p: io.write_json(p, meta)
    return files


def _joined_array(name: str, shards: list[tuple[Path, dict]]) -> np.ndarray:
    """The shards' arrays ``name`` one after the other along the rows (each checked against its block)."""
    parts = []
    for d, r in shards:
        a = io.load_npy(d / name)
        if len(a) != r["rows"][1] - r["rows"][0] or (parts and a.shape[1:] != parts[0].shape[1:]):
            raise InputError(f"{d / name}: shape {a.shape} does not fit the shard's rows {r['rows']} and the "
                             "other shards' arrays")
        parts.append(a)
    return np.concatenate(parts)
