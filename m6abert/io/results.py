"""Interpretation files: per-nucleotide score arrays and motif outputs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..constants import SITE_INDEX
from ..utils import InputError
from .files import load_npy, write_json, write_text

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
) -> list[Path]:
    """Write motif search results: one text file per motif, a TSV summary and a JSON record.

    Files (``S = "_" + set_name`` or nothing):

    * ``[set_name/]{prefix}motif_{MOTIF}_{N}.txt``: the N window sequences, one per line ("\\n"),
      as the original wrote them;
    * ``{prefix}motifs{S}.tsv``: columns motif, consensus (the windows' conserved core), instances,
      p_value, p_adjusted, positions (instance starts relative to the m6A site, comma-separated);
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

    Returns
    -------
    list[Path]
        The files written.
    """
    save = Path(save_dir)
    motif_dir = save / set_name if set_name else save
    tag = f"_{set_name}" if set_name else ""
    written: list[Path] = []
    rows = ["motif\tconsensus\tinstances\tp_value\tp_adjusted\tpositions"]
    for r in records:
        path = motif_dir / f"{prefix}motif_{r['motif']}_{r['n_instances']}.txt"
        write_text(path, "".join(s + "\n" for s in r["seqs"]))
        written.append(path)
        rows.append(f"{r['motif']}\t{r['consensus']}\t{r['n_instances']}\t{r['p_value']:.6g}\t"
                    f"{r['p_adjusted']:.6g}\t" + ",".join(map(str, r["positions"])))
    table, js = save / f"{prefix}motifs{tag}.tsv", save / f"{prefix}motifs{tag}.json"
    write_text(table, "\n".join(rows) + "\n")
    motifs = {r["motif"]: {key: v for key, v in r.items() if key != "motif"} for r in records}
    write_json(js, {"site_index": site_index, "motifs": motifs})
    return [*written, table, js]
