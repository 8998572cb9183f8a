"""``find_motifs.py`` from files to files: motifs enriched in the high-score regions of a score method's
arrays (:mod:`m6abert.score_methods`), with tables and logos. The search itself is :mod:`m6abert.motifs`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import io
from ..constants import LETTERS, MAX_ABS_DELTA, MAX_REL_DELTA, SITE_INDEX
from ..data import read_labelled_scores
from ..motif_summary import motif_records, position_frequency_matrix
from ..motifs import MIN_LEN, MIN_N_MOTIF, PVAL_CUTOFF, WINDOW_SIZE, Motif
from ..score_methods import method, with_qc
from ..utils import InputError, log


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
    max_abs_delta: float = MAX_ABS_DELTA,
    letters: str = "rna",
    fasta: str | os.PathLike | None = None,
) -> list[Motif]:
    """Run the motif search of ``find_motifs.py`` from score and TSV files to result files.

    ``set_name="pos"`` looks for motifs enriched in label-1 sequences using their scores,
    ``"neg"`` for motifs enriched in label-0 sequences using theirs. Everything is read and
    checked before anything is written. Written into ``save_dir``: ``motifs_{set}.tsv``,
    ``motifs_{set}.json`` and, in ``save_dir/{set}/``, ``motif_{MOTIF}_{N}.txt``,
    ``motif_{MOTIF}_{N}_logo.png`` (if ``logos``) and ``find_motifs_args.json`` (if ``run_args``);
    with ``do_plot`` also ``heatmap_{data_name}.png``. The tables name each instance's record (``ids``:
    ``records.tsv``'s ids, a FASTA's, or row numbers).

    Parameters
    ----------
    data_dir, npy_dir: str or PathLike
        Folders of ``{data_name}.tsv`` (None with ``fasta``) and of the ``atten_*``/``attributions_*``/
        ``ism_summary_*`` arrays.
    data_name: str
        ``train``, ``dev``, ``test`` (or any TSV stem), or ``all``.
    vis_task: str
        ``attn``, ``attr`` or ``ism`` (``ism_summary_*.npy``).
    set_name: str
        ``pos`` or ``neg``. Default is "pos".
    site_index: int
        Sequence index of the m6A site; TSV/JSON positions are relative to it. Default is 250.
    logos: bool
        Draw a sequence logo per motif, its x axis in nt from the site (the median start of the motif's
        windows) and in ``letters``. Default is True.
    letters: str
        ``"rna"`` (A, C, G, U: the windows are mRNA) or ``"dna"``: the letters of the logos and their
        titles (the tables keep A, C, G, T). Default is "rna".
    fasta: str or PathLike or None
        The FASTA that ``visualize_all.py --fasta`` scored as ``data_name`` (labelled by its headers'
        ``label=1`` / ``label=0``): its records are searched, positions relative to each record's own site
        (:func:`m6abert.data.read_labelled_scores`). Default is None (``data_dir``'s TSVs).
    run_args: dict or None
        Resolved script arguments to record. Default is None.

    Other parameters are those of :func:`motif_analysis`.

    Returns
    -------
    list[Motif]
    """
    from ..motifs import motif_analysis

    _check_flags(data_name, set_name, background, letters)
    data = read_labelled_scores(data_dir, npy_dir, data_name, vis_task, fasta)
    is_target = data.labels == (1 if set_name == "pos" else 0)
    if skip_unreliable:
        is_target &= _reliable_rows(Path(npy_dir), data_name, vis_task, len(data.labels), max_rel_delta,
                                    max_abs_delta)
    if not is_target.any():
        reliable = " reliable" if skip_unreliable else ""
        raise InputError(f"{fasta or data_dir}: no{reliable} label-{int(set_name == 'pos')} rows in {data_name!r}, "
                         "nothing to search")
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
    write = _motif_writer(motifs, _target_records(motifs, data, is_target, site_index), data if do_plot else None,
                          set_name, data_name, site_index, logos, run_args, LETTERS[letters])
    save = Path(save_dir)
    io.write_output_set(save, write, owned, what=f"{set_name} motifs")
    log.info("%d motifs written to %s (motifs_%s.tsv, %s/)", len(motifs), save, set_name, set_name)
    return motifs


def _check_flags(data_name: str, set_name: str, background: str, letters: str) -> None:
    """Refuse a ``data_name`` with folder parts, an unknown ``--set``, ``--background`` or ``--letters``."""
    from ..motifs import BACKGROUNDS

    if not data_name or Path(data_name).name != data_name or data_name.startswith("."):
        raise InputError(f"--data_name {data_name!r} must be a TSV stem such as train, dev, test or all "
                         "(no folder parts): every output stays inside --save_file_dir")
    if set_name not in ("pos", "neg"):
        raise InputError(f"--set must be 'pos' or 'neg', not {set_name!r}")
    if background not in BACKGROUNDS:
        raise InputError(f"--background must be one of {', '.join(BACKGROUNDS)}, not {background!r}")
    if letters not in LETTERS:
        raise InputError(f"--letters must be one of {', '.join(LETTERS)}, not {letters!r}")


def _target_records(motifs: list[Motif], data, is_target: np.ndarray, site_index: int) -> list[dict]:
    """The motif records (:func:`~m6abert.motif_summary.motif_records`) with the target rows' ids and sites."""
    ids = [i for i, t in zip(data.ids, is_target, strict=True) if t]
    sites = None if data.sites is None else [i for i, t in zip(data.sites, is_target, strict=True) if t]
    return motif_records(motifs, site_index, ids, sites)


def _motif_writer(motifs: list[Motif], records: list[dict], plotted, set_name: str, data_name: str, site_index: int,
                  logos: bool, run_args: dict | None, letters: str = "ACGU"):
    """The writer of every find_motifs.py output into one folder (the staging folder of the set); logos start
    at the median of their windows' starts relative to the site (each record's own, as ``records`` say)."""
    if logos or plotted is not None:
        from .. import plots

    def write_all(folder: Path) -> None:
        io.write_motif_outputs(folder, records, site_index=site_index, set_name=set_name, with_ids=True)
        for m, r in zip(motifs, records, strict=True) if logos else ():
            shift = [p - start for p, (start, _) in zip(r["positions"], m.regions, strict=True)]  # -site of each
            starts = [start for start, _ in m.windows]
            first = int(np.median(starts)) + shift[0] if len(set(shift)) == 1 else \
                int(np.median(np.add(starts, shift)))
            name = m.motif.translate(str.maketrans("ACGT", letters))
            fig = plots.motif_logo(position_frequency_matrix(m.seqs), f"{name} (n = {m.n_instances}, windows from "
                                   f"{first:+d} nt, the median)", first, letters)
            io.save_figure(fig, folder / set_name / f"motif_{m.motif}_{m.n_instances}_logo")
        if plotted is not None:
            fig = plots.score_heatmap(plotted.scores[plotted.labels == 1], plotted.scores[plotted.labels == 0],
                                      site_index)
            io.save_figure(fig, folder / f"heatmap_{data_name}")
        if run_args is not None:
            io.write_run_args(folder / set_name, run_args, "find_motifs_args.json")

    return write_all


def _reliable_rows(npy_dir: Path, data_name: str, vis_task: str, n: int, max_rel_delta: float,
                   max_abs_delta: float = MAX_ABS_DELTA) -> np.ndarray:
    """Rows whose scores the method's QC trusts, from the QC table visualize_all.py wrote beside the scores
    (train, dev, test for "all"): its QC column (the relative completeness error of integrated gradients)
    at most ``max_rel_delta``, or its absolute column (the absolute error) at most ``max_abs_delta``."""
    m = method(vis_task)
    if m.qc_table is None:
        raise InputError(f"--skip_unreliable applies to --vis_task {' or '.join(with_qc())} (the completeness of "
                         "attributions)")
    names = [data_name] if data_name != "all" or (npy_dir / m.qc_name("all")).exists() else ["train", "dev", "test"]
    tables = [io.read_columns(npy_dir / m.qc_name(name), "completeness table") for name in names]
    rel = np.concatenate([np.asarray(t.get(m.qc_column, []), dtype=np.float64) for t in tables])
    if len(rel) != n:
        raise InputError(f"{npy_dir}: the completeness tables of {data_name!r} have {len(rel)} rows, the scores {n}")
    reliable = rel <= max_rel_delta
    if m.qc_abs_column is not None and all(m.qc_abs_column in t for t in tables):
        reliable |= np.concatenate([np.asarray(t[m.qc_abs_column], dtype=np.float64) for t in tables]) <= max_abs_delta
    log.info("--skip_unreliable: %d of %d sequences left out (relative completeness error above %g and absolute "
             "above %g)", int((~reliable).sum()), n, max_rel_delta, max_abs_delta)
    return reliable


def profile_peak_of_files(data_dir: str | os.PathLike | None, npy_dir: str | os.PathLike, data_name: str,
                          vis_task: str, label: int = 1, smooth: int | None = None, site_index: int = SITE_INDEX,
                          fasta: str | os.PathLike | None = None) -> int:
    """Where the smoothed mean score profile of the ``label`` rows peaks, in nt relative to the site, from
    the TSV(s) of ``data_name`` (or ``fasta``: its records aligned on their own sites) and the method's
    score arrays (:func:`m6abert.profiles.profile_peak`)."""
    from ..profiles import SMOOTH, profile_peak
    from .visualize import site_aligned

    data = read_labelled_scores(data_dir, npy_dir, data_name, vis_task, fasta)
    scores, lengths = data.scores, np.asarray([len(s) for s in data.seqs], np.int64)
    if data.sites is not None:
        scores, lengths, site_index = site_aligned(scores, lengths, data.sites, fill=0.0)  # 0 past ends, as TSVs
    return profile_peak(scores, data.labels, label=label, site_index=site_index, length=int(lengths.max()),
                        smooth=SMOOTH if smooth is None else smooth)
