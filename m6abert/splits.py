"""From FASTA records to the balanced, split, k-merised data sets of get_input.py (its one room).

The split reproduces the original get_input.py call for call: ``random.shuffle`` of all
negatives with ``random.seed(seed)``, scikit-learn's ``train_test_split`` semantics
(``RandomState(seed).permutation`` with ``ceil`` test sizes) for positives and negatives
separately, then ``RandomState(seed).permutation`` of the concatenated training rows. With the
paper's data and seed 52 the TSVs are byte-identical to the original's.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import io
from .constants import SITE_INDEX
from .data import check_records_k
from .io import FastaRecord
from .kmer import check_k, normalise, seq2kmer
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


def site_index(seq: str, site: int = SITE_INDEX) -> int | None:
    """Where the m6A site of a window is: ``site`` if an ``AC`` (DRACH's A, C) stands there, else
    ``len - site - 1`` (a window cut at its 5' transcript end) if it does, else None.

    >>> site_index("G" * 250 + "AC" + "G" * 249), site_index("G" * 100 + "AC" + "G" * 249)
    (250, 100)
    """
    for i in (site, len(seq) - site - 1):
        if 0 <= i and seq[i : i + 2] == "AC":
            return i
    return None


def centre_crop(seq: str, extend_len: int) -> str:
    """Keep ``extend_len`` nt on each side of the window's m6A site.

    The site is found by :func:`site_index` (index 250 in full 501-nt windows, where 250 keeps
    everything); a short window without ``AC`` at either candidate is cropped around its centre.
    """
    c = site_index(seq)
    if c is None:
        c = (len(seq) - 1) // 2
    return seq[max(0, c - extend_len) : c + extend_len + 1]


def kmerise(records: list[FastaRecord], k: int, extend_len: int | None, path: str) -> list[str]:
    """k-mer sentences of records (cropped by ``extend_len``); checks length and counts N k-mers."""
    out, n_unk = [], 0
    for rec in records:
        seq = normalise(rec.seq if extend_len is None else centre_crop(rec.seq, extend_len))
        check_records_k([FastaRecord(rec.id, seq)], k, path)
        sentence = seq2kmer(seq, k)
        if "N" in seq:
            n_unk += sum("N" in km for km in sentence.split())
        out.append(sentence)
    if n_unk:
        log.warning("%s: %d k-mers contain N and will be read as [UNK]", path, n_unk)
    return out


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
        Keep this many nt each side of the window centre. Default is None (whole windows).
    neg_ratio: int
        Negatives kept per positive. Default is 1 (the paper's balancing).

    Returns
    -------
    dict[str, Split]
        ``{"train", "dev"[, "test"]}``; dev and test list positives before negatives, train is shuffled.
    """
    check_k(k)
    negs = sample_negatives(neg, neg_ratio * len(pos), seed, neg_path)
    pos_km = kmerise(pos, k, extend_len, pos_path)
    neg_km = kmerise(negs, k, extend_len, neg_path)

    def take(recs, kms, label, idx):
        return Split([recs[i].id for i in idx], [kms[i] for i in idx], [label] * len(idx))

    parts: dict[str, list[Split]] = {"train": [], "dev": [], "test": []}
    for recs, kms, label in ((pos, pos_km, 1), (negs, neg_km, 0)):
        train_idx, test_idx = _sk_split(len(recs), seed, 0.2)
        if do_val:
            tr, va = _sk_split(len(train_idx), seed, 0.1)
            parts["test"].append(take(recs, kms, label, test_idx))
            parts["dev"].append(take(recs, kms, label, train_idx[va]))
            train_idx = train_idx[tr]
        else:
            parts["dev"].append(take(recs, kms, label, test_idx))
        parts["train"].append(take(recs, kms, label, train_idx))

    out = {name: _concat(p) for name, p in parts.items() if p}
    out["train"] = shuffle_split(out["train"], seed)
    return out


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
) -> tuple[list[dict[str, Split]], list[dict[str, list[str]]]]:
    """Stratified ``n_folds``-fold cross-validation over positives and the sampled negatives.

    Negatives are sampled as in :func:`finetune_splits`. Positives and negatives are each
    permuted with ``RandomState(seed)`` and cut into ``n_folds`` near-equal contiguous folds. Fold
    ``i`` is the dev set of split ``i``; the other folds form its (shuffled) training set.

    Returns
    -------
    splits: list of {"train": Split, "dev": Split}, one per fold
    folds: list of {"pos": ids, "neg": ids}, the records of each fold (disjoint, covering all)
    """
    check_k(k)
    if not 2 <= n_folds <= len(pos):
        raise InputError(f"{pos_path}: --n_folds {n_folds} needs 2 <= folds <= {len(pos)} positives")
    negs = sample_negatives(neg, neg_ratio * len(pos), seed, neg_path)
    classes = []
    for recs, path, label in ((pos, pos_path, 1), (negs, neg_path, 0)):
        kms = kmerise(recs, k, extend_len, path)
        perm = np.random.RandomState(seed).permutation(len(recs))
        chunks = np.array_split(perm, n_folds)
        classes.append([Split([recs[i].id for i in c], [kms[i] for i in c], [label] * len(c)) for c in chunks])
    splits, folds = [], []
    for i in range(n_folds):
        dev = _concat([classes[0][i], classes[1][i]])
        train = _concat([c[j] for c in classes for j in range(n_folds) if j != i])
        splits.append({"train": shuffle_split(train, seed), "dev": dev})
        folds.append({"pos": classes[0][i].ids, "neg": classes[1][i].ids})
    all_ids = [r for f in folds for r in f["pos"] + f["neg"]]
    assert len(all_ids) == len(set(all_ids)), "folds must be disjoint"
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


def make_inputs(
    task: str,
    data_dir: str,
    save_dir: str,
    k: int,
    seed: int = 52,
    do_val: bool = False,
    extend_len: int | None = None,
    n_folds: int | None = None,
    neg_ratio: int = 1,
    fasta: str | None = None,
    run_args: dict | None = None,
) -> list[str]:
    """Read FASTA from ``data_dir``, build the data sets of ``task`` and write them to ``save_dir``.

    Everything is read and checked before the first file is written, so bad input leaves
    ``save_dir`` untouched.

    Parameters
    ----------
    task: str
        ``"finetune"`` (``pos.fa`` + ``neg.fa`` -> ``train/dev[/test].tsv`` or ``fold_{i}/``) or
        ``"pretrain"`` (``pretrain.fa`` or ``fasta`` -> ``pre/{k}[_train|_val].txt``).
    n_folds: int or None
        Write ``fold_{i}/train.tsv``, ``fold_{i}/dev.tsv`` and ``folds.json`` instead of the
        single split. Default is None.
    fasta: str or None
        Pretraining FASTA to read instead of ``data_dir/pretrain.fa``. Default is None.
    run_args: dict or None
        Resolved arguments, recorded as ``save_dir/get_input_args.json``. Default is None.

    Returns
    -------
    list[str]
        The paths written.
    """
    check_k(k)
    data, save = Path(data_dir), Path(save_dir)
    files: dict[Path, tuple[str, object]] = {}
    if task == "finetune":
        pos_path, neg_path = data / "pos.fa", data / "neg.fa"
        pos, neg = io.read_fasta(pos_path), io.read_fasta(neg_path)
        common = dict(k=k, seed=seed, extend_len=extend_len, neg_ratio=neg_ratio,
                      pos_path=str(pos_path), neg_path=str(neg_path))
        if n_folds:
            splits, folds = kfold_splits(pos, neg, n_folds=n_folds, **common)
            for i, fold in enumerate(splits):
                for name, s in fold.items():
                    files[save / f"fold_{i}" / f"{name}.tsv"] = ("tsv", s)
            files[save / "folds.json"] = ("json", {"n_folds": n_folds, "seed": seed, "folds": folds})
        else:
            for name, s in finetune_splits(pos, neg, do_val=do_val, **common).items():
                files[save / f"{name}.tsv"] = ("tsv", s)
    elif task == "pretrain":
        src = Path(fasta) if fasta else data / "pretrain.fa"
        # --extend_len is for the site windows of fine-tuning; pretraining sequences are used whole,
        # as in the original
        corpus = pretrain_corpus(io.read_fasta(src), k, seed, do_val, None, str(src))
        for name, lines in corpus.items():
            files[save / "pre" / f"{name}.txt"] = ("lines", lines)
    else:
        raise InputError(f"--task must be 'finetune' or 'pretrain', not {task!r}")

    for path, (kind, obj) in files.items():
        if kind == "tsv":
            io.write_tsv(path, obj.sentences, obj.labels)
        elif kind == "json":
            io.write_json(path, obj)
        else:
            io.write_lines(path, obj)
    if run_args is not None:
        io.write_run_args(save, run_args, "get_input_args.json")
    return [str(p) for p in files]
