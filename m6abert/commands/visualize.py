"""``visualize_all.py`` from files to files: a fine-tuned model's per-nucleotide scores of a data set,
saved as arrays with heatmap and profile figures (settings in :class:`VisualizeSettings`).

The method (``--vis_task``) is a :class:`~m6abert.score_methods.ScoreMethod`: its file stem, title,
computation, extra arrays, QC table and figures are declared there; this module runs any of them the
same way (in-silico mutagenesis, whose outputs are per substitution, has its own driver:
:mod:`m6abert.commands.visualize_ism`).

Every score record names its rows' records: ``{stem}.ids.tsv`` beside each ``{stem}.npy`` (``row`` of
the array, ``id``, ``label``, ``site`` and, when known, ``chrom``, ``pos``, ``strand``, ``transcript``,
``blocks``), from ``records.tsv`` beside the TSVs or the headers of ``--fasta``. For rows with genome
coordinates a method's signed array (attr: ``attributions_signed_*``) and the ISM summary are also
written as bedGraph tracks (``{stem}.bedgraph``, :func:`m6abert.io.write_bedgraph`); a shard writes
none, its merge does (from the merged arrays and ids tables, :func:`track_writer`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import __version__, io
from ..constants import MAX_POSITIONS, N_BASELINES, SITE_INDEX
from ..data import concat_labelled, fasta_dataset, load_tsv_dataset, read_fasta_rows, tsv_record_rows
from ..inference import autocast
from ..integration import FIRST_STEPS, MAX_ABS_DELTA, MAX_REL_DELTA, MAX_STEPS, Tolerance
from ..ism import BATCH_SIZE as ISM_BATCH_SIZE
from ..preempt import held_run_dir
from ..profiles import cropped
from ..score_methods import ScoreMethod, ScoreOutput, method
from ..utils import InputError, check_model_k, check_shard, log, shard_range

if TYPE_CHECKING:
    import torch

FIGURE_FORMATS = ("png", "pdf")


@dataclass(frozen=True)
class VisualizeSettings:
    """visualize_all.py's settings; field names are its flags (``k`` is ``--kmer``, ``plot`` is not ``--no_plot``)."""

    model_path: str
    data_dir: str | None
    data_name: str
    vis_task: str
    output_dir: str = "./results/"
    k: int | None = None
    max_seq_length: int = MAX_POSITIONS
    layer: int | None = None
    batch_size: int = 50
    n_steps: int | None = None  # attr: fixed Gauss-Legendre steps per reference (the original's 50 with
    # dnabert_compat); None: adaptive, 8 steps doubled for the sequences that need it up to max_ig_steps
    max_ig_steps: int = MAX_STEPS  # attr: the cap of adaptive integration
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
    max_rel_delta: float = MAX_REL_DELTA  # a QC'd method: the QC value above which a row is unreliable
    max_abs_delta: float = MAX_ABS_DELTA  # attr: ... unless its absolute completeness error is at most this
    skip_unreliable: bool = False  # a QC'd method: leave the unreliable rows out of the heatmaps and profiles
    letters: str = "rna"  # the letters figures draw: "rna" (A, C, G, U: the windows are mRNA) or "dna"
    shard: int | None = None  # score only shard ``shard`` (0-based) of ``num_shards``: a block of the rows
    num_shards: int | None = None
    run_args: dict = field(default_factory=dict)
    fasta: str | None = None  # score this FASTA's records instead of data_dir's TSVs (data_name names the files)

    @property
    def tolerance(self) -> Tolerance:
        """attr: the steps of integrated gradients and when a sequence's attributions add up."""
        if self.n_steps is not None:
            return Tolerance.fixed(self.n_steps, self.max_rel_delta, self.max_abs_delta)
        return Tolerance(self.max_rel_delta, self.max_abs_delta, min(FIRST_STEPS, self.max_ig_steps), self.max_ig_steps)

    @property
    def names(self) -> tuple[str, ...]:
        """The TSV stems scored, in row order (``all``: train, dev, test; a FASTA: ``data_name``)."""
        return ("train", "dev", "test") if self.data_name == "all" and self.fasta is None else (self.data_name,)


def score_file_stem(vis_task: str, data_name: str, layer: int | None = None) -> str:
    """``atten_{data_name}`` / ``attributions_{data_name}`` / ..., with ``_layer_{layer}`` if given.

    >>> score_file_stem("attr", "dev", 3)
    'attributions_dev_layer_3'
    """
    return method(vis_task).file_stem(data_name, layer)


