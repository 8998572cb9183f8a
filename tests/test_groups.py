"""Windows of one locus: overlap groups by shared exact K-nt stretches, and a split's leakage report."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import DATA_DIR
from toy import random_seq

from m6abert.groups import leakage, overlap_groups, shared_pairs
from m6abert.utils import InputError


def _brute_pairs(seqs: list[str], k: int) -> set[tuple[int, int]]:
    """Pairs sharing a k-mer of A/C/G/T letters, by sets of substrings (the definition, written plainly)."""
    def kmers(s):
        return {s[p:p + k] for p in range(len(s) - k + 1) if set(s[p:p + k]) <= set("ACGT")}
    sets = [kmers(s.replace("U", "T")) for s in seqs]
    return {(i, j) for i, j in itertools.combinations(range(len(seqs)), 2) if sets[i] & sets[j]}


def test_shifted_windows_of_one_locus_are_one_group():
    rng = np.random.RandomState(0)
    locus, other = random_seq(rng, 700), random_seq(rng, 700)
    seqs = [locus[0:501], other[0:501], locus[40:541], locus[150:651], other[199:700], random_seq(rng, 501)]
    assert overlap_groups(seqs, k=30).tolist() == [0, 1, 0, 0, 1, 2]


def test_groups_are_transitive_and_need_a_whole_stretch():
    """a~b and b~c join a, b and c though a and c share nothing; 29 shared nt do not join at K = 30."""
    rng = np.random.RandomState(1)
    s = random_seq(rng, 200)
    a, b, c = s[0:80], s[50:130], s[100:180]  # a-b share 30 nt, b-c share 30 nt, a-c none
    d = s[151:200] + random_seq(rng, 40)  # shares 29 nt (151..179) with c
    assert overlap_groups([a, b, c, d], k=30).tolist() == [0, 0, 0, 1]
    assert overlap_groups([a, b, c, d], k=29).tolist() == [0, 0, 0, 0]


def test_other_letters_break_a_stretch_and_u_is_t():
    rng = np.random.RandomState(2)
    s = random_seq(rng, 60)
    broken = s[:29] + "N" + s[30:59]  # 59 nt: every 30-mer of it holds the N at index 29
    assert overlap_groups([s, broken], k=30).tolist() == [0, 1]
    assert overlap_groups([s, broken], k=29).tolist() == [0, 0]  # the 29 letters before the N
    assert overlap_groups([s, s.replace("T", "U")], k=32).tolist() == [0, 0]


@pytest.mark.parametrize("k", [3, 8, 30])
def test_pairs_equal_the_definition(k):
    rng = np.random.RandomState(k)
    base = random_seq(rng, 300)
    seqs = [base[o:o + rng.randint(20, 120)] for o in rng.randint(0, 250, size=25)] + [random_seq(rng, 60)]
    pairs = {tuple(p) for p in shared_pairs(seqs, k).tolist()}
    assert pairs == _brute_pairs(seqs, k)


def test_leakage_counts_cross_part_pairs_by_labels():
    rng = np.random.RandomState(3)
    x, y, z = random_seq(rng, 300), random_seq(rng, 300), random_seq(rng, 300)
    seqs = [x[:200], x[50:250], y[:200], y[60:260], z[:200], z[10:210]]
    labels = [1, 1, 0, 1, 0, 0]
    parts = ["train", "test", "train", "test", "dev", "dev"]  # x: pos-pos across, y: pos-neg across, z: inside dev
    report = leakage(seqs, labels, parts, k=30)
    assert report["cross_part_pairs"] == {"total": 2, "pos-pos": 1, "neg-neg": 0, "pos-neg": 1}
    assert report["windows_with_cross_part_partner"] == {"total": 4, "pos": 3, "neg": 1}
    assert report["same_part_pairs"] == 1 and report["n_windows"] == 6


def test_bad_k_is_refused():
    for k in (0, 33):
        with pytest.raises(InputError, match=r"overlap length must be in 1\.\.32 nt"):
            overlap_groups(["ACGT"], k=k)


def test_real_data_pairs_equal_the_definition(real_data_dir):
    """On the paper's first 300 positives, the k-mer index finds exactly the pairs the plain definition
    finds, and the groups are the connected components of those pairs."""
    from m6abert import io

    seqs = [r.seq for r in io.read_fasta(DATA_DIR / "pos.fa")][:300]
    pairs = {tuple(p) for p in shared_pairs(seqs, 30).tolist()}
    assert pairs == _brute_pairs(seqs, 30) and pairs
    groups = overlap_groups(seqs, 30)
    assert all(groups[i] == groups[j] for i, j in pairs)
    assert len(set(groups.tolist())) == len(seqs) - len(_spanning_edges(len(seqs), pairs))


def _spanning_edges(n: int, pairs: set[tuple[int, int]]) -> list[tuple[int, int]]:
    """The edges of a spanning forest of ``pairs`` (union-find): n minus their count is the number of components."""
    parent = list(range(n))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    kept = []
    for i, j in sorted(pairs):
        ri, rj = root(i), root(j)
        if ri != rj:
            parent[ri] = rj
            kept.append((i, j))
    return kept
