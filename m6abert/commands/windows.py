"""``m6abert-windows`` from files to files: m6A sites as genome coordinates (or transcripts to scan) to a
FASTA of windows (``--out``) with their coordinates in the headers (:mod:`m6abert.io.coords`), and its run
record ``<out name>.windows_args.json`` next to it, written as one set after every input was checked.

The windows are what ``get_input.py`` (``pos.fa``/``neg.fa``, ``--pos_fasta``/``--neg_fasta``) and
``run_predict_degradation.py --predict_fasta`` read: every header carries ``site=N``, the site's index,
so a window cut short at a transcript or chromosome end keeps its site.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from .. import io
from ..preempt import held_run_dir
from ..utils import InputError, log
from ..windows import (
    DEFAULT_EXTEND,
    Window,
    check_transcripts,
    plan_windows,
    scan_records,
    scan_transcripts,
    select_ids,
    site_windows,
    tally,
)

RECORD_SUFFIX = ".windows_args.json"  # pos.fa -> pos.fa.windows_args.json: pos.fa and neg.fa share a folder

PathLike = str | os.PathLike


def record_name(out: PathLike) -> str:
    """The run record's name next to the FASTA ``out``.

    >>> record_name("data/pos.fa")
    'pos.fa.windows_args.json'
    """
    return Path(out).name + RECORD_SUFFIX


def make_windows(out: PathLike, *, sites: PathLike | None = None, genome: PathLike | None = None,
                 gtf: PathLike | None = None, scan: PathLike | None = None, scan_gtf: bool = False,
                 transcript: str | tuple[str, ...] = "longest", extend_len: int = DEFAULT_EXTEND,
                 strict: bool = False, run_args: dict | None = None) -> dict:
    """Write the windows FASTA ``out`` of one of three inputs (checked combinations: the CLI's):

    * ``sites`` + ``genome`` (+ ``gtf``: spliced windows of the transcript(s) ``transcript`` picks:
      ``"longest"``, ``"all"`` or a tuple of ids; without: genomic windows on the site's strand);
    * ``scan`` (a transcript FASTA): every DRACH site, without genome coordinates;
    * ``scan_gtf`` with ``gtf`` + ``genome``: every DRACH site of every transcript (or those ``transcript``
      names).

    ``strict`` refuses a site that is not an A or lies in no exon (else skipped with a warning).

    Returns
    -------
    dict
        What was done: ``sites`` and the skipped ones (``not_a``, ``no_exon``), or ``transcripts``
        scanned; ``written`` windows and how many are ``shorter`` than ``2 * extend_len + 1`` nt.

    Raises
    ------
    InputError
        One line, nothing written: any input refused by its reader or the checks of
        :func:`m6abert.windows.plan_windows`, or no window to write.
    """
    out = Path(out)
    with held_run_dir(out.parent), contextlib.ExitStack() as stack:
        g = stack.enter_context(io.open_genome(genome)) if genome is not None else None
        if sites is not None:
            windows, report = _of_sites(sites, g, gtf, transcript, strict, extend_len)
        elif scan is not None:
            windows, report = _of_fasta(scan, transcript, extend_len)
        elif scan_gtf and gtf is not None and g is not None:
            windows, report = _of_gtf(gtf, g, transcript, extend_len)
        else:
            raise ValueError("give sites and genome, scan, or scan_gtf with gtf and genome")
        counts: dict[str, int] = {}  # filled while the FASTA is written, before the record is
        files = {out.name: lambda p: _write(p, tally(windows, counts, extend_len), out),
                 record_name(out): lambda p: io.write_run_args(
                     p.parent, {**(run_args or {}), "result": {**report, **counts}}, p.name)}
        io.write_output_set(out.parent, files, list(files), what=f"windows {out.name}")
    shorter = f" ({counts['shorter']} shorter than {2 * extend_len + 1} nt, cut at an end: site=N in their header)"
    log.info("wrote %d windows to %s%s", counts["written"], out, shorter if counts["shorter"] else "")
    return {**report, **counts}


def _write(path: Path, windows: Iterator[Window], out: Path) -> None:
    if not io.write_windows_fasta(path, ((w.header(), w.seq) for w in windows)):
        raise InputError(f"{out}: no windows to write (every site skipped, or no DRACH site)")


def _of_sites(sites: PathLike, g: io.Genome, gtf: PathLike | None, transcript, strict: bool,
              extend_len: int) -> tuple[Iterator[Window], dict]:
    site_list = io.read_sites(sites)
    transcripts = io.read_transcripts(gtf) if gtf is not None else None
    planned, report = plan_windows(site_list, g, transcripts, transcript, strict, (str(sites), str(g.path), str(gtf)))
    return site_windows(planned, g, extend_len), report


def _of_fasta(scan: PathLike, transcript, extend_len: int) -> tuple[Iterator[Window], dict]:
    records = io.read_fasta(scan)
    io.check_unique_ids((scan, records))
    chosen = select_ids({r.id: r for r in records}, transcript, str(scan))
    return scan_records(chosen.values(), extend_len), {"transcripts": len(chosen)}


def _of_gtf(gtf: PathLike, g: io.Genome, transcript, extend_len: int) -> tuple[Iterator[Window], dict]:
    transcripts = select_ids(io.read_transcripts(gtf), transcript, str(gtf))
    check_transcripts(transcripts.values(), g.lengths, str(gtf), str(g.path))
    return scan_transcripts(g, transcripts.values(), extend_len), {"transcripts": len(transcripts)}
