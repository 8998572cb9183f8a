"""The interpretation commands from files to files.

* :func:`visualize` (visualize_all.py): a fine-tuned model's attention, attribution or in-silico
  mutagenesis scores of a data set, saved as arrays with heatmap and profile figures (and mutation
  maps for ISM; settings in :class:`VisualizeSettings`);
* :func:`find_motifs` (find_motifs.py): motifs enriched in the high-score regions of those arrays,
  with tables and logos.

The scores themselves are :mod:`m6abert.attention`, :mod:`m6abert.attribution` and :mod:`m6abert.ism`, the motif search
:mod:`m6abert.motifs`, the figures :mod:`m6abert.plots`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import __version__, io
from .constants import IG_STEPS, MAX_POSITIONS, N_BASELINES, SITE_INDEX
from .data import concat_labelled, load_tsv_dataset, read_labelled_scores
from .inference import autocast, check_finite
from .ism import BATCH_SIZE as ISM_BATCH_SIZE
from .motifs import (
    MIN_LEN,
    MIN_N_MOTIF,
    PVAL_CUTOFF,
    WINDOW_SIZE,
    Motif,
    motif_records,
    position_frequency_matrix,
)
from .sharded import check_shard, shard_range
from .utils import InputError, check_model_k, log

if TYPE_CHECKING:
    import torch

MAX_REL_DELTA = 0.1  # |delta| / |F(x) - F(baseline)| above which an attribution row is not to be trusted
VIS_TASKS = ("attn", "attr", "ism")
WHAT = {"attn": "Attention of [CLS] to each nucleotide", "attr": "Attribution of each nucleotide (|integrated gradients|)",
        "ism": "Mean |Δ log-odds| of the substitutions at each position"}  # figure titles, in words


@dataclass(frozen=True)
class VisualizeSettings:
    """visualize_all.py's settings; field names are its flags (``k`` is ``--kmer``, ``plot`` is not ``--no_plot``)."""

    model_path: str
    data_dir: str
    data_name: str
    vis_task: str
    output_dir: str = "./results/"
    k: int | None = None
    max_seq_length: int = MAX_POSITIONS
    layer: int | None = None
    batch_size: int = 50
    n_steps: int = IG_STEPS  # attr: Gauss-Legendre steps per reference (the original's 50 with dnabert_compat)
    internal_batch_size: int | None = None
    dnabert_compat: bool = False
    plot: bool = True
    site_index: int = SITE_INDEX
    precision: str | None = None  # "bf16" (or "fp16" on CUDA): autocast the model
    ism_window: tuple[int, int] | None = None  # ism: (START, END) relative to the site, half-open; None: all
    plot_ids: tuple[int, ...] | None = None  # ism: rows whose mutation map is drawn; None: the first positive
    ism_batch_size: int = ISM_BATCH_SIZE  # ism: mutants per forward pass
    attr_target: str = "logodds"  # attr: "logodds" of the true label, or "prob" (the original's)
    baseline: str = "shuffle"  # attr: "shuffle" (dinucleotide shuffles) or "pad" (the original's all-[PAD] sequence)
    n_baselines: int = N_BASELINES  # attr: shuffled references per sequence (baseline "shuffle"; 1 for "pad")
    seed: int = 42  # attr: seed of the shuffled references
    max_rel_delta: float = MAX_REL_DELTA  # attr: relative completeness error above which a row is unreliable
    skip_unreliable: bool = False  # attr: leave the unreliable rows out of the heatmaps and profiles
    shard: int | None = None  # score only shard ``shard`` (0-based) of ``num_shards``: a block of the rows
    num_shards: int | None = None
    run_args: dict = field(default_factory=dict)


def score_file_stem(vis_task: str, data_name: str, layer: int | None = None) -> str:
    """``atten_{data_name}`` / ``attributions_{data_name}``, with ``_layer_{layer}`` if given.

    >>> score_file_stem("attr", "dev", 3)
    'attributions_dev_layer_3'
    """
    stem = f"{io.SCORE_FILE_STEMS[vis_task]}_{data_name}"
    return stem if layer is None else f"{stem}_layer_{layer}"


