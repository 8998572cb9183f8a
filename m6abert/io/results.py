"""Interpretation files: per-nucleotide score arrays, motif outputs and genome tracks (BED, bedGraph)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..constants import SITE_INDEX
from ..utils import InputError
from .coords import WindowCoords, genome_positions
from .files import load_npy, write_json, write_text

PREDICTION_BED = "predictions.bed"  # P(degraded) of every record with coordinates, BED6

# ---------------------------------------------------------------------------- motifs


def load_score_matrix(path: str | os.PathLike, what: str = "score array") -> np.ndarray:
    """Load per-nucleotide scores (``atten_*.npy``, ``attributions_*.npy``, ``ism_summary_*.npy``) as float64 (n, W).

    Raises
    ------
    InputError
        Missing file, not a NumPy array, not 2-D or not numeric.
    """
    if Path(path).is_dir():
        raise InputError(f"{path}: is a directory, expected a {what} (.npy)")
    arr = load_npy(path)
    if arr.ndim != 2:
        raise InputError(f"{path}: expected a 2-D {what} (sequences x positions), found shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(f"{path}: {what} has dtype {arr.dtype}, expected numbers")
    return arr.astype(np.float64, copy=False)


def write_motif_outputs(
    save_dir: str | os.PathLike,
    records: list[dict],
    site_index: int = SITE_INDEX,
    prefix: str = "",
    set_name: str | None = None,
    with_ids: bool | None = None,
) -> list[Path]:
    """Write motif search results: one text file per motif, a TSV summary and a JSON record.

    Files (``S = "_" + set_name`` or nothing):

    * ``[set_name/]{prefix}motif_{MOTIF}_{N}.txt``: the N window sequences, one per line ("\\n"),
      as the original wrote them;
    * ``{prefix}motifs{S}.tsv``: columns motif, consensus (the windows' conserved core), instances,
      p_value, p_adjusted, positions (instance starts relative to the m6A site, comma-separated) and,
      when the records carry ``ids``, ids (the record id of each instance, in the same order);
    * ``{prefix}motifs{S}.json``: ``{"site_index": ..., "motifs": {MOTIF: {...}}}`` with every
      field of each record (replaces the original's pickle).

    Parameters
    ----------
    save_dir: str or PathLike
        Output folder (created).
    records: list[dict]
        One per motif, in the order to report them, as :func:`m6abert.motif_summary.motif_records` makes
        them: ``motif``, ``consensus``, ``n_instances``, ``p_value``, ``p_adjusted``, ``positions``,
        ``seqs`` and further JSON fields.
    site_index: int
        Sequence index of the m6A site, recorded in the JSON. Default is 250.
    prefix: str
        Prepended to every file name. Default is "".
    set_name: str or None
        ``pos``/``neg``: motif files go to ``save_dir/set_name/`` and the tables are named
        ``motifs_{set_name}``. Default is None.
    with_ids: bool or None
        Write the ``ids`` column (None: when the records carry ``ids``). Default is None.

    Returns
    -------
    list[Path]
        The files written.
    """
    save = Path(save_dir)
    motif_dir = save / set_name if set_name else save
    tag = f"_{set_name}" if set_name else ""
    written: list[Path] = []
    with_ids = any("ids" in r for r in records) if with_ids is None else with_ids
    rows = ["motif\tconsensus\tinstances\tp_value\tp_adjusted\tpositions" + "\tids" * with_ids]
    for r in records:
        path = motif_dir / f"{prefix}motif_{r['motif']}_{r['n_instances']}.txt"
        write_text(path, "".join(s + "\n" for s in r["seqs"]))
        written.append(path)
        rows.append(f"{r['motif']}\t{r['consensus']}\t{r['n_instances']}\t{r['p_value']:.6g}\t"
                    f"{r['p_adjusted']:.6g}\t" + ",".join(map(str, r["positions"]))
                    + ("\t" + ",".join(r.get("ids", [])) if with_ids else ""))
    table, js = save / f"{prefix}motifs{tag}.tsv", save / f"{prefix}motifs{tag}.json"
    write_text(table, "\n".join(rows) + "\n")
    motifs = {r["motif"]: {key: v for key, v in r.items() if key != "motif"} for r in records}
    write_json(js, {"site_index": site_index, "motifs": motifs})
    return [*written, table, js]


# ---------------------------------------------------------------------------- genome tracks
def bed_score(probability: float) -> int:
    """A BED score (0..1000) of P(degraded): ``round(P x 1000)``."""
    return int(round(float(probability) * 1000))


def bed_rows(ids: Iterable[str], coords: Iterable[WindowCoords | None], probs: Iterable[float]) -> tuple[list, int]:
    """BED6 rows (chrom, start, end, name, score, strand) of the m6A sites of the records with coordinates:
    start = pos - 1, end = pos, score :func:`bed_score`; and how many records had none."""
    rows, without = [], 0
    for rid, c, p in zip(ids, coords, probs, strict=True):
        if c is None:
            without += 1
        else:
            rows.append((c.chrom, c.pos - 1, c.pos, rid, bed_score(p), c.strand))
    return rows, without


def write_bed(path: str | os.PathLike, rows: Iterable[tuple]) -> None:
    """BED rows sorted by chrom (byte order, as ``LC_ALL=C sort``), then start; ties in their given order."""
    ordered = sorted(rows, key=lambda r: (r[0], r[1]))
    write_text(path, "".join("\t".join(map(str, r)) + "\n" for r in ordered))


class Track(NamedTuple):
    """Per-nucleotide values of one window to place in the genome: window positions ``[lo, hi)`` of ``values``
    (indexed by window position), the window of ``length`` nt with its ``coords`` and site index."""

    coords: WindowCoords
    site: int | None
    length: int
    lo: int
    hi: int
    values: np.ndarray


def write_bedgraph(path: str | os.PathLike, tracks: Iterable[Track]) -> tuple[int, int]:
    """A bedGraph of per-nucleotide values in genome coordinates: one line per base (chrom, start, end =
    start + 1, value), sorted by chrom (byte order), then start; a base covered by several windows gets
    the mean of their values (bedGraph lines must not overlap). Windows map back base by base through
    :func:`~m6abert.io.coords.genome_positions` (exon by exon with ``blocks``); a window without blocks and
    without a site index cannot be placed and is skipped, as are non-finite values.

    Returns
    -------
    (windows placed, windows skipped)
    """
    by_chrom: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    placed = skipped = 0
    for t in tracks:
        if t.coords.blocks is None and t.site is None:
            skipped += 1
            continue
        where = genome_positions(t.coords, t.length, t.site or 0)[t.lo : t.hi]
        values = np.asarray(t.values[t.lo : t.hi], dtype=np.float64)
        keep = np.isfinite(values)
        by_chrom.setdefault(t.coords.chrom, []).append((where[keep], values[keep]))
        placed += 1
    lines = []
    for chrom in sorted(by_chrom):
        where = np.concatenate([w for w, _ in by_chrom[chrom]])
        values = np.concatenate([v for _, v in by_chrom[chrom]])
        bases, inverse = np.unique(where, return_inverse=True)
        means = np.bincount(inverse, weights=values, minlength=len(bases)) / np.bincount(inverse, minlength=len(bases))
        lines += [f"{chrom}\t{b}\t{b + 1}\t{v:.6g}\n" for b, v in zip(bases.tolist(), means.tolist(), strict=True)]
    write_text(path, "".join(lines))
    return placed, skipped
