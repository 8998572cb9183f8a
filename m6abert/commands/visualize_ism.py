"""``visualize_all.py --vis_task ism`` from files to files: in-silico saturation mutagenesis of a data set
(:mod:`m6abert.ism`), its arrays, figures and mutation maps; the driver of the ``ism`` score method."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import __version__, io
from ..constants import LETTERS
from ..inference import autocast, check_finite
from ..score_methods import method
from ..utils import InputError
from .visualize import (
    VisualizeSettings,
    _plots,
    check_placed,
    forward_meta,
    ids_writer,
    rows_meta,
    shard_record,
    shard_rows,
    track_writer,
)

if TYPE_CHECKING:
    import torch


def visualize_ism(s: VisualizeSettings, model, k: int, data, sources: list[dict],
                  device: str | torch.device = "cpu", block: range | None = None,
                  rows: io.RecordRows | None = None) -> dict[str, str]:
    """visualize_all.py ``--vis_task ism``: saturation mutagenesis of ``data`` (:mod:`m6abert.ism`).

    Sequences are rebuilt from the TSV k-mers (a FASTA's are its records'); every position of
    ``s.ism_window`` (every position if None) is mutated to the three other bases. Writes
    ``ism_{data_name}.npy`` (N, L, 4) float32 Δ log-odds (A, C, G, T), ``ism_summary_{data_name}.npy``
    (N, L) float64 mean |Δ| over the three substitutions, a ``.npy.json`` and an ``.ids.tsv`` beside each,
    the summary's bedGraph track when rows have genome coordinates, with ``plot`` the summary's heatmap and
    profile and ``ism_{data_name}_map_{row}.png`` for the ``s.plot_ids`` rows (titled by record id), and
    ``visualize_args.json``. With ``block`` (a shard) only those rows are mutated, the arrays keep the width
    of the whole data set (the longest sequence) and only the maps of rows in the block are drawn.

    Returns
    -------
    dict
        Output name -> path of every file written.
    """
    from ..ism import saturation_mutagenesis

    rows = rows if rows is not None else io.RecordRows([str(i) for i in range(len(data.names))],
                                                       [None] * len(data.names), [None] * len(data.names), data.labels)
    seqs = _sequences(s, data, k, rows)
    block = range(len(seqs)) if block is None else block
    plot_ids = [i for i in _plot_rows(s.plot_ids, rows.labels, len(seqs)) if i in block] if s.plot else ()
    width, n_rows = max(map(len, seqs), default=0), len(seqs)
    seqs, data, mine = seqs[block.start : block.stop], shard_rows(data, block), rows.take(block)
    with autocast(device, s.precision):
        res = _padded(saturation_mutagenesis(model, seqs, k, s.ism_window, s.site_index or 0, s.max_seq_length,
                                             s.dnabert_compat, s.ism_batch_size, device), width)
    check_finite(res.ref_logodds, s.model_path, data.names, "log-odds")
    check_finite(res.delta, s.model_path, data.names, "mutant log-odds")
    check_placed(mine, res.lengths, s)
    m = method("ism")
    stem, sstem = f"ism_{s.data_name}", m.file_stem(s.data_name)
    meta, track = _ism_meta(s, m, len(seqs), sources, rows)
    shard = {} if s.shard is None else {name: {"shard": shard_record(s, block, n_rows, [f"{name}.npy"],
                                                                     [f"{name}.ids.tsv"])} for name in (stem, sstem)}
    files: dict[str, io.Writer] = {
        f"{stem}.npy": lambda p: io.save_npy(p, res.delta),
        f"{stem}.npy.json": lambda p: io.write_json(p, {**meta, "array": "delta", **shard.get(stem, {})}),
        f"{sstem}.npy": lambda p: io.save_npy(p, res.summary),
        f"{sstem}.npy.json": lambda p: io.write_json(p, {**meta, "array": "summary", **track, **shard.get(sstem, {})}),
        f"{stem}.ids.tsv": ids_writer(mine, block.start, rows.has_coords()),
        f"{sstem}.ids.tsv": ids_writer(mine, block.start, rows.has_coords()),
    }
    if track and s.shard is None:
        files[track["bedgraph"]["file"]] = track_writer(track["bedgraph"], res.summary, mine)
    if s.plot:
        files.update(_ism_figures(s, m, res, seqs, mine, plot_ids, (stem, sstem), block.start))
    run_record = {**s.run_args, "model_identity": meta["model_identity"]}
    files["visualize_args.json"] = lambda p: io.write_run_args(p.parent, run_record, p.name)
    owned = [f"{stem}.npy", f"{stem}.npy.json", f"{sstem}.npy", f"{sstem}.npy.json", f"{stem}_map_*.png",
             *(f"{sstem}_{kind}.{fmt}" for kind in ("heatmap", "profile") for fmt in ("png", "pdf")),
             "visualize_args.json", f"{stem}.ids.tsv", f"{sstem}.ids.tsv", f"{sstem}.bedgraph"]
    out = Path(s.output_dir)
    io.write_output_set(out, files, owned, what=f"ism scores of {s.data_name}")
    print(f"ism scores of {len(seqs)} sequences written to {out}")
    return {_key(name): str(out / name) for name in files}


def _sequences(s: VisualizeSettings, data, k: int, rows: io.RecordRows) -> list[str]:
    """The sequences mutated: a FASTA's records, or those rebuilt from the TSV k-mers (checked)."""
    from ..ism import check_rebuilt

    if rows.seqs is not None:
        return rows.seqs
    seqs = _rebuilt_sequences(s)
    check_rebuilt(seqs, data.dataset, k, str(Path(s.data_dir) / f"{s.data_name}.tsv"))
    return seqs


