"""From FASTA records to the balanced, split, k-merised data sets of get_input.py (its one room).

The split reproduces the original get_input.py call for call: ``random.shuffle`` of all
negatives with ``random.seed(seed)``, scikit-learn's ``train_test_split`` semantics
(``RandomState(seed).permutation`` with ``ceil`` test sizes) for positives and negatives
separately, then ``RandomState(seed).permutation`` of the concatenated training rows. With the
paper's data and seed 52 the TSVs are byte-identical to the original's.

``--extend_len`` keeps that many nt each side of each window's m6A site, placed by the rule of
:mod:`m6abert.sites` that ``--pos_relative_to_site`` uses too (a ``site=N`` header word wins);
``get_input_args.json`` records how the sites were placed (:func:`sites_record`).

A run's files replace an earlier run's as a set (:func:`m6abert.io.write_output_set`): a
fine-tuning run removes the split files of an earlier one that it does not write (``test.tsv``
of a ``--do_val`` run, ``fold_{i}/`` of more folds); a pretraining run those of the same k.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import io, sites
from .data import check_records_k
from .io import FastaRecord
from .kmer import check_k, normalise, seq2kmer
from .leakage import cut_rows, grouped_cuts
from .utils import InputError, log


class Split(NamedTuple):
    """One labelled data set: record ids, k-mer sentences and labels, in file-row order."""

    ids: list[str]
    sentences: list[str]
    labels: list[int]


def _sk_split(n: int, seed: int, test_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, test) as ``sklearn.model_selection.train_test_split`` chooses them."""
    n_test = math.ceil(test_size * n)
    perm = np.random.RandomState(seed).permutation(n)
    return perm[n_test:], perm[:n_test]


def site_index(seq: str, declared: int | None = None) -> int | None:
    """The index of a window's m6A site by the rule of :mod:`m6abert.sites` (None: it has none).

    >>> site_index("G" * 250 + "AC" + "G" * 249), site_index("G" * 100 + "AC" + "G" * 249)
    (250, 100)
    """
    return sites.site_of(seq, declared).index


def centre_crop(seq: str, extend_len: int, declared: int | None = None) -> str:
    """Keep ``extend_len`` nt on each side of the window's m6A site (:mod:`m6abert.sites`).

    Index 250 in a whole 501-nt window (where 250 keeps everything), ``len - 251`` in a shorter
    window cut at its 5' end; a window of at most 250 nt (no site) and one longer than 501 nt
    are cropped around their centre.
    """
    return sites.crop(seq, sites.site_of(seq, declared), extend_len)


def kmerise(records: list[FastaRecord], k: int, extend_len: int | None, path: str,
            declared: dict[str, int] | None = None) -> list[str]:
    """k-mer sentences of records (cropped by ``extend_len`` around their sites, ``declared`` the
    ``site=N`` of their headers); checks length and counts N k-mers and records cropped around
    their centre because they are longer than a window."""
    out, n_unk, n_long = [], 0, 0
    for rec in records:
        seq = rec.seq
        if extend_len is not None:
            site = sites.site_of(seq, (declared or {}).get(rec.id))
            n_long += site.how == "centre"
            seq = sites.crop(seq, site, extend_len)
        seq = normalise(seq)
        check_records_k([FastaRecord(rec.id, seq)], k, path)
        sentence = seq2kmer(seq, k)
        if "N" in seq:
            n_unk += sum("N" in km for km in sentence.split())
        out.append(sentence)
    if n_unk:
        log.warning("%s: %d k-mers contain N and will be read as [UNK]", path, n_unk)
    if n_long:
        log.warning("%s: %d records longer than a %d-nt window cropped to their centre ± %d nt; give site=N "
                    "(0-based) in a record's header to crop around its site", path, n_long, sites.window_length(),
                    extend_len)
    return out


def read_windows(source: io.Source | str | Path) -> tuple[list[FastaRecord], dict[str, int]]:
    """The records of a source of site windows (a path: a FASTA file) and their declared sites
    (:meth:`m6abert.io.Source.read`), each declared site checked to name an A of its record."""
    if isinstance(source, str | Path):
        source = io.FastaSource(Path(source))
    records, declared = source.read()
    for r in records:
        sites.check_declared(r.id, r.seq, declared.get(r.id), source.name)
    return records, declared


def read_coords(source: io.Source) -> dict[str, io.WindowCoords]:
    """The genome coordinates a source gives its records, by id (its optional ``coords()``; none without)."""
    get = getattr(source, "coords", None)
    return dict(get()) if callable(get) else {}


