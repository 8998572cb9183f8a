"""Streamed and sharded prediction of a FASTA file (with variant effects); the shards are joined by
:mod:`m6abert.commands.merge`.

``run_predict_degradation.py --predict_fasta F`` reads the FASTA in chunks of ``chunk_records``
records (:func:`predict_fasta_files`): each chunk is k-merised, predicted and appended to the
outputs, so memory holds one chunk, not the file. A first, streamed pass (:func:`survey_fasta`)
checks every record (letters, duplicate ids, k and length) and the variants against their records
before the first prediction, so bad input still ends before any work with one line.

Shards (``--shard I --num_shards N``) are **contiguous blocks of input order**, cut in whole chunks
(:func:`~m6abert.utils.shard_range`): the file is counted cheaply by the survey, and a shard computes exactly the
batches an unsharded run computes for its records, so :func:`~m6abert.commands.merge.merge_shards`, which concatenates the
shards in order, gives files byte-identical to an unsharded run's (with the same
``chunk_records``). With fewer chunks than shards, the last shards are empty (their files have
no rows). ``shard_range`` also serves any other command that splits N items into shards:
``visualize_all.py --shard I --num_shards N`` scores a block of its TSV rows, and the merge joins
those shards' score arrays and tables too (:func:`~m6abert.commands.merge.merge_score_shards`).

When the FASTA's headers carry genome coordinates (``chrom:pos:strand``, ``transcript=``;
:mod:`m6abert.io.coords`), ``predictions.tsv`` has ``chrom``, ``pos``, ``strand`` and ``transcript``
after ``id`` (empty for a record without them), and an unsharded run writes ``predictions.bed``
(BED6: the site, its id and round(P(degraded) x 1000), sorted by chrom and start); a shard writes no
BED: the merge writes it from the joined tables, equal to an unsharded run's.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np
import torch

from .. import io
from ..constants import MAX_POSITIONS
from ..data import dataset_from_seqs
from ..inference import (
    PREDICTION_OUTPUTS,
    autocast,
    check_finite,
    load_classifier,
    predict,
    prediction_columns,
)
from ..io import sequences as io_sequences
from ..io.checkpoints import model_identity
from ..memory import release_free_memory
from ..utils import InputError, check_shard, log, shard_range
from ..variants import EFFECT_COLUMNS, VARIANT_OUTPUT, check_variants, chunk_effects

CHUNK_RECORDS = 4096  # records per streamed chunk: the unit of streaming and of shards


PREDICTION_FILES = (*PREDICTION_OUTPUTS, io.PREDICTION_BED)  # what a prediction run owns


def with_record_columns(columns: dict, key: str, ids: list[str] | None, coords: list,
                        with_coords: bool | None = None) -> dict:
    """``columns`` with ``id`` (when ``ids`` are given) and the coordinate columns
    (:data:`m6abert.io.COORD_COLUMNS`; ``with_coords`` None: when some record has them) inserted after ``key``."""
    extra = {"id": ids} if ids is not None else {}
    if with_coords or (with_coords is None and any(c is not None for c in coords)):
        extra.update(io.coord_columns(coords))
    out = {}
    for name, values in columns.items():
        out[name] = values
        if name == key:
            out.update(extra)
    return out


def bed_writer(bed: tuple[list, int]) -> io.Writer:
    """The writer of ``predictions.bed`` (``bed``: its rows and how many records had no coordinates, logged)."""
    rows, without = bed
    if without:
        log.info("%s: %d records without coordinates left out (their headers name no chrom:pos:strand)",
                 io.PREDICTION_BED, without)
    return lambda p: io.write_bed(p, rows)


class Survey(NamedTuple):
    """What the checking pass over a FASTA found: its size and the records the variants name."""

    n_records: int
    wanted: dict[str, tuple[int, io.FastaRecord]]  # id -> (0-based record number, record)
    declared: dict[str, int] | None = None  # id -> site=N of its header, for the records wanted
    n_coords: int = 0  # records whose headers carry genome coordinates


def survey_fasta(fasta: str | os.PathLike, k: int, max_seq_length: int, wanted: set[str] | frozenset = frozenset(),
                 chunk_records: int = CHUNK_RECORDS) -> Survey:
    """Stream ``fasta`` once and check every record as the prediction will read it.

    Letters and empty records (the FASTA parser), record ids unique (compared by a 64-bit hash,
    then exactly), at least ``k`` nt and at most ``max_seq_length`` tokens with [CLS]/[SEP] (a
    longer record is refused from its length, never held whole). Memory: 8 bytes per record, plus
    the records named in ``wanted`` and their headers' ``site=N``.
    """
    hashes, found, declared, n, n_coords = [], {}, {}, 0, 0
    headers: dict[str, int] = {}  # the site=N of the chunk being read
    coords: dict = {}  # the coordinates of the chunk being read (counted)
    try:
        for chunk in io_sequences.iter_fasta_chunks(fasta, chunk_records, max_seq_length + k - 3, headers, coords):
            hashes.append(np.fromiter((hash(r.id) for r in chunk), dtype=np.int64, count=len(chunk)))
            for i, r in enumerate(chunk, n):
                if len(r.seq) < k:
                    dataset_from_seqs([r.seq], k, None, max_seq_length, [r.id], str(fasta))  # raises its message
                if r.id in wanted:
                    found.setdefault(r.id, (i, r))
            declared.update((rid, site) for rid, site in headers.items() if rid in wanted)
            n_coords += len(coords)
            headers.clear()
            coords.clear()
            n += len(chunk)
    except io_sequences.RecordTooLong as err:
        raise InputError(f"{fasta}: row {err.number}: {err.length - k + 3} tokens with [CLS]/[SEP] exceed "
                         f"--max_seq_length {max_seq_length}") from None
    ids = np.concatenate(hashes) if hashes else np.zeros(0, np.int64)
    ordered = np.sort(ids)
    clash = ordered[1:][ordered[1:] == ordered[:-1]]
    if len(clash):
        _exact_duplicates(fasta, set(clash.tolist()), chunk_records)
    return Survey(n, found, declared, n_coords)


def _exact_duplicates(fasta: str | os.PathLike, clashing: set[int], chunk_records: int) -> None:
    """Raise for the first duplicate id among the records whose id hash clashes (none: a hash collision)."""
    by_id: dict[str, int] = {}
    number = 0
    for chunk in io.iter_fasta_chunks(fasta, chunk_records):
        for r in chunk:
            number += 1
            if hash(r.id) not in clashing:
                continue
            if r.id in by_id:
                raise InputError(f"{fasta}: duplicate record id {r.id} (records {by_id[r.id]} and {number}); "
                                 "record ids must be unique")
            by_id[r.id] = number


class _Run(NamedTuple):
    """What every chunk of a streamed prediction needs."""

    model: torch.nn.Module
    k: int
    fasta: str
    variants: str | None
    max_seq_length: int
    batch_size: int
    dnabert_compat: bool
    device: str | torch.device
    relative: bool
    model_dir: str = "the model"  # named in the error when the model gives non-finite outputs
    declared: dict[str, int] | None = None  # the site=N headers of the records the variants name
    per_batch: int = CHUNK_RECORDS  # variants scored at a time
    with_coords: bool = False  # predictions.tsv has the coordinate columns (some header carries them)


def _predict_chunk(run: _Run, records: list[io.FastaRecord], table: list[tuple[int, io.Variant]]):
    """Logits of one chunk's records and the effect rows of the variants in them (``run.per_batch`` at a time)."""
    data = dataset_from_seqs([r.seq for r in records], run.k, None, run.max_seq_length, [r.id for r in records],
                             run.fasta)
    logits = _logits(run, data)
    if not table:
        return data, logits, []

    def score(seqs: list[str], names: list[str]) -> np.ndarray:
        return _logits(run, dataset_from_seqs(seqs, run.k, None, run.max_seq_length, names, run.variants))

    return data, logits, chunk_effects(score, records, logits, table, run.relative, run.variants, run.fasta,
                                       run.declared, run.per_batch)


