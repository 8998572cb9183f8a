"""Interpretation files: per-nucleotide score arrays with their labelled sequences, motif outputs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..utils import InputError
from .files import load_npy, write_json, write_text
from .sequences import read_tsv

# ---------------------------------------------------------------------------- motifs
SCORE_FILE_STEMS = {"attn": "atten", "attr": "attributions"}


def load_score_matrix(path: str | os.PathLike, what: str = "score array") -> np.ndarray:
    """Load per-nucleotide scores (``atten_*.npy``, ``attributions_*.npy``) as float64 (n, W).

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


class LabelledScores(NamedTuple):
    """Sequences, labels and score rows of one or more data sets, row-aligned."""

    seqs: list[str]
    labels: np.ndarray  # (n,) int64
    scores: np.ndarray  # (n, W) float64


def read_labelled_scores(
    data_dir: str | os.PathLike, npy_dir: str | os.PathLike, data_name: str, vis_task: str
) -> LabelledScores:
    """Read ``{name}.tsv`` with its ``{atten|attributions}_{name}.npy`` and check they belong together.

    Sequences are rebuilt from the k-mer sentences. ``data_name="all"`` reads ``{stem}_all.npy``
    (visualize_all.py --data_name all) if present, else the per-set arrays; it reads train, dev and
    test and concatenates them in that order (TSV rows and score rows alike).

    Parameters
    ----------
    data_dir, npy_dir: str or PathLike
        Folders of the TSVs and of the score arrays.
    data_name: str
        TSV stem (``train``, ``dev``, ``test``) or ``all``.
    vis_task: str
        ``attn`` (``atten_*.npy``) or ``attr`` (``attributions_*.npy``).

    Raises
    ------
    InputError
        A missing or malformed file, a row-count mismatch, scores narrower than the
        sequences, or score widths that differ between the sets of "all".
    """
    from ..kmer import kmer2seq
    from ..utils import log

    if vis_task not in SCORE_FILE_STEMS:
        raise InputError(f"vis_task must be 'attn' or 'attr', not {vis_task!r}")
    stem = SCORE_FILE_STEMS[vis_task]
    names = ("train", "dev", "test") if data_name == "all" else (data_name,)
    if data_name == "all" and (Path(npy_dir) / f"{stem}_all.npy").exists():
        # visualize_all.py --data_name all: one array over train, dev, test in that order
        groups = [(names, Path(npy_dir) / f"{stem}_all.npy")]
    else:
        groups = [((name,), Path(npy_dir) / f"{stem}_{name}.npy") for name in names]
    parts = []
    for tsv_names, npy_path in groups:
        scores = load_score_matrix(npy_path)
        tables = [(Path(data_dir) / f"{name}.tsv", read_tsv(Path(data_dir) / f"{name}.tsv")) for name in tsv_names]
        for tsv_path, table in tables:
            _check_kmer_sentences(table.sentences, tsv_path)
        tsv_path = tables[0][0] if len(tables) == 1 else Path(data_dir) / "{train,dev,test}.tsv"
        seqs = [kmer2seq(s) for _, table in tables for s in table.sentences]
        labels = np.concatenate([table.labels for _, table in tables])
        if scores.shape[0] != len(seqs):
            raise InputError(f"{npy_path}: {scores.shape[0]} score rows, but {tsv_path} has {len(seqs)} sequences")
        longest = max(len(s) for s in seqs)
        if scores.shape[1] < longest:
            raise InputError(
                f"{npy_path}: scores are {scores.shape[1]} positions wide, "
                f"shorter than the {longest}-nt sequences of {tsv_path}"
            )
        parts.append((seqs, labels, scores))
    widths = sorted({p[2].shape[1] for p in parts})
    if len(widths) > 1:
        raise InputError(f"{npy_dir}: score widths differ between train, dev and test ({widths})")
    scores = np.concatenate([p[2] for p in parts])
    n_bad = int((~np.isfinite(scores)).any(axis=1).sum())
    if n_bad:
        log.warning("%s: %d score rows hold NaN or infinite values; they give no motif candidates", npy_dir, n_bad)
    return LabelledScores([s for p in parts for s in p[0]], np.concatenate([p[1] for p in parts]), scores)


def _check_kmer_sentences(sentences: list[str], path: Path) -> None:
    """Raise on letters other than A, C, G, T, N, or k-mers of different lengths in one row.

    Either would make :func:`~m6abert.kmer.kmer2seq` rebuild a wrong sequence without a word.
    """
    import re

    illegal = re.compile(r"[^ACGTN ]")
    for i, s in enumerate(sentences, 1):
        bad = illegal.search(s)
        if bad:
            raise InputError(f"{path}: row {i}: illegal letter {bad.group(0)!r} in the k-mers (allowed: A, C, G, T, N)")
        lengths = {len(t) for t in s.split()}
        if len(lengths) > 1:
            first = len(s.split(maxsplit=1)[0])
            other = next(n for n in map(len, s.split()) if n != first)
            raise InputError(f"{path}: row {i}: k-mers of length {first} and {other} in one row (a damaged k-mer sentence)")


def write_motif_outputs(
    save_dir: str | os.PathLike,
    motifs: list,
    site_index: int = 250,
    prefix: str = "",
    set_name: str | None = None,
) -> list[Path]:
    """Write motif search results: one text file per motif, a TSV summary and a JSON record.

    Files (``S = "_" + set_name`` or nothing):

    * ``[set_name/]{prefix}motif_{MOTIF}_{N}.txt``: the N window sequences, one per line ("\\n"),
      as the original wrote them;
    * ``{prefix}motifs{S}.tsv``: columns motif, consensus (the windows' conserved core), instances,
      p_value, p_adjusted, positions
      (instance starts relative to the m6A site, ``start - site_index``, comma-separated);
    * ``{prefix}motifs{S}.json``: ``{"site_index": ..., "motifs": {MOTIF: {...}}}`` with every
      field of each motif (replaces the original's pickle).

    Parameters
    ----------
    save_dir: str or PathLike
        Output folder (created).
    motifs: list[m6abert.motifs.Motif]
        In the order to report them.
    site_index: int
        Sequence index of the m6A site. Default is 250.
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
    from ..motifs import consensus

    rows = ["motif\tconsensus\tinstances\tp_value\tp_adjusted\tpositions"]
    record: dict[str, dict] = {}
    for m in motifs:
        path = motif_dir / f"{prefix}motif_{m.motif}_{m.n_instances}.txt"
        write_text(path, "".join(s + "\n" for s in m.seqs))
        written.append(path)
        positions = [int(start) - site_index for start, _ in m.regions]
        rows.append(
            f"{m.motif}\t{consensus(m.seqs)}\t{m.n_instances}\t{float(m.p_value):.6g}\t{float(m.p_adjusted):.6g}\t"
            + ",".join(map(str, positions))
        )
        record[m.motif] = {
            "consensus": consensus(m.seqs),
            "n_instances": int(m.n_instances),
            "p_value": float(m.p_value),
            "p_adjusted": float(m.p_adjusted),
            "seq_idx": [int(i) for i in m.seq_idx],
            "regions": [[int(s), int(e)] for s, e in m.regions],
            "positions": positions,
            "windows": [[int(s), int(e)] for s, e in m.windows],
            "seqs": list(m.seqs),
        }
    table, js = save / f"{prefix}motifs{tag}.tsv", save / f"{prefix}motifs{tag}.json"
    write_text(table, "\n".join(rows) + "\n")
    write_json(js, {"site_index": site_index, "motifs": record})
    return [*written, table, js]