def _cropped(scores: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A copy of ``scores`` cut to the longest sequence, NaN past each sequence's end (figures leave it blank)."""
    width = int(min(scores.shape[1], lengths.max())) if len(lengths) else scores.shape[1]
    shown = scores[:, :width].astype(np.float64)
    shown[np.arange(width)[None, :] >= lengths[:, None]] = np.nan
    return shown


def plot_scores(
    scores: np.ndarray, labels: np.ndarray, lengths: np.ndarray, stem: str, site_index: int, what: str
) -> dict:
    """Heatmap and profile figures of a score matrix, cropped to the longest sequence."""
    from .plots import score_heatmap, score_profile

    shown = _cropped(scores, lengths)
    pos, neg = shown[labels == 1], shown[labels == 0]
    return {
        f"{stem}_heatmap": score_heatmap(pos, neg, site_index, title=what),
        f"{stem}_profile": score_profile(pos, neg, site_index, title=what),
    }


def _load(s: VisualizeSettings):
    """The fine-tuned model, its k and the data set(s) of ``data_name``, all checked."""
    from .model import load_model

    attn = s.vis_task == "attn"
    if s.vis_task != "ism" and (s.ism_window is not None or s.plot_ids is not None):
        raise InputError("--ism_window and --plot_ids apply to --vis_task ism only")
    if s.vis_task == "ism" and s.layer is not None:
        raise InputError("--layer does not apply to --vis_task ism (it mutates the input)")
    model, k = load_model(s.model_path, "classification", attn_implementation="eager" if attn else "sdpa",
                          fine_tuned=True)
    check_model_k(f"--kmer {s.k}", s.k, k, f"the model in {s.model_path}")
    n_layers, max_pos = model.config.num_hidden_layers, model.config.max_position_embeddings
    if s.layer is not None and not -n_layers <= s.layer < n_layers:
        raise InputError(f"--layer {s.layer}: the model has {n_layers} layers (0..{n_layers - 1})")
    if s.max_seq_length > max_pos:
        raise InputError(f"--max_seq_length {s.max_seq_length} exceeds the model's {max_pos} positions")
    names = ("train", "dev", "test") if s.data_name == "all" else (s.data_name,)
    parts = [load_tsv_dataset(Path(s.data_dir) / f"{n}.tsv", k, s.max_seq_length, s.vis_task == "attr")
             for n in names]
    return model, k, concat_labelled(parts, s.data_dir, names)


def visualize(s: VisualizeSettings, device: str | torch.device = "cpu") -> dict[str, str]:
    """visualize_all.py: score ``data_name`` with the fine-tuned ``model_path`` and save the arrays.

    Writes ``atten_{data_name}.npy`` + ``pred_results_{data_name}.npy`` (attn) or
    ``attributions_{data_name}.npy`` (attr) into ``output_dir`` (``_layer_{layer}`` variants with
    ``layer``), PNG/PDF heatmap and profile figures if ``plot``, and ``visualize_args.json``; for
    ism ``ism_{data_name}.npy`` (N, L, 4), ``ism_summary_{data_name}.npy`` (N, L) and, if ``plot``,
    ``ism_{data_name}_map_{row}.png`` of the ``plot_ids`` rows (see :func:`visualize_ism`).
    Everything is read and checked before anything is written.

    With ``shard`` and ``num_shards`` only a contiguous block of the rows is scored (attn and attr:
    cut in whole ``batch_size`` batches, so a shard computes exactly the batches of an unsharded run
    and the merged arrays are bit-identical to its; ism: cut in rows) and each ``.npy.json``
    records the block and the files a merge joins (:func:`~m6abert.sharded.merge_score_shards`).

    Returns
    -------
    dict
        Output name -> path of every file written.
    """
    if s.vis_task not in VIS_TASKS:
        raise InputError(f"--vis_task must be attn, attr or ism, not {s.vis_task!r}")
    check_shard(s.shard, s.num_shards)
    model, k, full = _load(s)
    sources = _sources(s)
    block = shard_range(len(full.names), s.shard, s.num_shards, unit=1 if s.vis_task == "ism" else s.batch_size)
    if s.vis_task == "ism":
        return visualize_ism(s, model, k, full, sources, device, block)
    data = shard_rows(full, block)
    out, stem = Path(s.output_dir), score_file_stem(s.vis_task, s.data_name, s.layer)
    common = dict(k=k, max_seq_length=s.max_seq_length, layer=s.layer, dnabert_compat=s.dnabert_compat,
                  batch_size=s.batch_size, device=device)
    with autocast(device, s.precision):
        res, files, shown = _scores(s, model, data, common)
    meta = {"m6abert_version": __version__, "vis_task": s.vis_task, "data_name": s.data_name,
            "model_path": s.model_path, **_forward_meta(s), "layer": s.layer, "rows": len(res.scores),
            "sources": sources,
            "precision": s.precision or "fp32", **({"attr_target": s.attr_target, "n_steps": s.n_steps, "baseline": s.baseline,
                                                      "n_baselines": s.n_baselines, "seed": s.seed}
                                                   if s.vis_task == "attr" else {})}
    if s.shard is not None:
        meta["shard"] = shard_record(s, block, len(full.names), *_merged_names(s, stem))
    files[f"{stem}.npy"] = lambda p: io.save_npy(p, res.scores)
    files[f"{stem}.npy.json"] = lambda p: io.write_json(p, meta)
    if s.plot:
        files.update(_plots(s, shown, res.lengths, data.labels, stem))
        if s.vis_task == "attr" and data.labels is not None and len(data.labels):
            files.update(_signed_profile(s, res, shown, data.labels, stem))
    run_record = {**s.run_args, "model_identity": meta["model_identity"]}
    files["visualize_args.json"] = lambda p: io.write_run_args(p.parent, run_record, p.name)
    owned = [f"{stem}.npy", f"{stem}.npy.json", *(f"{stem}_{kind}.{fmt}" for kind in ("heatmap", "profile")
                                                  for fmt in ("png", "pdf")), "visualize_args.json"]
    if s.vis_task == "attr":
        owned += [f"{signed_stem(stem)}_profile.{fmt}" for fmt in ("png", "pdf")]
    if s.vis_task == "attn" and s.layer is None:
        owned.append(f"pred_results_{s.data_name}.npy")
    if s.vis_task == "attr":
        owned += [f"{signed_stem(stem)}.npy", f"{stem}_qc.tsv"]
    io.write_output_set(out, files, owned, what=f"{s.vis_task} scores of {s.data_name}")
    print(f"{s.vis_task} scores of {len(res.scores)} sequences written to {out}")
    return {_key(name, stem, s.data_name): str(out / name) for name in files}


def shard_rows(data, block: range):
    """The rows ``block`` of a labelled data set (all of it for the full range); names stay the global rows."""
    if len(block) == len(data.names):
        return data
    import torch

    labels = data.labels[block.start : block.stop] if data.labels is not None else None
    return type(data)(torch.utils.data.Subset(data.dataset, block), labels, data.names[block.start : block.stop])


def shard_record(s: VisualizeSettings, block: range, n_rows: int, arrays: list[str], tables: list[str]) -> dict:
    """The ``shard`` entry of a sharded run's ``.npy.json``: which rows it scored and the files that
    ``merge_shards.py`` joins (arrays concatenated along the rows, tables one after the other)."""
    return {"shard": s.shard, "num_shards": s.num_shards, "rows": [block.start, block.stop], "n_rows": n_rows,
            "arrays": arrays, "tables": tables}


def _merged_names(s: VisualizeSettings, stem: str) -> tuple[list[str], list[str]]:
    """The arrays and tables of an attn or attr run that a merge of its shards joins."""
    if s.vis_task == "attr":
        return [f"{stem}.npy", f"{signed_stem(stem)}.npy"], [f"{stem}_qc.tsv"]
    return [f"{stem}.npy", *([f"pred_results_{s.data_name}.npy"] if s.layer is None else [])], []


def _scores(s: VisualizeSettings, model, data, common: dict):
    """The attention or attribution scores, checked finite, the writers of their extra outputs, and the
    scores the figures show (unreliable attribution rows blanked with ``skip_unreliable``)."""
    files: dict[str, io.Writer] = {}
    shown = None
    if s.vis_task == "attn":
        from .attention import attention_scores

        res = attention_scores(model, data.dataset, **common)
        check_finite(res.probs, s.model_path, data.names, "probabilities")
        check_finite(res.scores, s.model_path, data.names, "attention")
        if s.layer is None:
            files[f"pred_results_{s.data_name}.npy"] = lambda p: io.save_npy(p, res.probs)
    else:
        from .attribution import attribute

        res = attribute(model, data.dataset, method="ig", n_steps=s.n_steps,
                        internal_batch_size=s.internal_batch_size, attr_target=s.attr_target,
                        baseline=s.baseline, n_baselines=s.n_baselines, seed=s.seed, **common)
        check_finite(np.stack([res.delta, res.scores.sum(axis=1)], 1), s.model_path, data.names, "attributions")
        stem = score_file_stem("attr", s.data_name, s.layer)
        qc = completeness_table(res, data.labels, s.attr_target, data.names)
        _report_completeness(qc, s, f"{stem}_qc.tsv")
        if s.skip_unreliable:
            shown = _without_unreliable(res.scores, np.asarray(qc["rel_error"]) > s.max_rel_delta)
        files[f"{signed_stem(stem)}.npy"] = lambda p: io.save_npy(p, res.signed)
        files[f"{stem}_qc.tsv"] = lambda p: io.write_predictions_tsv(p, qc)
    return res, files, res.scores if shown is None else shown


def _without_unreliable(scores: np.ndarray, unreliable: np.ndarray) -> np.ndarray:
    """The scores to plot with the unreliable rows blanked (NaN), so heatmaps and profiles leave them out;
    the saved arrays keep every row."""
    log.info("--skip_unreliable: %d of %d rows left out of the heatmaps and profiles", int(unreliable.sum()),
             len(unreliable))
    shown = scores.copy()
    shown[unreliable] = np.nan
    return shown


def signed_stem(stem: str) -> str:
    """``attributions_signed_{...}`` of ``attributions_{...}``.

    >>> signed_stem("attributions_dev_layer_1")
    'attributions_signed_dev_layer_1'
    """
    return stem.replace("attributions_", "attributions_signed_", 1)


def completeness_table(res, labels: np.ndarray, attr_target: str, names: list[str]) -> dict[str, list]:
    """Per sequence: label, P(class 1), the explained target at input and baseline (the mean over the
    references), Captum's delta (the mean over the references), the relative completeness error
    (:func:`~m6abert.attribution.relative_error`: abs_delta / gap, inf where the gap is 0), the gap
    (the mean over the references of |F(x) - F(reference)|) and abs_delta (the mean of their |delta|)."""
    f_in, f_base = res.f_input, res.f_baseline
    if attr_target == "prob":
        p1 = np.where(labels == 1, f_in, 1.0 - f_in)
    else:
        p1 = 1.0 / (1.0 + np.exp(-np.where(labels == 1, f_in, -f_in)))
    from .attribution import relative_error

    return {"row": names, "label": labels.tolist(), "p_class1": p1.tolist(), "target_input": f_in.tolist(),
            "target_baseline": f_base.tolist(), "delta": res.delta.tolist(), "rel_error": relative_error(res).tolist(),
            "gap": res.gap.tolist(), "abs_delta": res.abs_delta.tolist()}


def _report_completeness(qc: dict[str, list], s: VisualizeSettings, name: str) -> None:
    rel = np.asarray(qc["rel_error"], dtype=np.float64)
    bad = int((rel > s.max_rel_delta).sum())
    log.info("integrated gradients (%s target, %s baseline x %d, %d steps): median relative completeness error "
             "%.3g over %d sequences", s.attr_target, s.baseline, s.n_baselines, s.n_steps,
             float(np.median(rel)) if len(rel) else 0.0, len(rel))
    if bad:
        tips = [f"more --n_steps (now {s.n_steps})"]
        if s.attr_target == "prob":
            tips.insert(0, "--attr_target logodds, which does not saturate")
        tips.append("or --skip_unreliable to leave them out of the figures and motifs")
        log.warning("integrated gradients: %d of %d sequences (%.0f %%) have a relative completeness error above "
                    "%g: their attributions do not add up to F(input) - F(baseline) and are not to be trusted "
                    "(see %s; try %s)", bad, len(rel), 100.0 * bad / len(rel), s.max_rel_delta, name, ", ".join(tips))


def _key(name: str, stem: str, data_name: str) -> str:
    """The name of an output in :func:`visualize`'s result (an array is its stem, pred_results plain)."""
    if name == f"pred_results_{data_name}.npy":
        return "pred_results"
    return name[: -len(".npy")] if name.endswith(".npy") else name


def _sources(s: VisualizeSettings) -> list[dict]:
    """The TSVs scored, in row order, with their SHA-256: find_motifs.py checks its TSVs against them."""
    names = ("train", "dev", "test") if s.data_name == "all" else (s.data_name,)
    return [{"tsv": f"{n}.tsv", "sha256": io.file_sha256(Path(s.data_dir) / f"{n}.tsv")} for n in names]


def _forward_meta(s: VisualizeSettings) -> dict:
    """What determines the scores besides the data and the task's settings: the model's identity
    (:func:`~m6abert.io.checkpoints.model_identity`) and the settings of its forward passes. A merge
    of shards compares them (:func:`~m6abert.sharded.merge_score_shards`)."""
    from .io.checkpoints import model_identity

    batch = {"ism_batch_size": s.ism_batch_size} if s.vis_task == "ism" else {"batch_size": s.batch_size}
    if s.vis_task == "attr":
        batch["internal_batch_size"] = s.internal_batch_size
    return {"model_identity": model_identity(s.model_path), "max_seq_length": s.max_seq_length,
            "dnabert_compat": s.dnabert_compat, **batch}


def _plots(s: VisualizeSettings, scores: np.ndarray, lengths: np.ndarray, labels: np.ndarray | None,
           stem: str) -> dict[str, io.Writer]:
    """Writers of the heatmap and profile figures (PNG and PDF); none without labels."""
    if labels is None:
        log.warning("no labels in %s: heatmap and profile plots are skipped", s.data_dir)
        return {}
    if not len(scores):  # an empty shard
        log.info("no rows to draw: heatmap and profile plots are skipped")
        return {}
    what = f"{WHAT[s.vis_task]}: {s.data_name} split"
    if s.layer is not None:
        what += f", encoder layer {s.layer}"
    files = {}
    for name, fig in plot_scores(scores, labels, lengths, stem, s.site_index, what).items():
        for fmt in ("png", "pdf"):
            files[f"{name}.{fmt}"] = lambda p, fig=fig, fmt=fmt: io.save_figure(fig, p.with_suffix(""), formats=(fmt,))
    return files


def _signed_profile(s: VisualizeSettings, res, shown: np.ndarray, labels: np.ndarray, stem: str) -> dict[str, io.Writer]:
    """Writers of the signed profile (PNG, PDF): mean signed attribution per nucleotide of each class,
    oriented towards class 1 (the true label's attributions, sign-flipped for negatives: the target of
    class 0 is minus that of class 1 for log-odds, one minus it for probabilities), so above 0 pushes
    towards "degraded" and below towards "not degraded"; rows left out of ``shown`` are left out here."""
    from .plots import score_profile

    signed = _cropped(res.signed, res.lengths) * np.where(labels == 1, 1.0, -1.0)[:, None]  # towards class 1
    signed[np.isnan(shown).all(axis=1)] = np.nan  # the rows left out of the other figures
    target = "log-odds" if s.attr_target == "logodds" else "probability"
    what = f"Signed attribution to the {target} of degraded (above 0: towards degraded): {s.data_name} split"
    fig = score_profile(signed[labels == 1], signed[labels == 0], s.site_index, title=what,
                        ylabel="mean signed attribution (95 % CI)")
    name = f"{signed_stem(stem)}_profile"
    return {f"{name}.{fmt}": (lambda p, fmt=fmt: io.save_figure(fig, p.with_suffix(""), formats=(fmt,)))
            for fmt in ("png", "pdf")}


# ---------------------------------------------------------------------------- --vis_task ism
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
    from .ism import check_rebuilt, saturation_mutagenesis

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
    stem, sstem = f"ism_{s.data_name}", score_file_stem("ism", s.data_name)
    meta = {"m6abert_version": __version__, "vis_task": "ism", "data_name": s.data_name,
            "model_path": s.model_path, **_forward_meta(s), "layer": None, "rows": len(seqs), "sources": sources,
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
        files.update(_plots(s, np.where(inside, res.summary, np.nan), res.lengths, data.labels, sstem))
        files.update(_map_writers(res, seqs, plot_ids, stem, s.site_index, block.start))
    run_record = {**s.run_args, "model_identity": meta["model_identity"]}
    files["visualize_args.json"] = lambda p: io.write_run_args(p.parent, run_record, p.name)
    owned = [f"{stem}.npy", f"{stem}.npy.json", f"{sstem}.npy", f"{sstem}.npy.json", f"{stem}_map_*.png",
             *(f"{sstem}_{kind}.{fmt}" for kind in ("heatmap", "profile") for fmt in ("png", "pdf")),
             "visualize_args.json"]
    out = Path(s.output_dir)
    io.write_output_set(out, files, owned, what=f"ism scores of {s.data_name}")
    print(f"ism scores of {len(seqs)} sequences written to {out}")
    return {_key(name, stem, s.data_name): str(out / name) for name in files}


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
    from .kmer import kmer2seq

    names = ("train", "dev", "test") if s.data_name == "all" else (s.data_name,)
    return [kmer2seq(sentence) for n in names
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
                 first: int = 0) -> dict[str, io.Writer]:
    """Writers of the mutation maps ``{stem}_map_{row}.png`` of ``rows`` (their mutated range); ``res`` and
    ``seqs`` hold the rows from ``first`` on (a shard)."""
    from .plots import mutation_map

    files: dict[str, io.Writer] = {}
    for row in rows:
        i = row - first
        a, b = int(res.starts[i]), int(res.ends[i])
        title = f"Sequence {row}: Δ log-odds of each substitution (reference log-odds {res.ref_logodds[i]:.2f})"
        fig = mutation_map(res.delta[i, a:b], seqs[i][a:b], a - site_index, title)
        files[f"{stem}_map_{row}.png"] = lambda p, fig=fig: io.save_figure(fig, p.with_suffix(""), formats=("png",))
    return files


# ---------------------------------------------------------------------------- find_motifs.py
def find_motifs(
    data_dir: str | os.PathLike,
    npy_dir: str | os.PathLike,
    data_name: str,
    vis_task: str,
    save_dir: str | os.PathLike = ".",
    set_name: str = "pos",
    window_size: int = WINDOW_SIZE,
    min_len: int = MIN_LEN,
    pval_cutoff: float = PVAL_CUTOFF,
    min_n_motif: int = MIN_N_MOTIF,
    align_all_ties: bool = False,
    background: str = "sequences",
    site_index: int = SITE_INDEX,
    logos: bool = True,
    do_plot: bool = False,
    verbose: bool = False,
    run_args: dict | None = None,
    skip_unreliable: bool = False,
    max_rel_delta: float = MAX_REL_DELTA,
) -> list[Motif]:
    """Run the motif search of ``find_motifs.py`` from score and TSV files to result files.

    ``set_name="pos"`` looks for motifs enriched in label-1 sequences using their scores,
    ``"neg"`` for motifs enriched in label-0 sequences using theirs. Everything is read and
    checked before anything is written. Written into ``save_dir``: ``motifs_{set}.tsv``,
    ``motifs_{set}.json`` and, in ``save_dir/{set}/``, ``motif_{MOTIF}_{N}.txt``,
    ``motif_{MOTIF}_{N}_logo.png`` (if ``logos``) and ``find_motifs_args.json`` (if ``run_args``);
    with ``do_plot`` also ``heatmap_{data_name}.png``.

    Parameters
    ----------
    data_dir, npy_dir: str or PathLike
        Folders of ``{data_name}.tsv`` and of the ``atten_*``/``attributions_*``/``ism_summary_*`` arrays.
    data_name: str
        ``train``, ``dev``, ``test`` (or any TSV stem), or ``all``.
    vis_task: str
        ``attn``, ``attr`` or ``ism`` (``ism_summary_*.npy``).
    set_name: str
        ``pos`` or ``neg``. Default is "pos".
    site_index: int
        Sequence index of the m6A site; TSV/JSON positions are relative to it. Default is 250.
    logos: bool
        Draw a sequence logo per motif. Default is True.
    run_args: dict or None
        Resolved script arguments to record. Default is None.

    Other parameters are those of :func:`motif_analysis`.

    Returns
    -------
    list[Motif]
    """
    from .motifs import BACKGROUNDS, motif_analysis

    if not data_name or Path(data_name).name != data_name or data_name.startswith("."):
        raise InputError(f"--data_name {data_name!r} must be a TSV stem such as train, dev, test or all "
                         "(no folder parts): every output stays inside --save_file_dir")
    if set_name not in ("pos", "neg"):
        raise InputError(f"--set must be 'pos' or 'neg', not {set_name!r}")
    if background not in BACKGROUNDS:
        raise InputError(f"--background must be one of {', '.join(BACKGROUNDS)}, not {background!r}")
    data = read_labelled_scores(data_dir, npy_dir, data_name, vis_task)
    is_target = data.labels == (1 if set_name == "pos" else 0)
    if skip_unreliable:
        is_target &= _reliable_rows(Path(npy_dir), data_name, vis_task, len(data.labels), max_rel_delta)
    if not is_target.any():
        reliable = " reliable" if skip_unreliable else ""
        raise InputError(f"{data_dir}: no{reliable} label-{int(set_name == 'pos')} rows in {data_name!r}, nothing to search")
    target = [s for s, t in zip(data.seqs, is_target, strict=True) if t]
    other = [s for s, t in zip(data.seqs, is_target, strict=True) if not t]
    log.info("searching %d %s sequences against %d others (%s scores of %r)",
             len(target), set_name, len(other), vis_task, data_name)
    motifs = motif_analysis(
        target, other, data.scores[is_target], window_size=window_size, min_len=min_len,
        pval_cutoff=pval_cutoff, min_n_motif=min_n_motif, align_all_ties=align_all_ties,
        background=background, verbose=verbose,
    )
    owned = [f"motifs_{set_name}.tsv", f"motifs_{set_name}.json", f"{set_name}/motif_*_*.txt",
             f"{set_name}/motif_*_*_logo.png", f"{set_name}/find_motifs_args.json"]
    if do_plot:  # the heatmap is shared by the pos and neg runs of a folder: replaced, never removed
        owned.append(f"heatmap_{data_name}.png")
    write = _motif_writer(motifs, data if do_plot else None, set_name, data_name, site_index, logos, run_args)
    save = Path(save_dir)
    io.write_output_set(save, write, owned, what=f"{set_name} motifs")
    log.info("%d motifs written to %s (motifs_%s.tsv, %s/)", len(motifs), save, set_name, set_name)
    return motifs


def _motif_writer(motifs: list[Motif], plotted, set_name: str, data_name: str, site_index: int, logos: bool,
                  run_args: dict | None):
    """The writer of every find_motifs.py output into one folder (the staging folder of the set)."""
    records = motif_records(motifs, site_index)
    if logos or plotted is not None:
        from . import plots

    def write_all(folder: Path) -> None:
        io.write_motif_outputs(folder, records, site_index=site_index, set_name=set_name)
        for m in motifs if logos else ():
            fig = plots.motif_logo(position_frequency_matrix(m.seqs), f"{m.motif} (n = {m.n_instances})")
            io.save_figure(fig, folder / set_name / f"motif_{m.motif}_{m.n_instances}_logo")
        if plotted is not None:
            fig = plots.score_heatmap(plotted.scores[plotted.labels == 1], plotted.scores[plotted.labels == 0],
                                      site_index)
            io.save_figure(fig, folder / f"heatmap_{data_name}")
        if run_args is not None:
            io.write_run_args(folder / set_name, run_args, "find_motifs_args.json")

    return write_all


def _reliable_rows(npy_dir: Path, data_name: str, vis_task: str, n: int, max_rel_delta: float) -> np.ndarray:
    """Rows whose attributions add up (relative completeness error <= ``max_rel_delta``), from the
    ``attributions_*_qc.tsv`` visualize_all.py wrote beside the scores (train, dev, test for "all")."""
    if vis_task != "attr":
        raise InputError("--skip_unreliable applies to --vis_task attr (the completeness of attributions)")
    names = [data_name] if data_name != "all" or (npy_dir / "attributions_all_qc.tsv").exists() else [
        "train", "dev", "test"]
    rel = np.concatenate([np.asarray(io.read_columns(npy_dir / f"attributions_{name}_qc.tsv", "completeness table")
                                     .get("rel_error", []), dtype=np.float64) for name in names])
    if len(rel) != n:
        raise InputError(f"{npy_dir}: the completeness tables of {data_name!r} have {len(rel)} rows, the scores {n}")
    reliable = rel <= max_rel_delta
    log.info("--skip_unreliable: %d of %d sequences left out (relative completeness error above %g)",
             int((~reliable).sum()), n, max_rel_delta)
    return reliable
