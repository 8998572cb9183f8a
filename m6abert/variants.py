"""Variant effects: how a substitution in a record changes the model's P(class 1) and log-odds.

``run_predict_degradation.py --predict_fasta FILE --variants VARIANTS.tsv`` scores each variant of
the table (``id pos ref alt``; see :func:`m6abert.io.read_variants`) against its record: the
reference sequence and the sequence with ``alt`` in place of ``ref`` go through the model in
batched passes (every distinct sequence of a batch once), and ``variant_effects.tsv`` gets ``p_ref``,
``p_alt``, ``delta_p = p_alt - p_ref`` and ``delta_logodds`` (log-odds = logit1 - logit0, alt
minus ref). Positions are 1-based in the record, or, with ``pos_relative_to_site``, relative to
the record's m6A site (0 is the site, negative upstream), placed by the rule of :mod:`m6abert.sites`
that get_input.py crops by: index 250 in a 501-nt window, ``len - 251`` in a shorter window cut at
its 5' end, or a ``site=N`` in the record's FASTA header.

Substitutions of any length are supported when ``ref`` and ``alt`` have the same length (one
letter each for a SNV, ``AC>GT`` for a multi-nucleotide substitution); insertions and deletions
are refused: they would shift the site and change the window the model was trained on. ``alt``
must be A, C, G or T (U is read as T); ``ref`` must match the record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from . import io, sites
from .constants import ALPHABET, MAX_POSITIONS, SITE_INDEX
from .data import LabelledData, dataset_from_seqs
from .inference import check_finite, predict
from .utils import InputError, log

VARIANT_OUTPUT = "variant_effects.tsv"  # one of PREDICTION_OUTPUTS: a plain prediction run removes an old one
EFFECT_COLUMNS = ("id", "pos", "ref", "alt", "p_ref", "p_alt", "delta_p", "delta_logodds")
ALT_LETTERS = frozenset(ALPHABET)


def _start(v: io.Variant, seq: str, site: int | None, where: str) -> int:
    """The 0-based index of ``v``'s first letter in ``seq`` (``site``: positions relative to it), checked."""
    head = f"{where}: line {v.line}:"
    relative = site is not None
    start = site + v.pos if relative else v.pos - 1
    if not 0 <= start < len(seq):
        span = f"{-site}..{len(seq) - 1 - site} relative to the site" if relative else f"1..{len(seq)}"
        raise InputError(f"{head} position {v.pos} is outside record {v.id} ({len(seq)} nt: positions {span})")
    if start + len(v.ref) > len(seq):
        raise InputError(f"{head} ref {v.ref!r} at position {v.pos} runs past the end of record {v.id} "
                         f"({len(seq)} nt)")
    return start


def _check_alleles(v: io.Variant, where: str) -> tuple[str, str]:
    """``v``'s ref and alt, upper case with U read as T; an alt that is no substitution is refused."""
    head = f"{where}: line {v.line}:"
    ref, alt = v.ref.upper().replace("U", "T"), v.alt.upper().replace("U", "T")
    if set(alt) - ALT_LETTERS:
        raise InputError(f"{head} alt {v.alt!r} is not A, C, G or T (U is read as T)")
    if len(ref) != len(alt):
        raise InputError(f"{head} ref {v.ref!r} and alt {v.alt!r} differ in length: only substitutions "
                         "(ref and alt of equal length) are supported, not insertions or deletions")
    if ref == alt:
        raise InputError(f"{head} alt {v.alt!r} is the same as ref")
    return ref, alt


def record_sites(records: Sequence[io.FastaRecord], declared: Mapping[str, int] | None = None,
                 source: str = "the records") -> dict[str, sites.Site]:
    """The m6A site of each record by the rule of :mod:`m6abert.sites` (a header's ``site=N`` in
    ``declared``, checked to name an A of the record), by record id."""
    declared = declared or {}
    return {r.id: sites.site_of(r.seq, sites.check_declared(r.id, r.seq, declared.get(r.id), source))
            for r in records}