class Written(NamedTuple):
    """A record's window as get_input.py writes it: the site's index in it (None: no site) and its genome
    coordinates (None: unknown), ``blocks`` those of the written bases (None: the window cannot be placed)."""

    site: int | None
    coords: io.WindowCoords | None


def written_windows(records: list[FastaRecord], extend_len: int | None, declared: dict[str, int],
                    coords: dict[str, io.WindowCoords]) -> dict[str, Written]:
    """The :class:`Written` window of each record (cropped by ``extend_len`` as :func:`kmerise` crops it)."""
    out = {}
    for r in records:
        site = sites.site_of(r.seq, declared.get(r.id))
        lo, hi = 0, len(r.seq)
        if extend_len is not None:
            centre = site.index if site.index is not None else (len(r.seq) - 1) // 2
            lo, hi = max(0, centre - extend_len), min(len(r.seq), centre + extend_len + 1)
        c = io.placed_coords(coords.get(r.id), len(r.seq), site.index, lo, hi)
        out[r.id] = Written(None if site.index is None else site.index - lo, c)
    return out


def sites_record(records: list[FastaRecord], extend_len: int, declared: dict[str, int]) -> dict:
    """How the sites of the records written were placed, for ``get_input_args.json``: the count of
    each way (:data:`m6abert.sites.HOW`) and, for every record whose site is not at index
    ``extend_len`` of its written sequence, that index (null: no site, cropped around its centre)."""
    placed = [(r, sites.site_of(r.seq, declared.get(r.id))) for r in records]
    moved = {}
    for r, site in placed:
        index = sites.index_in_crop(r.seq, site, extend_len) if site.index is not None else None
        if index != extend_len:
            moved[r.id] = index
    return {"rule": "m6abert.sites", "counts": sites.count(s for _, s in placed), "site_index": moved}


def sample_negatives(neg: list, n_needed: int, seed: int, path: str) -> list:
    """The original's balancing: shuffle ALL negatives as ``random.seed(seed)`` then ``random.shuffle``
    do, keep the first; a private ``random.Random(seed)`` draws the same without touching the
    global generator."""
    if n_needed > len(neg):
        raise InputError(f"{path}: {len(neg)} negative records, fewer than the {n_needed} needed")
    neg = list(neg)
    random.Random(seed).shuffle(neg)
    return neg[:n_needed]


def finetune_splits(
    pos: list[FastaRecord],
    neg: list[FastaRecord],
    k: int,
    seed: int = 52,
    do_val: bool = True,
    extend_len: int | None = None,
    neg_ratio: int = 1,
    pos_path: str = "pos.fa",
    neg_path: str = "neg.fa",
    declared: dict[str, int] | None = None,
    groups: dict[str, int] | None = None,
) -> dict[str, Split]:
    """Balance, split and k-merise as the original get_input.py does.

    Parameters
    ----------
    pos, neg: list[FastaRecord]
        Positive (label 1) and negative (label 0) records in file order.
    k: int
        k-mer length, 3..6.
    seed: int
        Seed of every random choice. Default is 52 (the shipped data's).
    do_val: bool
        Split a validation set off the training set: train/dev/test. Without it: train/dev, where
        dev is the 20 % held-out split. Default is True.
    extend_len: int or None
        Keep this many nt each side of each window's m6A site (:mod:`m6abert.sites`: index 250,
        ``len - 251`` in a short window cut at its 5' end, a header's ``site=N``). Default is None
        (whole windows).
    neg_ratio: int
        Negatives kept per positive. Default is 1 (the paper's balancing).
    declared: dict or None
        The ``site=N`` of the records' FASTA headers, by id (:func:`read_windows`). Default is None.
    groups: dict or None
        A group per record id (:func:`m6abert.leakage.window_groups`): each group goes to one split, chosen by
        :func:`m6abert.groups.grouped_parts` (test = one part of 5, dev = one part of 10 of the
        rest), instead of the original's random rows. Default is None (the original's split).

    Returns
    -------
    dict[str, Split]
        ``{"train", "dev"[, "test"]}``; dev and test list positives before negatives, train is shuffled.

    Raises
    ------
    InputError
        A record id twice (:func:`m6abert.io.check_unique_ids`), too few negatives, a record
        shorter than k, or too few positives for every split to hold both classes.
    """
    check_k(k)
    io.check_unique_ids((pos_path, pos), (neg_path, neg))
    negs = sample_negatives(neg, neg_ratio * len(pos), seed, neg_path)
    pos_km = kmerise(pos, k, extend_len, pos_path, declared)
    neg_km = kmerise(negs, k, extend_len, neg_path, declared)

    def take(recs, kms, label, idx):
        return Split([recs[i].id for i in idx], [kms[i] for i in idx], [label] * len(idx))

    parts: dict[str, list[Split]] = {"train": [], "dev": [], "test": []}
    cuts = grouped_cuts(pos, negs, groups, seed, do_val, pos_path) if groups else None
    for recs, kms, label in ((pos, pos_km, 1), (negs, neg_km, 0)):
        if cuts is None:
            train_idx, test_idx = _sk_split(len(recs), seed, 0.2)
        else:
            train_idx, test_idx = cut_rows(recs, np.arange(len(recs)), cuts[0], seed)
        if do_val:
            tr, va = _sk_split(len(train_idx), seed, 0.1) if cuts is None else cut_rows(recs, train_idx, cuts[1], seed)
            parts["test"].append(take(recs, kms, label, test_idx))
            parts["dev"].append(take(recs, kms, label, train_idx[va]))
            train_idx = train_idx[tr]
        else:
            parts["dev"].append(take(recs, kms, label, test_idx))
        parts["train"].append(take(recs, kms, label, train_idx))

    out = {name: _concat(p) for name, p in parts.items() if p}
    need = _min_positives(do_val)
    hint = (f"--do_val keeps 20 % for test.tsv and 10 % of the rest for dev.tsv; at least {need} positives are needed"
            if do_val else f"20 % is kept for dev.tsv; at least {need} positives are needed")
    check_splits(out, len(pos), len(negs), pos_path, hint)
    out["train"] = shuffle_split(out["train"], seed)
    return out


