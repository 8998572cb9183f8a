"""The pretraining corpora of reproduce_table.py: what m6A-BERT-Deg may see before fine-tuning.

Every corpus drops each sequence that shares an exact ``group_overlap``-nt stretch with a window
it will be tested on (:func:`m6abert.groups.sharing`), and says what it is: the default, the
negatives that balanced sampling left out, is label-selected (negatives only); a user's FASTA; or,
per fold, every positive and negative window outside the fold's held-out loci (label-neutral).
"""

from __future__ import annotations

from typing import NamedTuple

from . import io
from .constants import MAX_POSITIONS as MAX_SEQ_LENGTH
from .groups import sharing
from .leakage import window_seq
from .splits import pretrain_corpus, unused_negatives
from .utils import InputError, log

SHARED = ""  # the key of the one corpus all folds share (runs/pretrain)
MIN_SEQUENCES = 10


class _Corpus(NamedTuple):
    k: int
    seed: int
    group_overlap: int
    names: tuple[str, str]  # how messages name the positives' and negatives' sources
    pretrain_corpus: str | None


def corpora(pos: list[io.FastaRecord], neg: list[io.FastaRecord], folds: dict, *, k: int, seed: int,
            group_overlap: int, names: tuple[str, str], pretrain_corpus: str | None = None,
            per_fold: bool = False) -> tuple[dict, dict]:
    """Every pretraining corpus of a table run and what each is: one shared corpus (``SHARED``), or
    with ``per_fold`` one per protocol and fold (``"{protocol}/fold_{i}"``: every window of ``pos``
    and ``neg`` outside that fold's held-out loci, label-neutral). ``folds``: per protocol, each
    fold's (records, labels); ``names``: the names of the sources of ``pos`` and ``neg``
    (:attr:`m6abert.io.Source.name`), for messages and the corpus records."""
    s = _Corpus(k, seed, group_overlap, tuple(names), pretrain_corpus)
    if not per_fold:
        windows = [r for recs, _ in next(iter(folds.values())) for r in recs]
        corpus, info = _corpus(s, pos, neg, windows)
        return {SHARED: corpus}, {SHARED: info}
    out, infos = {}, {}
    for protocol, protocol_folds in folds.items():
        for i, (held_out, _) in enumerate(protocol_folds):
            key = f"{protocol}/fold_{i}"
            out[key], infos[key] = _corpus(s, pos, neg, held_out, f"{key}: {s.names[0]} and {s.names[1]}")
    return out, infos


def _corpus(s: _Corpus, pos, neg, windows: list[io.FastaRecord], every: str | None = None
            ) -> tuple[dict[str, list[str]], dict]:
    """The pretraining corpus (10 % held out for perplexity) without any sequence that shares an exact
    ``group_overlap``-nt stretch with ``windows`` (a model pretrained on its test loci would be
    judged on sequence it has seen), and what it is. ``every``: all of ``pos`` and ``neg``
    (label-neutral), so named."""
    if every:
        records, what = [*pos, *neg], every
        selected = f"label-neutral: every window of {s.names[0]} and {s.names[1]} outside this fold's held-out loci"
    elif s.pretrain_corpus:
        records, what = io.read_fasta(s.pretrain_corpus), s.pretrain_corpus
        selected = "a user's FASTA (--pretrain_corpus)"
    else:
        records, what = unused_negatives(pos, neg, s.seed, neg_path=s.names[1]), \
            "the negatives balanced sampling did not use"
        selected = "label-selected: negatives only (every positive is a fold window)"
    shared = sharing([window_seq(r) for r in records], [r.seq for r in windows], s.group_overlap)
    kept = [r for r, hit in zip(records, shared, strict=True) if not hit]
    if shared.any():
        first = [r.id for r, hit in zip(records, shared, strict=True) if hit][:3]
        log.info("%s: dropped %d of %d sequences that share an exact %d-nt stretch with a fold window (first: %s)",
                 what, int(shared.sum()), len(records), s.group_overlap, ", ".join(first))
    if len(kept) < MIN_SEQUENCES:
        raise InputError(f"{what}: {len(kept)} of its {len(records)} sequences share no {s.group_overlap}-nt stretch "
                         f"with a fold window; too few to pretrain on (at least {MIN_SEQUENCES})")
    longest = max(len(r.seq) for r in kept)
    if longest - s.k + 3 > MAX_SEQ_LENGTH:
        raise InputError(f"{what}: a sequence of {longest} nt gives more than {MAX_SEQ_LENGTH} tokens at k={s.k}")
    corpus = pretrain_corpus(kept, s.k, s.seed, do_val=True, path=what)
    info = {"source": what, "selection": selected, "n_read": len(records),
            "n_dropped_sharing_a_stretch_with_folds": int(shared.sum()), "stretch_nt": s.group_overlap,
            "n_sequences": len(kept), "n_train": len(corpus[f"{s.k}_train"]), "n_val": len(corpus[f"{s.k}_val"]),
            "overlap_with_folds": int(sharing([window_seq(r) for r in kept], [r.seq for r in windows],
                                              s.group_overlap).sum())}
    return corpus, info
