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
from .visualize import VisualizeSettings, _plots, forward_meta, shard_record, shard_rows

if TYPE_CHECKING:
    import torch


def visualize_ism(s: VisualizeSettings, model, k: int, data, sources: list[dict],
                  device: str | torch.device = "cpu", block: range | None = None) -> dict[str, str]:
    """visualize_all.py ``--vis_task ism``: saturation mutagenesis of ``data`` (:mod:`m6abert.ism`).

    Sequences are rebuilt from the TSV k-mers; every position of ``s.ism_window`` (every position
    if None) is mutated to the three other bases. Writes ``ism_{data_name}.npy`` (N, L, 4) float32
    Δ log-odds (A, C, G, T), ``ism_summary_{data_name}.npy`` (N, L) float64 mean |Δ| over the three
    substitutions, a ``.npy.json`` beside each, with ``plot`` the summary's heatmap and profile and
    ``ism_{data_name}_map_{row}.png`` for the ``s.plot_ids`` rows, and ``visualize_args.json``.
    With ``block`` (a shard) only those rows are mutated, the arrays keep the width of the whole
    data set (the longest sequence) and only the maps of rows in the block are drawn.

    Returns
    -------
    dict
        Output name -> path of every file written.
    """
    from ..ism import check_rebuilt, saturation_mutagenesis

    seqs = _rebuilt_sequences(s)
    check_rebuilt(seqs, data.dataset, k, str(Path(s.data_dir) / f"{s.data_name}.tsv"))
    block = range(len(seqs)) if block is None else block
    plot_ids = [i for i in _plot_rows(s.plot_ids, data.labels, len(seqs)) if i in block] if s.plot else ()
    width, n_rows = max(map(len, seqs), default=0), len(seqs)
    seqs, data = seqs[block.start : block.stop], shard_rows(data, block)
    with autocast(device, s.precision):
        res = _padded(saturation_mutagenesis(model, seqs, k, s.ism_window, s.site_index, s.max_seq_length,
                                             s.dnabert_compat, s.ism_batch_size, device), width)
    check_finite(res.ref_logodds, s.model_path, data.names, "log-odds")
    check_finite(res.delta, s.model_path, data.names, "mutant log-odds")
    m = method("ism")
    stem, sstem = f"ism_{s.data_name}", m.file_stem(s.data_name)
    meta = {"m6abert_version": __version__, "vis_task": "ism", "data_name": s.data_name,
            "model_path": s.model_path, **forward_meta(s, m), "layer": None, "rows": len(seqs), "sources": sources,
            "precision": s.precision or "fp32", "site_index": s.site_index,
            "ism_window": list(s.ism_window) if s.ism_window is not None else None,
            "delta": "mutant - reference log-odds (logit1 - logit0), columns A, C, G, T",
            "summary": "mean |delta| over the three substitutions of each position"}
    shard = {} if s.shard is None else {name: {"shard": shard_record(s, block, n_rows, [f"{name}.npy"], [])}
                                        for name in (stem, sstem)}
    files: dict[str, io.Writer] = {
        f"{stem}.npy": lambda p: io.save_npy(p, res.delta),
        f"{stem}.npy.json": lambda p: io.write_json(p, {**meta, "array": "delta", **shard.get(stem, {})}),
        f"{sstem}.npy": lambda p: io.save_npy(p, res.summary),
        f"{sstem}.npy.json": lambda p: io.write_json(p, {**meta, "array": "summary", **shard.get(sstem, {})}),
    }
    if s.plot:
        inside = (np.arange(res.summary.shape[1])[None, :] >= res.starts[:, None]) & (
            np.arange(res.summary.shape[1])[None, :] < res.ends[:, None])
        files.update(_plots(s, m, np.where(inside, res.summary, np.nan), res.lengths, data.labels, sstem, data.names))
        files.update(_map_writers(res, seqs, plot_ids, stem, s.site_index, block.start, LETTERS[s.letters]))
    run_record = {**s.run_args, "model_identity": meta["model_identity"]}
    files["visualize_args.json"] = lambda p: io.write_run_args(p.parent, run_record, p.name)
    owned = [f"{stem}.npy", f"{stem}.npy.json", f"{sstem}.npy", f"{sstem}.npy.json", f"{stem}_map_*.png",
             *(f"{sstem}_{kind}.{fmt}" for kind in ("heatmap", "profile") for fmt in ("png", "pdf")),
             "visualize_args.json"]
    out = Path(s.output_dir)
    io.write_output_set(out, files, owned, what=f"ism scores of {s.data_name}")
    print(f"ism scores of {len(seqs)} sequences written to {out}")
    return {_key(name): str(out / name) for name in files}


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


def _map_writers(res, seqs: list[str], rows: tuple[int, ...], stem: str, site_index: int,
                 first: int = 0, letters: str | None = None) -> dict[str, io.Writer]:
    """Writers of the mutation maps ``{stem}_map_{row}.png`` of ``rows`` (their mutated range); ``res`` and
    ``seqs`` hold the rows from ``first`` on (a shard)."""
    from ..plots import mutation_map

    files: dict[str, io.Writer] = {}
    for row in rows:
        i = row - first
        a, b = int(res.starts[i]), int(res.ends[i])
        title = f"Sequence {row}: Δ log-odds of each substitution (reference log-odds {res.ref_logodds[i]:.2f})"
        fig = mutation_map(res.delta[i, a:b], seqs[i][a:b], a - site_index, title, letters)
        files[f"{stem}_map_{row}.png"] = lambda p, fig=fig: io.save_figure(fig, p.with_suffix(""), formats=("png",))
    return files
