"""``get_input.py`` from files to files: labelled sources (:class:`m6abert.io.LabelledSources`) balanced,
split, k-merised and written as ``train/dev/test.tsv`` or ``fold_{i}/`` (with ``records.tsv``,
``groups.tsv``, ``leakage.json`` and the sites' record), or a FASTA as a pretraining corpus; the splits
themselves are :mod:`m6abert.splits`.

``records.tsv`` has one row per row of every TSV written: ``id``, ``part`` (the TSV: ``train``, ``dev``,
``test``, ``fold_{i}/train``, ``fold_{i}/dev``), ``row`` (0-based, in that TSV), ``label``, ``site`` (the
m6A site's index in the written window; empty without one) and, when the sources give genome coordinates
(FASTA headers ``chrom:pos:strand transcript= blocks=``), ``chrom``, ``pos``, ``strand``, ``transcript``
and ``blocks`` (the genomic intervals of the written, cropped window's bases, in window order)."""

from __future__ import annotations

from pathlib import Path

from .. import io
from ..kmer import check_k
from ..leakage import LEAKAGE_K, group_files, window_groups
from ..splits import (
    finetune_splits,
    kfold_splits,
    pretrain_corpus,
    read_coords,
    read_windows,
    sample_negatives,
    sites_record,
    written_windows,
)
from ..utils import InputError

RUN_ARGS = "get_input_args.json"


FINETUNE_OUTPUTS = ("train.tsv", "dev.tsv", "test.tsv", "fold_[0-9]*/train.tsv", "fold_[0-9]*/dev.tsv",
                    "folds.json", io.RECORDS, "groups.tsv", "leakage.json", RUN_ARGS)


def pretrain_outputs(k: int) -> tuple[str, ...]:
    """The names a pretraining run of k-mer length ``k`` owns (another k's corpus is kept)."""
    return f"pre/{k}.txt", f"pre/{k}_train.txt", f"pre/{k}_val.txt", RUN_ARGS


def make_inputs(
    task: str,
    sources: io.LabelledSources | None,
    save_dir: str,
    k: int,
    seed: int = 52,
    do_val: bool = False,
    extend_len: int | None = None,
    n_folds: int | None = None,
    neg_ratio: int = 1,
    fasta: str | None = None,
    run_args: dict | None = None,
    group_overlap: int = 0,
    leakage_k: int = LEAKAGE_K,
) -> list[str]:
    """Read the inputs of ``task``, build its data sets and write them to ``save_dir``.

    Everything is read and checked before the first file is written, so bad input leaves
    ``save_dir`` untouched. The files replace an earlier run's as one set
    (:func:`m6abert.io.write_output_set`): a fine-tuning run removes the earlier split files it
    does not write (:data:`FINETUNE_OUTPUTS`), a pretraining run the earlier corpus files of the
    same k (:func:`pretrain_outputs`); a user's other files stay.

    Parameters
    ----------
    task: str
        ``"finetune"`` (``sources`` -> ``train/dev[/test].tsv`` or ``fold_{i}/``) or ``"pretrain"``
        (``fasta`` -> ``pre/{k}[_train|_val].txt``).
    sources: LabelledSources or None
        Fine-tuning: the positives and negatives (:class:`m6abert.io.LabelledSources`; the paper's
        folder is ``LabelledSources.from_folder(data_dir)``; any :class:`m6abert.io.Source` kind).
        Not read by ``"pretrain"``.
    n_folds: int or None
        Write ``fold_{i}/train.tsv``, ``fold_{i}/dev.tsv`` and ``folds.json`` instead of the
        single split. Default is None.
    fasta: str or None
        Pretraining: the FASTA to read (get_input.py: ``--fasta``, else ``DATA_DIR/pretrain.fa``).
        Default is None.
    run_args: dict or None
        Resolved arguments, recorded as ``save_dir/get_input_args.json`` (with the sources'
        :meth:`~m6abert.io.LabelledSources.describe` under ``"sources"``). Default is None.
    group_overlap: int
        Fine-tuning: keep windows that share an exact stretch of this many nt in one split or fold
        (:func:`m6abert.leakage.window_groups`) and write ``groups.tsv``; 0 is the original's random split. Either
        way ``leakage.json`` reports the pairs of windows in different parts that share a stretch
        (of ``group_overlap`` nt, or ``leakage_k`` when 0; :mod:`m6abert.leakage`). Default is 0.

    Returns
    -------
    list[str]
        The paths of the data files written (not ``get_input_args.json``).
    """
    check_k(k)
    if task == "finetune":
        if sources is None:
            raise ValueError("make_inputs('finetune', ...) needs sources (m6abert.io.LabelledSources)")
        files, placed = _finetune_files(sources, k, seed, do_val, extend_len, n_folds, neg_ratio, group_overlap,
                                        leakage_k)
        owned, what = FINETUNE_OUTPUTS, "fine-tuning splits"
        if run_args is not None:
            run_args = {**run_args, "sources": sources.describe()}
            if placed is not None:
                run_args["sites"] = placed
    elif task == "pretrain":
        if fasta is None:
            raise ValueError("make_inputs('pretrain', ...) needs fasta (the FASTA file to read)")
        # --extend_len is for the site windows of fine-tuning; pretraining sequences are used whole,
        # as in the original
        src = Path(fasta)
        corpus = pretrain_corpus(io.read_fasta(src), k, seed, do_val, None, str(src))
        files = {f"pre/{name}.txt": _writer("lines", lines) for name, lines in corpus.items()}
        owned, what = pretrain_outputs(k), f"pretraining corpus (k={k})"
    else:
        raise InputError(f"--task must be 'finetune' or 'pretrain', not {task!r}")
    if run_args is not None:
        files[RUN_ARGS] = lambda path: io.write_run_args(path.parent, run_args, path.name)
    report = io.write_output_set(save_dir, files, owned, what)
    return [str(p) for p in report.written if p.name != RUN_ARGS]