def plot_scores(
    scores: np.ndarray, labels: np.ndarray, lengths: np.ndarray, stem: str, site_index: int, what: str,
    ids: list[str] | None = None,
) -> dict:
    """Heatmap and profile figures of a score matrix, cropped to the longest sequence; the heatmap's rows
    are labelled by ``ids`` (the rows' names) where there are few."""
    from ..plots import score_heatmap, score_profile

    shown = cropped(scores, lengths)
    pos, neg = shown[labels == 1], shown[labels == 0]
    named = {} if ids is None else {"pos_ids": [i for i, y in zip(ids, labels, strict=True) if y == 1],
                                    "neg_ids": [i for i, y in zip(ids, labels, strict=True) if y == 0]}
    return {
        f"{stem}_heatmap": score_heatmap(pos, neg, site_index, title=what, **named),
        f"{stem}_profile": score_profile(pos, neg, site_index, title=what),
    }


def _load(s: VisualizeSettings, m: ScoreMethod):
    """The fine-tuned model, its k and the data set(s) of ``data_name``, all checked."""
    from ..model import load_model

    if s.vis_task != "ism" and (s.ism_window is not None or s.plot_ids is not None):
        raise InputError("--ism_window and --plot_ids apply to --vis_task ism only")
    if not m.layers and s.layer is not None:
        raise InputError(f"--layer does not apply to --vis_task {m.kind} (it mutates the input)")
    model, k = load_model(s.model_path, "classification", attn_implementation=m.attn_implementation,
                          fine_tuned=True)
    check_model_k(f"--kmer {s.k}", s.k, k, f"the model in {s.model_path}")
    n_layers, max_pos = model.config.num_hidden_layers, model.config.max_position_embeddings
    if s.layer is not None and not -n_layers <= s.layer < n_layers:
        raise InputError(f"--layer {s.layer}: the model has {n_layers} layers (0..{n_layers - 1})")
    if s.max_seq_length > max_pos:
        raise InputError(f"--max_seq_length {s.max_seq_length} exceeds the model's {max_pos} positions")
    if s.fasta is not None:  # an unlabelled FASTA's rows are labelled 1 where the method needs a label
        rows = read_fasta_rows(s.fasta)
        return model, k, fasta_dataset(rows, k, s.max_seq_length, m.labelled_input, s.fasta), rows
    paths = [Path(s.data_dir) / f"{n}.tsv" for n in s.names]
    parts = [load_tsv_dataset(path, k, s.max_seq_length, m.labelled_input) for path in paths]
    rows = tsv_record_rows([(path, len(p.names), p.labels) for path, p in zip(paths, parts, strict=True)],
                           len(paths) > 1)
    return model, k, concat_labelled(parts, s.data_dir, s.names), rows


def visualize(s: VisualizeSettings, device: str | torch.device = "cpu") -> dict[str, str]:
    """visualize_all.py: score ``data_name`` with the fine-tuned ``model_path`` and save the arrays.

    Writes the method's ``{stem}_{data_name}.npy`` (``_layer_{layer}`` with ``layer``) and its
    ``.npy.json`` record into ``output_dir``, the method's extra arrays and QC table (attn:
    ``pred_results_{data_name}.npy``; attr: ``attributions_signed_*.npy`` and ``*_qc.tsv``), PNG/PDF
    heatmap and profile figures (and the method's own) if ``plot``, and ``visualize_args.json``.
    Everything is read and checked before anything is written.

    With ``shard`` and ``num_shards`` only a contiguous block of the rows is scored (cut in whole
    ``batch_size`` batches, so a shard computes exactly the batches of an unsharded run and the
    merged arrays are bit-identical to its) and each ``.npy.json`` records the block and the files a
    merge joins (:func:`~m6abert.commands.merge.merge_score_shards`).

    Returns
    -------
    dict
        Output name -> path of every file written.
    """
    m = method(s.vis_task)
    check_shard(s.shard, s.num_shards)
    with held_run_dir(s.output_dir):  # released (and a folder made only for it removed) if the run is refused
        return _visualize(s, m, device)