def _min_positives(do_val: bool) -> int:
    """The fewest positives that leave at least one in every split of :func:`finetune_splits`."""
    n = 1
    while True:
        n_test = math.ceil(0.2 * n)
        rest = n - n_test
        sizes = (rest - math.ceil(0.1 * rest), math.ceil(0.1 * rest)) if do_val else (rest,)
        if min(sizes) > 0:
            return n
        n += 1


def check_splits(splits: dict[str, Split], n_pos: int, n_neg: int, pos_path: str, hint: str,
                 prefix: str = "") -> None:
    """Refuse a split (written as ``{prefix}{name}.tsv``) that is empty or lacks a class.

    Raises
    ------
    InputError
        ``POS_PATH: 2 positives and 2 negatives leave train.tsv empty (HINT)``.
    """
    for name, split in splits.items():
        n1 = sum(split.labels)
        n0 = len(split.labels) - n1
        if n1 and n0:
            continue
        problem = "empty" if not split.labels else f"without {'positives' if not n1 else 'negatives'}"
        counts = f"{n_pos} positive{'s' * (n_pos != 1)} and {n_neg} negative{'s' * (n_neg != 1)}"
        raise InputError(f"{pos_path}: {counts} leave {prefix}{name}.tsv {problem} ({hint})")


def _concat(parts: list[Split]) -> Split:
    return Split(*(sum((list(getattr(p, f)) for p in parts), []) for f in Split._fields))


def shuffle_split(split: Split, seed: int) -> Split:
    """Reorder rows by ``RandomState(seed).permutation(n)`` (the original's train shuffle)."""
    idx = np.random.RandomState(seed).permutation(len(split.ids))
    return Split(*([col[i] for i in idx] for col in split))