def _finetune_files(sources: io.LabelledSources, k: int, seed: int, do_val: bool, extend_len: int | None,
                    n_folds: int | None, neg_ratio: int, group_overlap: int = 0,
                    leakage_k: int = LEAKAGE_K) -> tuple[dict, dict | None]:
    """``{relative name: writer}`` of a fine-tuning run (every input read and checked) and how the
    sites of its records were placed (:func:`sites_record`; None without ``extend_len``)."""
    pos_path, neg_path = sources.pos.name, sources.neg.name
    (pos, declared), (neg, neg_declared) = read_windows(sources.pos), read_windows(sources.neg)
    declared.update(neg_declared)
    io.check_unique_ids((pos_path, pos), (neg_path, neg))
    coords = {**read_coords(sources.neg), **read_coords(sources.pos)}
    used = pos + sample_negatives(neg, neg_ratio * len(pos), seed, neg_path)
    groups = window_groups(used, group_overlap, extend_len, declared) if group_overlap else None
    common = dict(k=k, seed=seed, extend_len=extend_len, neg_ratio=neg_ratio,
                  pos_path=pos_path, neg_path=neg_path, declared=declared, groups=groups)
    if n_folds is None:
        parts = finetune_splits(pos, neg, do_val=do_val, **common)
        files = {f"{name}.tsv": _writer("tsv", s) for name, s in parts.items()}
        part_of = {i: name for name, s in parts.items() for i in s.ids}
    else:
        folds_splits, folds = kfold_splits(pos, neg, n_folds=n_folds, **common)
        parts = {f"fold_{i}/{name}": s for i, fold in enumerate(folds_splits) for name, s in fold.items()}
        files = {f"{name}.tsv": _writer("tsv", s) for name, s in parts.items()}
        files["folds.json"] = _writer("json", {"n_folds": n_folds, "seed": seed, "folds": folds})
        part_of = {i: f"fold_{n}" for n, f in enumerate(folds) for i in (*f["pos"], *f["neg"])}
    files[io.RECORDS] = _writer("records", records_columns(parts, written_windows(used, extend_len, declared, coords)))
    files.update(group_files(used, len(pos), part_of, groups, group_overlap or leakage_k, extend_len, declared))
    if extend_len is None:
        return files, None
    return files, sites_record(used, extend_len, declared)


def records_columns(parts: dict, written: dict) -> dict[str, list]:
    """The columns of ``records.tsv`` (see the module's docstring): one row per (part, row) of every TSV,
    the coordinate columns only when some record has coordinates."""
    cols: dict[str, list] = {c: [] for c in io.RECORD_COLUMNS}
    coords = []
    for part, split in parts.items():
        for row, (rid, label) in enumerate(zip(split.ids, split.labels, strict=True)):
            w = written[rid]
            for c, v in zip(io.RECORD_COLUMNS, (rid, part, row, label, "" if w.site is None else w.site), strict=True):
                cols[c].append(v)
            coords.append(w.coords)
    if any(c is not None for c in coords):
        cols.update(io.coord_columns(coords, with_blocks=True))
    return cols


def _writer(kind: str, obj: object):
    """A writer of ``obj`` as a TSV (a :class:`Split`), JSON or lines, for :func:`io.write_output_set`."""
    if kind == "tsv":
        return lambda path: io.write_tsv(path, obj.sentences, obj.labels)
    if kind == "json":
        return lambda path: io.write_json(path, obj)
    if kind == "records":
        return lambda path: io.write_predictions_tsv(path, obj)
    return lambda path: io.write_lines(path, obj)