def _visualize(s: VisualizeSettings, m: ScoreMethod, device) -> dict[str, str]:
    """:func:`visualize` with the output folder held."""
    model, k, full, rows = _load(s, m)
    s = with_record_sites(s, rows)
    sources = _sources(s)
    block = shard_range(len(full.names), s.shard, s.num_shards, unit=1 if m.driver else s.batch_size)
    if m.driver:
        return m.function("driver")(s, model, k, full, sources, device, block, rows=rows)
    data, mine = shard_rows(full, block), rows.take(block)
    common = dict(k=k, max_seq_length=s.max_seq_length, layer=s.layer, dnabert_compat=s.dnabert_compat,
                  batch_size=s.batch_size, device=device)
    own_figures = s.plot and s.site_index is not None and rows.labels is not None  # they assume one site index
    with autocast(device, s.precision):
        res: ScoreOutput = m.function()(model, data, s if own_figures else replace(s, plot=False), common)
    stem = m.file_stem(s.data_name, s.layer)
    check_placed(mine, res.lengths, s)
    meta = {"m6abert_version": __version__, "vis_task": s.vis_task, "data_name": s.data_name,
            "model_path": s.model_path, **forward_meta(s, m), "layer": s.layer, "rows": len(res.scores),
            "sources": sources, "precision": s.precision or "fp32", **{f: getattr(s, f) for f in m.settings},
            **res.meta, **rows_meta(s, m, rows, _signed_track(s, m, rows) if "signed" in res.arrays else None)}
    if s.shard is not None:
        meta["shard"] = shard_record(s, block, len(full.names), *_merged_names(s, m))
    files = {f"{stem}.npy": lambda p: io.save_npy(p, res.scores), f"{stem}.npy.json": lambda p: io.write_json(p, meta)}
    files.update(_extra_writers(s, m, res, mine.ids))
    files[f"{stem}.ids.tsv"] = ids_writer(mine, block.start, rows.has_coords())
    if "bedgraph" in meta and s.shard is None:
        files[meta["bedgraph"]["file"]] = track_writer(meta["bedgraph"], res.arrays["signed"], mine)
    if s.plot:
        files.update(_figures(s, m, res, mine, stem))
    run_record = {**s.run_args, "model_identity": meta["model_identity"]}
    files["visualize_args.json"] = lambda p: io.write_run_args(p.parent, run_record, p.name)
    out = Path(s.output_dir)
    io.write_output_set(out, files, _owned(s, m, stem), what=f"{s.vis_task} scores of {s.data_name}")
    print(f"{s.vis_task} scores of {len(res.scores)} sequences written to {out}")
    return {_key(name, s.data_name): str(out / name) for name in files}


def _figures(s: VisualizeSettings, m: ScoreMethod, res: ScoreOutput, mine: io.RecordRows, stem: str) -> dict:
    """Writers of the heatmap and profile (rows named by id) and of the method's own figures (none when the
    rows have no labels, or when a FASTA's sites differ: they assume one site index)."""
    shown = res.scores if not s.skip_unreliable or res.unreliable is None else _without_unreliable(res)
    files = _plots(s, m, shown, res.lengths, mine.labels, stem, mine.ids, mine.sites)
    if mine.labels is not None and s.site_index is not None:  # the method's figures assume one site index
        files.update(_figure_writers({m.figure_stems(s.data_name, s.layer)[key]: fig
                                      for key, fig in res.figures.items()}))
    return files


def _extra_writers(s: VisualizeSettings, m: ScoreMethod, res: ScoreOutput, ids: list[str]) -> dict[str, io.Writer]:
    """Writers of the method's extra arrays and its QC table (with the rows' ``id`` after ``row``)."""
    names = m.array_names(s.data_name, s.layer)
    files: dict[str, io.Writer] = {names[key]: (lambda p, a=a: io.save_npy(p, a))
                                   for key, a in res.arrays.items() if key in names}
    if res.qc is not None:
        first, *rest = res.qc
        qc = {first: res.qc[first], "id": ids, **{name: res.qc[name] for name in rest}}
        files[m.qc_name(s.data_name, s.layer)] = lambda p: io.write_predictions_tsv(p, qc)
    return files


def _owned(s: VisualizeSettings, m: ScoreMethod, stem: str) -> list[str]:
    """Every file a run of this method, data set and layer may write (stale ones are removed)."""
    figures = [f"{stem}_{kind}" for kind in ("heatmap", "profile")] + list(m.figure_stems(s.data_name, s.layer).values())
    owned = [f"{stem}.npy", f"{stem}.npy.json", *(f"{f}.{fmt}" for f in figures for fmt in FIGURE_FORMATS),
             "visualize_args.json", *m.array_names(s.data_name, s.layer).values(), f"{stem}.ids.tsv",
             *(f"{n.removesuffix('.npy')}.bedgraph" for n in m.array_names(s.data_name, s.layer).values())]
    return owned + ([m.qc_name(s.data_name, s.layer)] if m.qc_table else [])


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