def _site_index(v: io.Variant, seq: str, site: sites.Site, where: str) -> int:
    """The index positions of ``v`` count from with ``--pos_relative_to_site``; a record without a site is refused."""
    if site.index is None:
        raise InputError(f"{where}: line {v.line}: record {v.id} has {len(seq)} nt, too short for "
                         f"--pos_relative_to_site (the site is at index {SITE_INDEX}: at least {SITE_INDEX + 1} nt)")
    return site.index


def _checked(records: Sequence[io.FastaRecord], variants: Sequence[io.Variant], pos_relative_to_site: bool,
             where: str, source: str, declared: Mapping[str, int] | None
             ) -> Iterator[tuple[io.Variant, str, int, str]]:
    """``(variant, record sequence, start, alt)`` of every variant, each checked against its record."""
    by_id = {r.id: r.seq for r in records}
    named = {v.id for v in variants}
    placed = record_sites([r for r in records if r.id in named], declared, source) if pos_relative_to_site else {}
    for v in variants:
        seq = by_id.get(v.id)
        if seq is None:
            raise InputError(f"{where}: line {v.line}: record {v.id} is not in {source}")
        site = _site_index(v, seq, placed[v.id], where) if pos_relative_to_site else None
        start = _start(v, seq, site, where)
        ref, alt = _check_alleles(v, where)
        found = seq[start:start + len(ref)]
        if found.replace("U", "T") != ref:
            at = f"position {v.pos} relative to the site (position {start + 1})" if pos_relative_to_site \
                else f"position {v.pos}"
            raise InputError(f"{where}: line {v.line}: ref {v.ref!r} does not match record {v.id}, which has "
                             f"{found!r} at {at}")
        yield v, seq, start, alt


def check_variants(records: Sequence[io.FastaRecord], variants: Sequence[io.Variant], pos_relative_to_site: bool = False,
                   where: str = "variants", source: str = "the records",
                   declared: Mapping[str, int] | None = None) -> dict[str, list]:
    """Check every variant against its record as :func:`mutate` does, without building the mutants.

    Returns
    -------
    dict
        With ``pos_relative_to_site``, ``{record id: [site index, how it was placed]}`` of every
        record named (:func:`m6abert.sites.site_of`), for the run's record; else empty. Where the
        rule had to assume (``undecided``, ``centre``) one log line says so.
    """
    for _ in _checked(records, variants, pos_relative_to_site, where, source, declared):
        pass
    if not pos_relative_to_site:
        return {}
    named = {v.id for v in variants}
    placed = record_sites([r for r in records if r.id in named], declared, source)
    counts = sites.count(placed.values())
    if counts.get("undecided") or counts.get("centre"):
        log.warning("%s: sites of the %d records named: %s; give site=N (0-based) in a record's FASTA header to "
                    "place its site", where, len(placed), sites.describe(counts))
    return {rid: [s.index, s.how] for rid, s in placed.items()}


def mutate(records: Sequence[io.FastaRecord], variants: Sequence[io.Variant], pos_relative_to_site: bool = False,
           where: str = "variants", source: str = "the records",
           declared: Mapping[str, int] | None = None) -> list[tuple[str, str]]:
    """The reference and the mutated sequence of every variant, each checked against its record.

    Parameters
    ----------
    records: sequence of FastaRecord
        The records the variants refer to (ids unique).
    variants: sequence of Variant
        Rows of a variants table (:func:`m6abert.io.read_variants`).
    pos_relative_to_site: bool
        Positions count from each record's m6A site (0 is the site; :mod:`m6abert.sites`) instead
        of 1-based from the record's start. Default is False.
    where, source: str
        The variants table and the records, as messages name them.
    declared: mapping of str to int, or None
        ``site=N`` of the records' FASTA headers, by record id (:func:`m6abert.io.read_fasta`'s
        ``sites``). Default is None.

    Returns
    -------
    list of (str, str)
        ``(reference sequence, mutated sequence)`` per variant, in order.

    Raises
    ------
    InputError
        An unknown record id, a position outside the record, a ``ref`` that does not match the
        sequence, an ``alt`` that is not A/C/G/T, an insertion or deletion, ``alt`` equal to ``ref``;
        with ``pos_relative_to_site`` a record of at most 250 nt (no site) or a header's ``site=N``
        that is not an A of its record.
    """
    return [(seq, seq[:start] + alt + seq[start + len(alt):])
            for _, seq, start, alt in _checked(records, variants, pos_relative_to_site, where, source, declared)]