def _logits(run: _Run, data) -> np.ndarray:
    logits = predict(run.model, data.dataset, run.max_seq_length, run.dnabert_compat, run.batch_size, run.device)
    check_finite(logits, run.model_dir, data.names)
    return logits


def _variant_table(variants: str | os.PathLike | None) -> list[io.Variant]:
    return io.read_variants(variants) if variants is not None else []


def _by_chunk(table: list[io.Variant], survey: Survey, chunk_records: int) -> dict[int, list[tuple[int, io.Variant]]]:
    """The variants (with their table row) of each chunk of records."""
    out: dict[int, list[tuple[int, io.Variant]]] = {}
    for row, v in enumerate(table):
        out.setdefault(survey.wanted[v.id][0] // chunk_records, []).append((row, v))
    return out


def predict_fasta_files(
    model_dir: str | os.PathLike,
    predict_dir: str | os.PathLike,
    fasta: str | os.PathLike,
    variants: str | os.PathLike | None = None,
    shard: int | None = None,
    num_shards: int | None = None,
    chunk_records: int = CHUNK_RECORDS,
    k: int | None = None,
    max_seq_length: int = MAX_POSITIONS,
    batch_size: int = 8,
    dnabert_compat: bool = False,
    device: str | torch.device = "cpu",
    precision: str | None = None,
    pos_relative_to_site: bool = False,
    run_args: dict | None = None,
) -> dict:
    """run_predict_degradation.py ``--predict_fasta``: stream a FASTA (one shard of it) through the model.

    Writes, as one output set, ``pred_results.npy``, ``predictions.tsv`` (by record id),
    ``predict_args.json`` and with ``variants`` ``variant_effects.tsv`` (the rows of the variants
    whose records are in the shard, in table order), plus ``shard.json`` for a shard. Everything is
    checked by :func:`survey_fasta` and :func:`~m6abert.variants.mutate` before the first
    prediction; memory holds one chunk of ``chunk_records`` records.

    Returns
    -------
    dict or list of dict
        ``n_records`` predicted and ``records`` (first, stop) of the shard; with ``variants`` the rows
        of ``variant_effects.tsv`` (:data:`~m6abert.variants.EFFECT_COLUMNS`, in table order).
    """
    check_shard(shard, num_shards)
    model, model_k = load_classifier(model_dir, k, max_seq_length, dnabert_compat)
    identity = model_identity(model_dir)
    # a shard records what its results come from (the merge compares them): the data's SHA-256 before it is read
    sums = {} if shard is None else {"fasta_sha256": io.file_sha256(fasta),
                                     "variants_sha256": io.file_sha256(variants) if variants else None}
    table = _variant_table(variants)
    survey = survey_fasta(fasta, model_k, max_seq_length, {v.id for v in table}, chunk_records)
    if table:  # every variant checked against its record (unknown ids too) before any work
        placed = check_variants([r for _, r in survey.wanted.values()], table, pos_relative_to_site, str(variants),
                                str(fasta), survey.declared)
        if placed and run_args is not None:  # each named record's site: [index, how it was placed]
            run_args = {**run_args, "sites": placed}
    block = shard_range(survey.n_records, shard, num_shards, chunk_records)
    run = _Run(model, model_k, str(fasta), str(variants) if variants else None, max_seq_length, batch_size,
               dnabert_compat, device, pos_relative_to_site, str(model_dir), survey.declared, chunk_records,
               survey.n_coords > 0)
    header = "id\t" + "".join(f"{c}\t" for c in io.COORD_COLUMNS if run.with_coords) + "probability\tpredicted_label"
    with io.Spool(predict_dir, "predictions.tsv", header) as spool:
        probs, effects, bed = _stream(run, spool, block, _by_chunk(table, survey, chunk_records), chunk_records,
                                      precision)
        files = _writers(spool, probs, effects, variants is not None,
                         None if run_args is None else {**run_args, "model_identity": identity})
        if shard is None and run.with_coords:  # a shard's BED is the merge's
            files[io.PREDICTION_BED] = bed_writer(bed)
        if shard is not None:
            record = {"shard": shard, "num_shards": num_shards, "fasta": os.path.abspath(fasta),
                      "n_records": survey.n_records, "records": [block.start, block.stop],
                      "chunk_records": chunk_records, "variants": os.path.abspath(variants) if variants else None,
                      "variant_rows": [e[0] for e in effects], **sums, "model": os.path.abspath(model_dir),
                      "model_identity": identity, "max_seq_length": max_seq_length,
                      "precision": precision or "fp32", "dnabert_compat": dnabert_compat,
                      "pos_relative_to_site": pos_relative_to_site, "batch_size": batch_size}
            files[io.SHARD_RECORD] = lambda p: io.write_json(p, record)
        io.write_output_set(predict_dir, files, PREDICTION_FILES, what="predictions")
    what = f" and effects of {len(effects)} variants" if variants is not None else ""
    print(f"predictions of {len(probs)} sequences{what} written to {predict_dir}")
    if variants is not None:  # the rows of variant_effects.tsv
        return [e[2] for e in effects]
    return {"n_records": len(probs), "records": [block.start, block.stop]}


def _stream(run: _Run, spool: io.Spool, block: range, variants_of: dict, chunk_records: int,
            precision: str | None) -> tuple[np.ndarray, list[tuple[int, str, dict]], tuple[list, int]]:
    """Predict the chunks of ``block``, appending each one's rows to ``spool``; (P(class 1), effect rows, the
    BED rows of the records with coordinates and how many had none)."""
    from ..metrics import softmax_p1

    probs, effects, bed, without = [], [], [], 0
    first, last = block.start // chunk_records, -(-block.stop // chunk_records)
    coords: dict = {}
    for c, records in enumerate(io.iter_fasta_chunks(run.fasta, chunk_records, coords=coords)):
        if c >= last:
            break
        if c < first:
            coords.clear()
            continue
        with autocast(run.device, precision):
            data, logits, rows = _predict_chunk(run, records, variants_of.get(c, []))
        p = softmax_p1(logits)
        where = [coords.get(r.id) for r in records]
        columns = prediction_columns(data, p, logits.argmax(axis=1), "id")
        spool.write(io.table_lines(with_record_columns(columns, "id", None, where, run.with_coords)))
        chunk_bed, chunk_without = io.bed_rows(data.names, where, p.astype(np.float32))
        bed.extend(chunk_bed)
        without += chunk_without
        coords.clear()
        probs.append(p.astype(np.float32))
        effects.extend(rows)
        release_free_memory()  # the chunk's free pages go back: memory stays flat in the number of chunks
        log.info("predicted records %d..%d of %s", c * chunk_records + 1, c * chunk_records + len(records), run.fasta)
    effects.sort(key=lambda e: e[0])
    return (np.concatenate(probs) if probs else np.zeros(0, np.float32)), effects, (bed, without)


def _writers(spool: io.Spool, probs: np.ndarray, effects: list[tuple[int, str]], with_variants: bool,
             run_args: dict | None) -> dict[str, io.Writer]:
    files: dict[str, io.Writer] = {"pred_results.npy": lambda p: io.save_npy(p, probs),
                                   "predictions.tsv": spool.move_to}
    if run_args is not None:
        files["predict_args.json"] = lambda p: io.write_run_args(p.parent, run_args, p.name)
    if with_variants:
        header = "\t".join(EFFECT_COLUMNS)
        files[VARIANT_OUTPUT] = lambda p: io.write_text(p, "".join(f"{x}\n" for x in [header, *(e[1] for e in effects)]))
    return files