def _merged_names(s: VisualizeSettings, m: ScoreMethod) -> tuple[list[str], list[str]]:
    """The arrays and tables of a run that a merge of its shards joins."""
    stem = m.file_stem(s.data_name, s.layer)
    return [f"{stem}.npy", *m.array_names(s.data_name, s.layer).values()], [
        *([m.qc_name(s.data_name, s.layer)] if m.qc_table else []), f"{stem}.ids.tsv"]


def _without_unreliable(res: ScoreOutput) -> np.ndarray:
    """The scores to plot with the rows the QC does not trust blanked (NaN), so heatmaps and profiles leave
    them out; the saved arrays keep every row."""
    log.info("--skip_unreliable: %d of %d rows left out of the heatmaps and profiles", int(res.unreliable.sum()),
             len(res.unreliable))
    shown = res.scores.copy()
    shown[res.unreliable] = np.nan
    return shown


def _key(name: str, data_name: str) -> str:
    """The name of an output in :func:`visualize`'s result (an array is its stem, pred_results plain)."""
    if name == f"pred_results_{data_name}.npy":
        return "pred_results"
    return name[: -len(".npy")] if name.endswith(".npy") else name


def _sources(s: VisualizeSettings) -> list[dict]:
    """The TSVs scored (or the FASTA, by file name), in row order, with their SHA-256: find_motifs.py checks
    its inputs against them."""
    if s.fasta is not None:
        return [{"fasta": Path(s.fasta).name, "sha256": io.file_sha256(s.fasta)}]
    return [{"tsv": f"{n}.tsv", "sha256": io.file_sha256(Path(s.data_dir) / f"{n}.tsv")} for n in s.names]


def forward_meta(s: VisualizeSettings, m: ScoreMethod) -> dict:
    """What determines the scores besides the data and the method's settings: the model's identity
    (:func:`~m6abert.io.checkpoints.model_identity`) and the settings of its forward passes. A merge
    of shards compares them (:func:`~m6abert.commands.merge.merge_score_shards`)."""
    from ..io.checkpoints import model_identity

    return {"model_identity": model_identity(s.model_path), "max_seq_length": s.max_seq_length,
            "dnabert_compat": s.dnabert_compat, **{f: getattr(s, f) for f in m.forward_settings}}


def _plots(s: VisualizeSettings, m: ScoreMethod, scores: np.ndarray, lengths: np.ndarray,
           labels: np.ndarray | None, stem: str, ids: list[str] | None = None,
           sites: list[int | None] | None = None) -> dict[str, io.Writer]:
    """Writers of the heatmap and profile figures (PNG and PDF); none without labels. Rows whose sites differ
    (a FASTA's, ``s.site_index`` None) are drawn aligned on their sites (:func:`site_aligned`)."""
    if labels is None:
        log.warning("no labels in %s: heatmap and profile plots are skipped", s.fasta or s.data_dir)
        return {}
    if not len(scores):  # an empty shard
        log.info("no rows to draw: heatmap and profile plots are skipped")
        return {}
    what = f"{m.title}: {s.data_name}" + (" split" if s.fasta is None else "")
    if s.layer is not None:
        what += f", encoder layer {s.layer}"
    site_index = s.site_index
    if site_index is None:
        scores, lengths, site_index = site_aligned(scores, lengths, sites)
    return _figure_writers(plot_scores(scores, labels, lengths, stem, site_index, what, ids))


def _figure_writers(figures: dict) -> dict[str, io.Writer]:
    """Writers of each figure (name -> Figure) as PNG and PDF."""
    return {f"{name}.{fmt}": (lambda p, fig=fig, fmt=fmt: io.save_figure(fig, p.with_suffix(""), formats=(fmt,)))
            for name, fig in figures.items() for fmt in FIGURE_FORMATS}


# ---------------------------------------------------------------------------- who the rows are
def with_record_sites(s: VisualizeSettings, rows: io.RecordRows) -> VisualizeSettings:
    """A FASTA's settings with its records' site index (:mod:`m6abert.sites`, ``site=N`` headers) as
    ``site_index`` when they share one, None when they differ (figures then align the rows on their sites;
    ``--ism_window``, relative to one site, is refused)."""
    if s.fasta is None:
        return s
    found = sorted({i for i in rows.sites if i is not None})
    if len(found) <= 1:
        return replace(s, site_index=found[0] if found else s.site_index)
    if s.ism_window is not None:
        raise InputError(f"--ism_window with --fasta {s.fasta}: its records' sites lie at {len(found)} different "
                         f"indices ({found[0]}..{found[-1]}); drop --ism_window (every position is mutated) or "
                         "score records that share one site index")
    log.info("%s: the records' sites lie at %d indices: figures align the rows on their sites", s.fasta, len(found))
    return replace(s, site_index=None)


