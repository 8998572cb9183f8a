"""Windows around m6A sites cut from a genome (``m6abert-windows``): genomic or spliced, and DRACH scans.

No file access here: the genome is anything with ``lengths`` (chromosome -> nt) and ``fetch(chrom, start,
end)`` (0-based half-open, upper case), as :class:`m6abert.io.Genome`; sites and transcripts are
:class:`m6abert.io.GenomeSite` and :class:`m6abert.io.Transcript`.

* :func:`genomic_window`: ``extend_len`` nt of genome each side of the site, on the site's strand
  (reverse-complemented on ``-``), clipped at the chromosome's ends (shorter, its site index then not
  ``extend_len``).
* :func:`spliced_window`: ``extend_len`` nt of the spliced mRNA of a transcript each side of the site
  (exons joined 5' to 3'; on ``-`` reverse-complemented), clipped at the transcript's ends.
* Every window records its ``blocks``: the genomic intervals (0-based half-open) its bases come from, in
  window order (:mod:`m6abert.io.coords`), so :func:`m6abert.io.genome_positions` maps each base back.
* :func:`scan_records` / :func:`scan_transcripts`: every DRACH site (D=A/G/T, R=A/G, A, C, H=A/C/T; the A
  is the site) of transcript sequences or of annotated transcripts as windows.

>>> reverse_complement("AACGT"), drach_sites("GGACTTGAACA")
('ACGTT', [2, 8])
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple, Protocol

import numpy as np

from . import io
from .constants import SITE_INDEX
from .io import GenomeSite, Transcript, WindowCoords
from .utils import InputError, log

COMPLEMENT = str.maketrans("ACGTN", "TGCAN")
DRACH = re.compile(r"(?=[AGT][AG]AC[ACT])")
DEFAULT_EXTEND = SITE_INDEX  # 250 nt each side: the paper's 501-nt windows
CHOICES = ("longest", "all")
FIRST_IDS = 5  # ids a warning names


class GenomeLike(Protocol):
    lengths: dict[str, int]

    def fetch(self, chrom: str, start: int, end: int) -> str: ...


class Cut(NamedTuple):
    """A window's sequence (5' to 3' on its strand), its site's index and the genomic blocks it comes from."""

    seq: str
    site: int
    blocks: tuple[tuple[int, int], ...]


class Window(NamedTuple):
    """A window record: id, sequence, 0-based site index, genomic coordinates (None: a transcript FASTA's)."""

    id: str
    seq: str
    site: int
    coords: WindowCoords | None

    def header(self) -> str:
        """Its FASTA header without ``>`` (:func:`m6abert.io.header_text`; ``id site=N`` without coordinates)."""
        return io.header_text(self.id, self.coords, self.site) if self.coords else f"{self.id} site={self.site}"


def reverse_complement(seq: str) -> str:
    return seq.translate(COMPLEMENT)[::-1]


def drach_sites(seq: str) -> list[int]:
    """0-based indices of the A of every DRACH motif of ``seq`` (upper case, T; overlapping ones too)."""
    return [m.start() + 2 for m in DRACH.finditer(seq)]


# ---------------------------------------------------------------------------- cutting
def genomic_window(genome: GenomeLike, chrom: str, start: int, strand: str, extend_len: int = DEFAULT_EXTEND) -> Cut:
    """``extend_len`` nt of genome each side of the base ``start`` (0-based) on ``strand``, clipped at the
    chromosome's ends."""
    lo, hi = max(0, start - extend_len), min(genome.lengths[chrom], start + extend_len + 1)
    seq = genome.fetch(chrom, lo, hi)
    if strand == "+":
        return Cut(seq, start - lo, ((lo, hi),))
    return Cut(reverse_complement(seq), hi - 1 - start, ((lo, hi),))


def exons_5to3(tx: Transcript) -> tuple[tuple[int, int], ...]:
    """The exons in transcript order (descending on ``-``)."""
    return tx.exons if tx.strand == "+" else tx.exons[::-1]


def mrna_offset(tx: Transcript, pos: int) -> int | None:
    """The 0-based index in the spliced mRNA of the genome base ``pos``, or None (not in an exon)."""
    offset = 0
    for s, e in exons_5to3(tx):
        if s <= pos < e:
            return offset + (pos - s if tx.strand == "+" else e - 1 - pos)
        offset += e - s
    return None


def mrna_blocks(tx: Transcript, lo: int, hi: int) -> tuple[tuple[int, int], ...]:
    """The genomic intervals of the mRNA's bases ``lo:hi``, in mRNA order (one per exon touched)."""
    blocks, offset = [], 0
    for s, e in exons_5to3(tx):
        a, b = max(lo, offset), min(hi, offset + e - s)
        if a < b:
            blocks.append((s + a - offset, s + b - offset) if tx.strand == "+" else (e - (b - offset), e - (a - offset)))
        offset += e - s
    return tuple(blocks)


def blocks_sequence(genome: GenomeLike, chrom: str, strand: str, blocks: Iterable[tuple[int, int]]) -> str:
    """The bases of ``blocks`` (in window order) on ``strand``, joined."""
    parts = (genome.fetch(chrom, s, e) for s, e in blocks)
    return "".join(parts if strand == "+" else (reverse_complement(p) for p in parts))


def spliced_window(genome: GenomeLike, tx: Transcript, pos: int, extend_len: int = DEFAULT_EXTEND) -> Cut | None:
    """``extend_len`` nt of ``tx``'s spliced mRNA each side of the genome base ``pos`` (clipped at the
    transcript's ends), or None when ``pos`` is in no exon of ``tx``."""
    offset = mrna_offset(tx, pos)
    if offset is None:
        return None
    lo, hi = max(0, offset - extend_len), min(tx.length, offset + extend_len + 1)
    blocks = mrna_blocks(tx, lo, hi)
    return Cut(blocks_sequence(genome, tx.chrom, tx.strand, blocks), offset - lo, blocks)


class ExonIndex:
    """The transcripts whose exon holds a genome base, by chromosome and strand (sorted exon starts)."""

    def __init__(self, transcripts: Iterable[Transcript]):
        rows = defaultdict(list)
        for tx in transcripts:
            for s, e in tx.exons:
                rows[(tx.chrom, tx.strand)].append((s, e, tx))
        self._by = {}
        for key, exons in rows.items():
            exons.sort(key=lambda r: r[0])
            starts = np.array([r[0] for r in exons], dtype=np.int64)
            ends = np.array([r[1] for r in exons], dtype=np.int64)
            self._by[key] = (starts, ends, [r[2] for r in exons], int((ends - starts).max()))

    def holding(self, chrom: str, strand: str, pos: int) -> list[Transcript]:
        """The transcripts on ``chrom``/``strand`` with an exon holding ``pos`` (0-based), by id."""
        if (chrom, strand) not in self._by:
            return []
        starts, ends, txs, longest = self._by[(chrom, strand)]
        lo = int(np.searchsorted(starts, pos - longest + 1, side="left"))
        hi = int(np.searchsorted(starts, pos, side="right"))
        return sorted((txs[i] for i in range(lo, hi) if ends[i] > pos), key=lambda t: t.id)


def parse_choice(text: str | None) -> str | tuple[str, ...]:
    """``--transcript``: ``"longest"`` (None too), ``"all"`` or a tuple of transcript ids (``A,B``).

    >>> parse_choice(None), parse_choice("all"), parse_choice("T1,T2")
    ('longest', 'all', ('T1', 'T2'))
    """
    if text is None or text in CHOICES:
        return text or "longest"
    ids = tuple(text.split(","))
    if any(not i.strip() or i != i.strip() for i in ids):
        raise InputError(f"--transcript must be longest, all or transcript ids separated by commas, not {text!r}")
    return ids


def choose(holding: Sequence[Transcript], choice: str | tuple[str, ...]) -> list[Transcript]:
    """The transcripts of ``holding`` a site's windows are cut from: the longest spliced one (ties: the
    smallest id), all (by id), or those of the ids asked for that hold it (in the order asked)."""
    if not holding:
        return []
    if choice == "longest":
        return [min(holding, key=lambda t: (-t.length, t.id))]
    if choice == "all":
        return sorted(holding, key=lambda t: t.id)
    by_id = {t.id: t for t in holding}
    return [by_id[i] for i in dict.fromkeys(choice) if i in by_id]


# ---------------------------------------------------------------------------- checks
def _chrom_missing(name: str, chrom: str, lengths: dict[str, int], genome_name: str) -> InputError:
    alias = chrom[3:] if chrom.startswith("chr") else f"chr{chrom}"
    hint = f"; the genome has {alias}: are its names of another convention?" if alias in lengths else ""
    few = ", ".join(list(lengths)[:3]) + (", ..." if len(lengths) > 3 else "")
    return InputError(f"{name}: chromosome {chrom} is not in the genome {genome_name} ({len(lengths)} "
                      f"chromosomes: {few}){hint}")


def check_sites(sites: Sequence[GenomeSite], lengths: dict[str, int], sites_name: str, genome_name: str) -> None:
    """Refuse the first site on a chromosome the genome lacks, or past its chromosome's end."""
    for s in sites:
        if s.chrom not in lengths:
            raise _chrom_missing(f"{sites_name}: line {s.line}", s.chrom, lengths, genome_name)
        if s.start >= lengths[s.chrom]:
            raise InputError(f"{sites_name}: line {s.line}: site {s.id} at {s.chrom}:{s.start + 1} lies past the end "
                             f"of {s.chrom} ({lengths[s.chrom]} nt in {genome_name})")


def check_transcripts(transcripts: Iterable[Transcript], lengths: dict[str, int], gtf_name: str,
                      genome_name: str) -> None:
    """Refuse the first transcript on a chromosome the genome lacks, or with an exon past its end."""
    for tx in transcripts:
        where = f"{gtf_name}: line {tx.line}: transcript {tx.id}"
        if tx.chrom not in lengths:
            raise _chrom_missing(where, tx.chrom, lengths, genome_name)
        if tx.exons[-1][1] > lengths[tx.chrom]:
            s, e = tx.exons[-1]
            raise InputError(f"{where}: exon {s + 1}-{e} lies past the end of {tx.chrom} ({lengths[tx.chrom]} nt "
                             f"in {genome_name})")


def select_ids(items: dict, choice: str | tuple[str, ...], name: str) -> dict:
    """The transcripts (or transcript records) ``choice`` may use, by id: all for ``longest``/``all``,
    else the ids asked for, each of which must be in ``items`` (read from ``name``)."""
    if isinstance(choice, str):
        return items
    absent = [i for i in dict.fromkeys(choice) if i not in items]
    if absent:
        raise InputError(f"{name}: transcript {', '.join(absent[:FIRST_IDS])} asked for with --transcript "
                         f"{'is' if len(absent) == 1 else 'are'} not in it ({len(items)} transcripts)")
    return {i: items[i] for i in dict.fromkeys(choice)}


def _first(ids: Sequence[str]) -> str:
    return ", ".join(ids[:FIRST_IDS]) + (", ..." if len(ids) > FIRST_IDS else "")


# ---------------------------------------------------------------------------- windows of sites
class Planned(NamedTuple):
    """A window to cut: its record id, its site and the transcript it comes from (None: the genome)."""

    id: str
    site: GenomeSite
    transcript: Transcript | None


def site_base(genome: GenomeLike, s: GenomeSite) -> str:
    """The site's base on its strand (a T on the genome's ``+`` strand is an A of a ``-`` site)."""
    base = genome.fetch(s.chrom, s.start, s.start + 1)
    return base if s.strand == "+" else base.translate(COMPLEMENT)


def a_sites(sites: Sequence[GenomeSite], genome: GenomeLike, strict: bool, sites_name: str) -> list[GenomeSite]:
    """The sites whose base is an A on their strand; the others are a warning (skipped) or, ``strict``,
    an ``InputError`` naming the first."""
    bases = [site_base(genome, s) for s in sites]
    bad = [(s, b) for s, b in zip(sites, bases, strict=True) if b != "A"]
    if bad and strict:
        s, b = bad[0]
        raise InputError(f"{sites_name}: line {s.line}: site {s.id} ({s.chrom}:{s.start + 1}:{s.strand}) is {b} on "
                         f"its strand, not A (the m6A base; a - site is a T on the genome's + strand); {len(bad)} "
                         "sites are not A (skipped without --strict)")
    if bad:
        log.warning("%s: %d of %d sites are not an A on their strand (%s); skipped (--strict refuses them)",
                    sites_name, len(bad), len(sites), _first([f"{s.id} {b}" for s, b in bad]))
    return [s for s, b in zip(sites, bases, strict=True) if b == "A"]


def in_transcripts(sites: Sequence[GenomeSite], transcripts: dict[str, Transcript], choice: str | tuple[str, ...],
                   strict: bool, sites_name: str, gtf_name: str) -> tuple[list[Planned], list[str]]:
    """The windows of the sites in an exon of a transcript (:func:`choose`), and the ids of the sites in
    none (a warning, or with ``strict`` an ``InputError``). A site cut from several transcripts
    (``all``, several ids) has one window each, id ``site|transcript``."""
    index = ExonIndex(transcripts.values())
    planned, missing = [], []
    for s in sites:
        chosen = choose(index.holding(s.chrom, s.strand, s.start), choice)
        if not chosen:
            missing.append(s)
        for tx in chosen:
            planned.append(Planned(s.id if len(chosen) == 1 else f"{s.id}|{tx.id}", s, tx))
    which = "the transcripts asked for with --transcript" if isinstance(choice, tuple) else "any transcript"
    if missing and strict:
        s = missing[0]
        raise InputError(f"{sites_name}: line {s.line}: site {s.id} ({s.chrom}:{s.start + 1}:{s.strand}) lies in no "
                         f"exon of {which} of {gtf_name} on its strand; {len(missing)} such sites (skipped without "
                         "--strict)")
    if missing:
        log.warning("%s: %d of %d sites lie in no exon of %s of %s on their strand (%s); skipped (--strict refuses "
                    "them)", sites_name, len(missing), len(sites), which, gtf_name, _first([s.id for s in missing]))
    return planned, [s.id for s in missing]


def plan_windows(sites: Sequence[GenomeSite], genome: GenomeLike, transcripts: dict[str, Transcript] | None = None,
                 choice: str | tuple[str, ...] = "longest", strict: bool = False, names: tuple[str, str, str] = (
                     "sites", "genome", "annotation")) -> tuple[list[Planned], dict]:
    """Check the sites and pick the windows to cut, before anything is cut or written.

    Parameters
    ----------
    sites, genome, transcripts
        From :func:`m6abert.io.read_sites`, :func:`m6abert.io.open_genome` and (spliced windows)
        :func:`m6abert.io.read_transcripts`; None: genomic windows.
    choice
        :func:`parse_choice`'s: which transcripts when several hold a site.
    strict
        Refuse a site that is not an A, or in no exon, instead of skipping it with a warning.
    names
        How messages name the sites file, the genome and the annotation.

    Returns
    -------
    (planned, report)
        The windows in site order, and ``{"sites", "not_a", "no_exon", "no_exon_ids", "windows"}``.
    """
    sites_name, genome_name, gtf_name = names
    check_sites(sites, genome.lengths, sites_name, genome_name)
    kept = a_sites(sites, genome, strict, sites_name)
    missing: list[str] = []
    if transcripts is None:
        planned = [Planned(s.id, s, None) for s in kept]
    else:
        planned, missing = in_transcripts(kept, select_ids(transcripts, choice, gtf_name), choice, strict,
                                          sites_name, gtf_name)
        check_transcripts(dict.fromkeys(p.transcript for p in planned), genome.lengths, gtf_name, genome_name)
    seen: dict[str, GenomeSite] = {}
    for p in planned:
        other = seen.setdefault(p.id, p.site)
        if other is not p.site:
            raise InputError(f"{sites_name}: line {p.site.line}: window id {p.id} is also that of line {other.line}; "
                             "rename one of the sites")
    return planned, {"sites": len(sites), "not_a": len(sites) - len(kept), "no_exon": len(missing),
                     "no_exon_ids": missing[:FIRST_IDS], "windows": len(planned)}


def site_windows(planned: Iterable[Planned], genome: GenomeLike, extend_len: int = DEFAULT_EXTEND) -> Iterator[Window]:
    """The windows of :func:`plan_windows`, cut one at a time."""
    for p in planned:
        s, tx = p.site, p.transcript
        cut = (spliced_window(genome, tx, s.start, extend_len) if tx is not None
               else genomic_window(genome, s.chrom, s.start, s.strand, extend_len))
        yield Window(p.id, cut.seq, cut.site,
                     WindowCoords(s.chrom, s.start + 1, s.strand, tx.id if tx else None, cut.blocks))


# ---------------------------------------------------------------------------- DRACH scans
def scan_records(records: Iterable[io.FastaRecord], extend_len: int = DEFAULT_EXTEND) -> Iterator[Window]:
    """A window of every DRACH site of transcript sequences (U read as T), id ``TRANSCRIPT:pos`` (1-based
    in the transcript), without genome coordinates."""
    for rec in records:
        seq = rec.seq.replace("U", "T")
        for i in drach_sites(seq):
            lo = max(0, i - extend_len)
            yield Window(f"{rec.id}:{i + 1}", seq[lo : i + extend_len + 1], i - lo, None)


def scan_transcripts(genome: GenomeLike, transcripts: Iterable[Transcript],
                     extend_len: int = DEFAULT_EXTEND) -> Iterator[Window]:
    """A spliced window of every DRACH site of each transcript's mRNA, id ``TRANSCRIPT:pos`` (1-based in
    the mRNA), with its genome coordinates."""
    for tx in transcripts:
        mrna = blocks_sequence(genome, tx.chrom, tx.strand, exons_5to3(tx))
        for i in drach_sites(mrna):
            lo, hi = max(0, i - extend_len), min(len(mrna), i + extend_len + 1)
            pos = mrna_blocks(tx, i, i + 1)[0][0] + 1
            yield Window(f"{tx.id}:{i + 1}", mrna[lo:hi], i - lo,
                         WindowCoords(tx.chrom, pos, tx.strand, tx.id, mrna_blocks(tx, lo, hi)))


def tally(windows: Iterable[Window], counts: dict, extend_len: int = DEFAULT_EXTEND) -> Iterator[Window]:
    """``windows`` passed through, counted into ``counts``: ``written`` and ``shorter`` (cut at an end)."""
    counts.setdefault("written", 0)
    counts.setdefault("shorter", 0)
    for w in windows:
        counts["written"] += 1
        counts["shorter"] += len(w.seq) < 2 * extend_len + 1
        yield w
