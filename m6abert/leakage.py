"""Splits that keep the windows of one locus together, and the leakage report of any split.

Overlapping windows of one transcript (or one site in two splice isoforms) share long exact
stretches; :func:`window_groups` joins them into locus groups (:func:`m6abert.groups.overlap_groups`).
``get_input.py --group_overlap K`` cuts its train/dev/test split (:func:`grouped_cuts`) or its folds
by those groups, and every fine-tuning split writes ``leakage.json`` (:func:`group_files`); a split
folder written earlier is checked by :func:`split_dir_leakage` (``m6abert-leakage``).
"""

from __future__ import annotations

import numpy as np

from . import io, sites
from .groups import grouped_parts, leakage, leakage_line, overlap_groups
from .io import FastaRecord
from .kmer import normalise
from .utils import log

LEAKAGE_K = 30  # the stretch length of the leakage report when the split is not grouped


def window_groups(records: list[FastaRecord], k: int, extend_len: int | None = None,
                  declared: dict[str, int] | None = None) -> dict[str, int]:
    """A group per record id: records whose windows (as written: cropped by ``extend_len``, upper
    case, U as T) share an exact ``k``-nt stretch, directly or through others
    (:func:`m6abert.groups.overlap_groups`)."""
    seqs = [window_seq(r, extend_len, declared) for r in records]
    return dict(zip((r.id for r in records), overlap_groups(seqs, k).tolist(), strict=True))


def window_seq(rec: FastaRecord, extend_len: int | None = None, declared: dict[str, int] | None = None) -> str:
    """A record's window as get_input.py writes it: cropped by ``extend_len`` around its site, upper case, U as T."""
    seq = rec.seq
    if extend_len is not None:
        seq = sites.crop(seq, sites.site_of(seq, (declared or {}).get(rec.id)), extend_len)
    return normalise(seq)


def grouped_cuts(pos: list[FastaRecord], negs: list[FastaRecord], groups: dict[str, int], seed: int, do_val: bool,
                 path: str) -> tuple[set[str], set[str]]:
    """The ids held out by a grouped split: one of 5 grouped, class-stratified parts of all records
    (:func:`m6abert.groups.grouped_parts`), then with ``do_val`` one of 10 parts of the rest (dev;
    else the second set is empty)."""
    ids, labels = [r.id for r in (*pos, *negs)], [1] * len(pos) + [0] * len(negs)
    cuts = []
    cuts_wanted = ((5, "the held-out split is cut from"), (10, "that --do_val cuts dev.tsv from (what test.tsv leaves)"))
    for n_parts, purpose in cuts_wanted[:1 + do_val]:
        part = grouped_parts(labels, [groups[i] for i in ids], n_parts, seed, path,
                             "a grouped split holds test.tsv as one of 5 grouped parts and, with --do_val, dev.tsv "
                             "as one of 10 parts of the rest; give more loci or lower --group_overlap", purpose)
        cuts.append({i for i, p in zip(ids, part, strict=True) if p == 0})
        ids, labels = zip(*[(i, lab) for i, lab, p in zip(ids, labels, part, strict=True) if p != 0], strict=True)
    return cuts[0], cuts[1] if do_val else set()


def cut_rows(recs: list[FastaRecord], rows: np.ndarray, held: set[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``rows`` (train, held out) of the records whose id is / is not in ``held``, in
    ``RandomState(seed).permutation`` order as the original's random split lists them."""
    order = np.random.RandomState(seed).permutation(len(rows))
    inside = np.array([recs[rows[j]].id in held for j in order], dtype=bool)
    return order[~inside], order[inside]


def group_files(used: list[FastaRecord], n_pos: int, part_of: dict[str, str], groups: dict[str, int] | None,
                 k: int, extend_len: int | None, declared: dict[str, int]) -> dict:
    """Writers of ``leakage.json`` (always) and ``groups.tsv`` (a grouped split: id, group, part)."""
    ids = [r.id for r in used]
    report = leakage([window_seq(r, extend_len, declared) for r in used], [1] * n_pos + [0] * (len(used) - n_pos),
                     [part_of[i] for i in ids], k, ids=ids)
    report = {"split": f"grouped (--group_overlap {k})" if groups else "random (ungrouped)", **report}
    log.info(leakage_line(report, "leakage.json"))
    files = {"leakage.json": lambda path: io.write_json(path, report)}
    if groups:
        columns = {"id": ids, "group": [groups[i] for i in ids], "part": [part_of[i] for i in ids]}
        files["groups.tsv"] = lambda path: io.write_table_tsv(path, columns)
    return files