def site_aligned(scores: np.ndarray, lengths: np.ndarray, sites: list[int | None], fill: float = np.nan
                 ) -> tuple[np.ndarray, np.ndarray, int]:
    """Score rows shifted so that every row's site (its centre where it has none) falls in one column:
    (the shifted rows, ``fill`` where a row has no base, their lengths from column 0, that column)."""
    at = np.asarray([i if i is not None else (n - 1) // 2 for i, n in zip(sites, lengths, strict=True)], np.int64)
    column = int(at.max()) if len(at) else 0
    shift = column - at
    out = np.full((len(at), int((shift + lengths).max()) if len(at) else 0), fill)
    for row, (d, n) in enumerate(zip(shift.tolist(), np.asarray(lengths).tolist(), strict=True)):
        out[row, d : d + n] = scores[row, :n]
    return out, shift + lengths, column


def check_placed(rows: io.RecordRows, lengths: np.ndarray, s: VisualizeSettings) -> None:
    """Refuse a row whose genome blocks do not cover its sequence (a records.tsv of other windows)."""
    for rid, c, n in zip(rows.ids, rows.coords, np.asarray(lengths).tolist(), strict=True):
        if c is not None and c.blocks is not None and sum(e - b for b, e in c.blocks) != n:
            where = io.records_file(Path(s.data_dir) / f"{s.names[0]}.tsv") if s.fasta is None else None
            raise InputError(f"{where[0] if where else s.fasta}: record {rid}: blocks cover "
                             f"{sum(e - b for b, e in c.blocks)} nt, its window has {n}")


def ids_columns(rows: io.RecordRows, first: int, with_coords: bool) -> dict[str, list]:
    """The columns of a ``{stem}.ids.tsv``: ``row`` (of the score array), ``id``, ``label`` ("" unlabelled),
    ``site`` ("" unknown) and, ``with_coords``, the coordinates with ``blocks``."""
    n = len(rows.ids)
    columns = {"row": list(range(first, first + n)), "id": rows.ids,
               "label": [""] * n if rows.labels is None else [int(y) for y in rows.labels],
               "site": ["" if i is None else i for i in rows.sites]}
    if with_coords:
        columns.update(io.coord_columns(rows.coords, with_blocks=True))
    return columns


def ids_writer(rows: io.RecordRows, first: int, with_coords: bool) -> io.Writer:
    columns = ids_columns(rows, first, with_coords)
    return lambda p: io.write_predictions_tsv(p, columns)


def rows_meta(s: VisualizeSettings, m: ScoreMethod, rows: io.RecordRows, track: dict | None) -> dict:
    """What the score record says of its rows: an unlabelled FASTA's attribution target, the sites, the track."""
    out: dict = {}
    if s.fasta is not None and rows.labels is None and m.labelled_input:
        out["labels"] = "none in the FASTA: every record explains label 1 (degraded)"
    if s.fasta is not None and s.site_index is None:
        out["site_index"] = None  # per record: the ids table's site column
    if track is not None:
        out["bedgraph"] = track
    return out


def _signed_track(s: VisualizeSettings, m: ScoreMethod, rows: io.RecordRows) -> dict | None:
    """The bedGraph of a method's signed array (attr: towards degraded) when some row has coordinates."""
    name = m.array_names(s.data_name, s.layer).get("signed")
    if name is None or not rows.has_coords():
        return None
    return {"file": f"{name.removesuffix('.npy')}.bedgraph", "values": name, "oriented": True, "range": None}


def track_writer(spec: dict, values: np.ndarray, rows: io.RecordRows) -> io.Writer:
    """The writer of a bedGraph track (``spec``: the score record's ``bedgraph``) of ``values`` (rows x window
    positions): every row with genome blocks, over ``spec["range"]`` (every base when None), its values
    sign-flipped for a label-0 row when ``spec["oriented"]`` (attributions then point towards degraded)."""
    tracks = []
    for i, c in enumerate(rows.coords):
        if c is None or c.blocks is None:
            continue
        n = sum(e - b for b, e in c.blocks)
        lo, hi = spec["range"] or (0, n)
        sign = -1.0 if spec["oriented"] and rows.labels is not None and rows.labels[i] == 0 else 1.0
        tracks.append(io.Track(c, None, n, max(lo, 0), min(hi, n), sign * np.asarray(values[i, :n], np.float64)))

    def write(path: Path) -> None:
        placed, _ = io.write_bedgraph(path, tracks)
        log.info("%s: %d of %d windows placed in the genome", spec["file"], placed, len(rows.ids))

    return write