def _ism_meta(s: VisualizeSettings, m, n: int, sources: list[dict], rows: io.RecordRows) -> tuple[dict, dict]:
    """The score record of the ISM arrays, and the summary's bedGraph entry ({} without coordinates)."""
    meta = {"m6abert_version": __version__, "vis_task": "ism", "data_name": s.data_name,
            "model_path": s.model_path, **forward_meta(s, m), "layer": None, "rows": n, "sources": sources,
            "precision": s.precision or "fp32", "site_index": s.site_index,
            "ism_window": list(s.ism_window) if s.ism_window is not None else None,
            "delta": "mutant - reference log-odds (logit1 - logit0), columns A, C, G, T",
            "summary": "mean |delta| over the three substitutions of each position", **rows_meta(s, m, rows, None)}
    if not rows.has_coords():
        return meta, {}
    window = None if s.ism_window is None else [s.site_index + s.ism_window[0], s.site_index + s.ism_window[1]]
    return meta, {"bedgraph": {"file": f"{m.file_stem(s.data_name)}.bedgraph", "values": f"{m.file_stem(s.data_name)}.npy",
                               "oriented": False, "range": window}}


def _ism_figures(s: VisualizeSettings, m, res, seqs: list[str], mine: io.RecordRows, plot_ids, stems: tuple[str, str],
                 first: int) -> dict[str, io.Writer]:
    """The summary's heatmap and profile (the mutated positions; rows named by id) and the mutation maps."""
    inside = (np.arange(res.summary.shape[1])[None, :] >= res.starts[:, None]) & (
        np.arange(res.summary.shape[1])[None, :] < res.ends[:, None])
    files = _plots(s, m, np.where(inside, res.summary, np.nan), res.lengths, mine.labels, stems[1], mine.ids,
                   mine.sites)
    sites = [s.site_index if s.site_index is not None else (i if i is not None else 0) for i in mine.sites]
    files.update(_map_writers(res, seqs, tuple(plot_ids), stems[0], sites, first, LETTERS[s.letters], mine.ids))
    return files


def _key(name: str) -> str:
    """The name of an output in :func:`visualize_ism`'s result (an array is its stem)."""
    return name[: -len(".npy")] if name.endswith(".npy") else name


def _padded(res, width: int):
    """An ISM result with its arrays widened to ``width`` positions (zeros: past every sequence's end), so a
    shard's arrays have the width of the whole data set's."""
    extra = width - res.delta.shape[1]
    if extra <= 0:
        return res
    return res._replace(delta=np.pad(res.delta, ((0, 0), (0, extra), (0, 0))),
                        summary=np.pad(res.summary, ((0, 0), (0, extra))))


def _rebuilt_sequences(s: VisualizeSettings) -> list[str]:
    """The nucleotide sequences of the TSV(s) of ``data_name``, rebuilt from their k-mers, in row order."""
    from ..kmer import kmer2seq

    return [kmer2seq(sentence) for n in s.names
            for sentence in io.read_tsv(Path(s.data_dir) / f"{n}.tsv", require_labels=False).sentences]


def _plot_rows(plot_ids: tuple[int, ...] | None, labels: np.ndarray | None, n: int) -> tuple[int, ...]:
    """The rows whose mutation map is drawn: ``plot_ids``, checked, or the first positive (first row unlabelled)."""
    if plot_ids is None:
        if labels is None:
            return (0,) if n else ()
        positives = np.flatnonzero(labels == 1)
        return (int(positives[0]),) if len(positives) else ()
    bad = [i for i in plot_ids if not 0 <= i < n]
    if bad:
        raise InputError(f"--plot_ids {bad[0]}: the data set has {n} rows (0..{n - 1})")
    return tuple(dict.fromkeys(plot_ids))


def _map_writers(res, seqs: list[str], rows: tuple[int, ...], stem: str, sites: list[int],
                 first: int = 0, letters: str | None = None, ids: list[str] | None = None) -> dict[str, io.Writer]:
    """Writers of the mutation maps ``{stem}_map_{row}.png`` of ``rows`` (their mutated range, titled by the
    record id); ``res``, ``seqs``, ``sites`` (each row's site index) and ``ids`` hold the rows from ``first`` on
    (a shard)."""
    from ..plots import mutation_map

    files: dict[str, io.Writer] = {}
    for row in rows:
        i = row - first
        a, b = int(res.starts[i]), int(res.ends[i])
        name = ids[i] if ids is not None else row
        title = f"Sequence {name}: Δ log-odds of each substitution (reference log-odds {res.ref_logodds[i]:.2f})"
        fig = mutation_map(res.delta[i, a:b], seqs[i][a:b], a - sites[i], title, letters)
        files[f"{stem}_map_{row}.png"] = lambda p, fig=fig: io.save_figure(fig, p.with_suffix(""), formats=("png",))
    return files