def _unique(seqs: Sequence[str], names: Sequence[str]) -> tuple[list[str], list[str]]:
    """The distinct sequences (first occurrence order) and the name of each one's first occurrence."""
    first: dict[str, str] = {}
    for seq, name in zip(seqs, names, strict=True):
        first.setdefault(seq, name)
    return list(first), list(first.values())


def variant_name(v: io.Variant) -> str:
    return f"{v.id}:{v.pos}{v.ref}>{v.alt}"


def score_parts(model: torch.nn.Module, parts: Sequence[LabelledData], max_seq_length: int, dnabert_compat: bool,
                batch_size: int, device: str | torch.device, model_where: str) -> list[np.ndarray]:
    """Logits of several data sets in one batched pass, split back per data set; NaN/inf refused."""
    dataset = torch.utils.data.ConcatDataset([p.dataset for p in parts])
    logits = predict(model, dataset, max_seq_length, dnabert_compat, batch_size, device)
    check_finite(logits, model_where, [n for p in parts for n in p.names])
    return np.split(logits, np.cumsum([len(p.names) for p in parts])[:-1])


def effect_rows(variants: Sequence[io.Variant], ref_logits: np.ndarray, alt_logits: np.ndarray) -> list[dict]:
    """The rows of ``variant_effects.tsv`` from each variant's reference and mutated logits, shape=(N, 2).

    ``pos`` is as written in the table; ``ref`` and ``alt`` are upper-cased.
    """
    from .metrics import log_odds, softmax_p1

    p_ref, p_alt = softmax_p1(ref_logits).astype(np.float64), softmax_p1(alt_logits).astype(np.float64)
    lo_ref, lo_alt = log_odds(ref_logits), log_odds(alt_logits)
    return [dict(id=v.id, pos=v.pos, ref=v.ref.upper(), alt=v.alt.upper(), p_ref=float(p_ref[i]),
                 p_alt=float(p_alt[i]), delta_p=float(p_alt[i] - p_ref[i]), delta_logodds=float(lo_alt[i] - lo_ref[i]))
            for i, v in enumerate(variants)]


def indexed_mutants(seqs: Sequence[str], names: Sequence[str], k: int, max_seq_length: int,
             where: str) -> tuple[LabelledData, dict[str, int]]:
    """A data set of the distinct ``seqs`` and each sequence's row in it."""
    unique, unique_names = _unique(seqs, names)
    data = dataset_from_seqs(unique, k, None, max_seq_length, unique_names, where)
    return data, {s: i for i, s in enumerate(unique)}


Scorer = Callable[[list[str], list[str]], np.ndarray]  # (sequences, names) -> logits, shape=(N, 2)
VARIANT_BATCH = 4096  # mutants built and scored at a time by chunk_effects (its default)