def kfold_splits(
    pos: list[FastaRecord],
    neg: list[FastaRecord],
    k: int,
    n_folds: int,
    seed: int = 52,
    extend_len: int | None = None,
    neg_ratio: int = 1,
    pos_path: str = "pos.fa",
    neg_path: str = "neg.fa",
    declared: dict[str, int] | None = None,
    groups: dict[str, int] | None = None,
) -> tuple[list[dict[str, Split]], list[dict[str, list[str]]]]:
    """Stratified ``n_folds``-fold cross-validation over positives and the sampled negatives.

    Negatives are sampled as in :func:`finetune_splits`. Positives and negatives are each
    permuted with ``RandomState(seed)`` and cut into ``n_folds`` near-equal contiguous folds. Fold
    ``i`` is the dev set of split ``i``; the other folds form its (shuffled) training set. With
    ``groups`` (a group per record id, :func:`m6abert.leakage.window_groups`) each group goes to one fold, chosen by
    :func:`m6abert.groups.grouped_parts`; each fold lists its records in the same permuted order.

    Returns
    -------
    splits: list of {"train": Split, "dev": Split}, one per fold
    folds: list of {"pos": ids, "neg": ids}, the records of each fold (disjoint, covering all)
    """
    check_k(k)
    io.check_unique_ids((pos_path, pos), (neg_path, neg))
    if not 2 <= n_folds <= len(pos):
        raise InputError(f"{pos_path}: --n_folds {n_folds} needs 2 <= folds <= {len(pos)} positives")
    negs = sample_negatives(neg, neg_ratio * len(pos), seed, neg_path)
    fold_of = None
    if groups:
        from .groups import grouped_parts

        fold_of = grouped_parts([1] * len(pos) + [0] * len(negs), [groups[r.id] for r in (*pos, *negs)], n_folds,
                                seed, pos_path)
    classes = []
    for recs, path, label, first in ((pos, pos_path, 1, 0), (negs, neg_path, 0, len(pos))):
        kms = kmerise(recs, k, extend_len, path, declared)
        perm = np.random.RandomState(seed).permutation(len(recs))
        if fold_of is None:
            chunks = np.array_split(perm, n_folds)
        else:
            chunks = [perm[fold_of[first + perm] == i] for i in range(n_folds)]
        classes.append([Split([recs[i].id for i in c], [kms[i] for i in c], [label] * len(c)) for c in chunks])
    splits, folds = [], []
    for i in range(n_folds):
        dev = _concat([classes[0][i], classes[1][i]])
        train = _concat([c[j] for c in classes for j in range(n_folds) if j != i])
        check_splits({"train": train, "dev": dev}, len(pos), len(negs), pos_path,
                     f"--n_folds {n_folds} needs at least {n_folds} positives", f"fold_{i}/")
        splits.append({"train": shuffle_split(train, seed), "dev": dev})
        folds.append({"pos": classes[0][i].ids, "neg": classes[1][i].ids})
    return splits, folds


def pretrain_corpus(
    records: list[FastaRecord],
    k: int,
    seed: int = 52,
    do_val: bool = False,
    extend_len: int | None = None,
    path: str = "pretrain.fa",
) -> dict[str, list[str]]:
    """k-mer sentences for masked-LM pretraining, one per record (``U`` read as ``T``).

    Without ``do_val`` all records, in file order, go to ``{k}`` (``pre/{k}.txt``). With it, 10 %
    are held out as the original intended: ``{k}_train`` and ``{k}_val`` (``train_test_split``
    semantics with ``seed``).
    """
    check_k(k)
    kms = kmerise(records, k, extend_len, path)
    if not do_val:
        return {f"{k}": kms}
    train_idx, val_idx = _sk_split(len(kms), seed, 0.1)
    return {f"{k}_train": [kms[i] for i in train_idx], f"{k}_val": [kms[i] for i in val_idx]}


def unused_negatives(pos: list[FastaRecord], neg: list[FastaRecord], seed: int = 52, neg_ratio: int = 1,
                     neg_path: str = "neg.fa") -> list[FastaRecord]:
    """The negatives that balanced sampling (:func:`sample_negatives`) leaves out, in file order.

    With the paper's data (485 positives, 5,602 negatives) and ``neg_ratio`` 1 these are 5,117
    records, none of which is in any fine-tuning split or cross-validation fold of the same seed:
    a pretraining corpus that never sees a fine-tuning or test sequence.
    """
    used = {r.id for r in sample_negatives(neg, neg_ratio * len(pos), seed, neg_path)}
    return [r for r in neg if r.id not in used]


def fold_records(pos: list[FastaRecord], neg: list[FastaRecord], folds: list[dict[str, list[str]]]
                 ) -> list[tuple[list[FastaRecord], list[int]]]:
    """The records and labels of each fold of :func:`kfold_splits` (``folds`` as it returns them),
    positives then negatives, in the fold's dev-set order; sequences normalised (upper case, U as T)."""
    by_id = {r.id: FastaRecord(r.id, normalise(r.seq)) for r in (*pos, *neg)}
    return [([by_id[i] for i in f["pos"]] + [by_id[i] for i in f["neg"]], [1] * len(f["pos"]) + [0] * len(f["neg"]))
            for f in folds]