def chunk_effects(score: Scorer, records: Sequence[io.FastaRecord], ref_logits: np.ndarray,
                  table: Sequence[tuple[int, io.Variant]], pos_relative_to_site: bool = False, where: str = "variants",
                  source: str = "the records", declared: Mapping[str, int] | None = None,
                  per_batch: int = VARIANT_BATCH) -> list[tuple[int, str, dict]]:
    """The effects of the variants of some records whose logits are known, ``per_batch`` variants at a time.

    Memory holds the mutants of one batch, whatever the number of variants: each batch's distinct
    mutated sequences are built, scored by ``score`` and dropped before the next batch.

    Parameters
    ----------
    score: callable
        ``score(sequences, names)``: the model's logits of the sequences, shape=(N, 2) (NaN refused).
    records: sequence of FastaRecord
        The records the variants refer to.
    ref_logits: np.ndarray, shape=(len(records), 2)
        The records' logits.
    table: sequence of (int, Variant)
        The variants with their row in the variants table.
    pos_relative_to_site, where, source, declared:
        As :func:`mutate`.
    per_batch: int
        Variants per batch. Default is 4096.

    Returns
    -------
    list of (int, str, dict)
        Per variant, in ``table`` order: its table row, its line of ``variant_effects.tsv`` and the
        line's values (:data:`EFFECT_COLUMNS`).
    """
    ref_row = {r.seq: i for i, r in reversed(list(enumerate(records)))}
    out = []
    for first in range(0, len(table), per_batch):
        batch = table[first:first + per_batch]
        variants = [v for _, v in batch]
        pairs = mutate(records, variants, pos_relative_to_site, where, source, declared)
        unique, names = _unique([m for _, m in pairs], [variant_name(v) for v in variants])
        alt_logits = score(unique, names)
        alt_row = {m: i for i, m in enumerate(unique)}
        rows = effect_rows(variants, ref_logits[[ref_row[s] for s, _ in pairs]],
                           alt_logits[[alt_row[m] for _, m in pairs]])
        lines = io.table_lines({c: [r[c] for r in rows] for c in EFFECT_COLUMNS})
        out.extend(zip((i for i, _ in batch), lines, rows, strict=True))
    return out


def variant_effects(
    model: torch.nn.Module,
    records: Sequence[io.FastaRecord],
    variants: Sequence[io.Variant],
    k: int,
    max_seq_length: int = MAX_POSITIONS,
    batch_size: int = 8,
    dnabert_compat: bool = False,
    device: str | torch.device = "cpu",
    pos_relative_to_site: bool = False,
    where: str = "variants",
    source: str = "the records",
    declared: Mapping[str, int] | None = None,
) -> list[dict]:
    """Score each variant against its record: P(class 1) and log-odds of reference and mutated sequence.

    Only the records the variants name are scored; every distinct reference and mutated sequence
    goes through the model once, all in one batched pass (wrap the call in
    :func:`~m6abert.inference.autocast` for bfloat16).

    Parameters
    ----------
    model: torch.nn.Module
        A fine-tuned classifier of k-mers of ``k``.
    records: sequence of FastaRecord
        The records the variants refer to (ids unique).
    variants: sequence of Variant
        The table's rows (:func:`m6abert.io.read_variants`).
    k: int
        The model's k.
    max_seq_length: int
        Tokens per row with [CLS]/[SEP]; a longer record is refused. Default is 512.
    batch_size, dnabert_compat, device:
        As :func:`~m6abert.inference.predict`.
    pos_relative_to_site: bool
        Positions relative to each record's site (:mod:`m6abert.sites`). Default is False (1-based).
    where, source: str
        The variants table and the records, as messages name them.
    declared: mapping of str to int, or None
        The records' ``site=N`` headers, by id (as :func:`mutate`). Default is None.

    Returns
    -------
    list of dict
        One per variant, in order, with the keys of :data:`EFFECT_COLUMNS`.

    Raises
    ------
    InputError
        See :func:`mutate`; a record too long for ``max_seq_length``; NaN or infinite logits.
    """
    pairs = mutate(records, variants, pos_relative_to_site, where, source, declared)
    ids = {s: v.id for (s, _), v in zip(pairs, variants, strict=True)}
    refs, ref_row = indexed_mutants([s for s, _ in pairs], [ids[s] for s, _ in pairs], k, max_seq_length, source)
    alts, alt_row = indexed_mutants([m for _, m in pairs], [variant_name(v) for v in variants], k, max_seq_length, where)
    ref_logits, alt_logits = score_parts(model, [refs, alts], max_seq_length, dnabert_compat, batch_size, device,
                                         "the model")
    return effect_rows(variants, ref_logits[[ref_row[s] for s, _ in pairs]],
                       alt_logits[[alt_row[m] for _, m in pairs]])
