"""m6abert.data: balancing, splitting, k-fold CV, pretraining corpus and cropping on synthetic records."""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pytest

from m6abert import kmer
from m6abert import splits as data
from m6abert.io import FastaRecord
from m6abert.utils import InputError

KS = [3, 4, 5, 6]


def make_records(prefix: str, n: int, length: int = 41, seed: int = 0) -> list[FastaRecord]:
    rng = np.random.RandomState(seed)
    return [FastaRecord(f"{prefix}{i + 1}", "".join(rng.choice(list("ACGT"), size=length))) for i in range(n)]


@pytest.fixture
def pos() -> list[FastaRecord]:
    return make_records("p", 50, seed=1)


@pytest.fixture
def neg() -> list[FastaRecord]:
    return make_records("n", 230, seed=2)


def check_rows(split: data.Split, records: dict[str, str], k: int, extend_len: int | None = None) -> None:
    """Every row's sentence is the k-merised sequence of its record, and its label matches the id."""
    assert len(split.ids) == len(split.sentences) == len(split.labels)
    for rid, sentence, label in zip(*split, strict=True):
        seq = records[rid] if extend_len is None else data.centre_crop(records[rid], extend_len)
        assert sentence == kmer.seq2kmer(seq, k)
        assert label == (1 if rid.startswith("p") else 0)


def sizes(n: int, do_val: bool) -> tuple[int, int, int]:
    """(train, dev, test) rows per class as train_test_split(test_size=0.2) [+ (0.1)] gives them."""
    n_test = math.ceil(0.2 * n)
    if not do_val:
        return n - n_test, n_test, 0
    n_val = math.ceil(0.1 * (n - n_test))
    return n - n_test - n_val, n_val, n_test


# ---------------------------------------------------------------------------- finetune_splits
@pytest.mark.parametrize("do_val", [True, False])
def test_split_sizes_and_label_blocks(pos, neg, do_val):
    out = data.finetune_splits(pos, neg, k=3, seed=52, do_val=do_val)
    assert set(out) == ({"train", "dev", "test"} if do_val else {"train", "dev"})
    n_train, n_dev, n_test = sizes(len(pos), do_val)
    assert Counter(out["train"].labels) == {1: n_train, 0: n_train}
    assert out["dev"].labels == [1] * n_dev + [0] * n_dev
    if do_val:
        assert out["test"].labels == [1] * n_test + [0] * n_test
    records = {r.id: r.seq for r in pos + neg}
    for split in out.values():
        check_rows(split, records, 3)


def test_train_is_shuffled(pos, neg):
    train = data.finetune_splits(pos, neg, k=3, seed=52)["train"]
    n = len(train.labels) // 2
    assert train.labels != [1] * n + [0] * n
    assert 0 < sum(train.labels[:n]) < n  # positives are spread, not in a block


def test_splits_disjoint_and_cover_positives(pos, neg):
    out = data.finetune_splits(pos, neg, k=3, seed=7)
    ids = [rid for s in out.values() for rid in s.ids]
    assert len(ids) == len(set(ids))
    assert {r for r in ids if r.startswith("p")} == {r.id for r in pos}
    negs = {r for r in ids if r.startswith("n")}
    assert len(negs) == len(pos) and negs <= {r.id for r in neg}


def test_no_val_dev_is_the_held_out_test(pos, neg):
    with_val = data.finetune_splits(pos, neg, k=3, seed=52, do_val=True)
    no_val = data.finetune_splits(pos, neg, k=3, seed=52, do_val=False)
    assert no_val["dev"] == with_val["test"]
    assert set(no_val["train"].ids) == set(with_val["train"].ids) | set(with_val["dev"].ids)


def test_same_rows_for_every_k(pos, neg):
    records = {r.id: r.seq for r in pos + neg}
    ref = data.finetune_splits(pos, neg, k=3, seed=52)
    for k in KS[1:]:
        out = data.finetune_splits(pos, neg, k=k, seed=52)
        for name in ref:
            assert out[name].ids == ref[name].ids
            assert out[name].labels == ref[name].labels
            check_rows(out[name], records, k)


def test_seed_determines_split(pos, neg):
    a = data.finetune_splits(pos, neg, k=3, seed=52)
    assert data.finetune_splits(pos, neg, k=3, seed=52) == a
    b = data.finetune_splits(pos, neg, k=3, seed=53)
    assert b["test"].ids != a["test"].ids


def test_negatives_sampled_like_random_shuffle(pos, neg):
    expected = list(neg)
    random.Random(11).shuffle(expected)
    out = data.finetune_splits(pos, neg, k=3, seed=11)
    negs = {r for s in out.values() for r in s.ids if r.startswith("n")}
    assert negs == {r.id for r in expected[: len(pos)]}


def test_inputs_not_mutated(pos, neg):
    pos0, neg0 = list(pos), list(neg)
    data.finetune_splits(pos, neg, k=4, seed=52, neg_ratio=2)
    assert pos == pos0 and neg == neg0


@pytest.mark.parametrize("n_pos, n_neg", [(50, 230), (37, 37), (11, 40)])
@pytest.mark.parametrize("do_val", [True, False])
def test_matches_original_sklearn_algorithm(n_pos, n_neg, do_val):
    """The original get_input.py, written with scikit-learn, gives the same rows in the same order."""
    sk = pytest.importorskip("sklearn.model_selection")
    seed = 52
    pos, neg = make_records("p", n_pos, seed=3), make_records("n", n_neg, seed=4)
    seq_neg = list(neg)
    random.seed(seed)
    random.shuffle(seq_neg)
    pos_ids, neg_ids = [r.id for r in pos], [r.id for r in seq_neg[: len(pos)]]
    p_tr, p_te = sk.train_test_split(pos_ids, random_state=seed, test_size=0.2)
    n_tr, n_te = sk.train_test_split(neg_ids, random_state=seed, test_size=0.2)
    expected = {}
    if do_val:
        p_tr, p_va = sk.train_test_split(p_tr, random_state=seed, test_size=0.1)
        n_tr, n_va = sk.train_test_split(n_tr, random_state=seed, test_size=0.1)
        expected["dev"], expected["test"] = p_va + n_va, p_te + n_te
    else:
        expected["dev"] = p_te + n_te
    train = p_tr + n_tr
    np.random.seed(seed)
    idx = np.random.choice(range(len(train)), replace=False, size=len(train))
    expected["train"] = [train[i] for i in idx]

    out = data.finetune_splits(pos, neg, k=3, seed=seed, do_val=do_val)
    assert {name: s.ids for name, s in out.items()} == expected


@pytest.mark.parametrize("do_val", [True, False])
def test_neg_ratio_doubles_negatives(pos, neg, do_val):
    one = data.finetune_splits(pos, neg, k=3, seed=52, do_val=do_val)
    two = data.finetune_splits(pos, neg, k=3, seed=52, do_val=do_val, neg_ratio=2)
    n_train, n_dev, n_test = sizes(len(pos), do_val)
    n2_train, n2_dev, n2_test = sizes(2 * len(pos), do_val)
    assert Counter(two["train"].labels) == {1: n_train, 0: n2_train}
    assert two["dev"].labels == [1] * n_dev + [0] * n2_dev
    if do_val:
        assert two["test"].labels == [1] * n_test + [0] * n2_test
    # positives are split exactly as at ratio 1 (train is shuffled over more rows, so compare it as a set);
    # the ratio-1 negatives are among the ratio-2 ones
    for name in one:
        pos1 = [r for r in one[name].ids if r.startswith("p")]
        pos2 = [r for r in two[name].ids if r.startswith("p")]
        assert (set(pos2) == set(pos1)) if name == "train" else (pos2 == pos1)
    neg1 = {r for s in one.values() for r in s.ids if r.startswith("n")}
    neg2 = {r for s in two.values() for r in s.ids if r.startswith("n")}
    assert len(neg2) == 2 * len(pos) and neg1 < neg2


def test_too_few_negatives(pos):
    with pytest.raises(InputError, match=r"neg\.fa.*49 negative records.*50"):
        data.finetune_splits(pos, make_records("n", 49), k=3)
    with pytest.raises(InputError, match="fewer than the 100"):
        data.finetune_splits(pos, make_records("n", 60), k=3, neg_ratio=2, neg_path="neg.fa")


def test_sequence_shorter_than_k(pos, neg):
    short = pos[:-1] + [FastaRecord("p_short", "ACGTA")]
    with pytest.raises(InputError, match=r"my_pos\.fa: record p_short.*5 nt.*k=6"):
        data.finetune_splits(short, neg, k=6, pos_path="my_pos.fa")
    assert data.finetune_splits(short, neg, k=5)  # exactly k is fine


def test_bad_k(pos, neg):
    with pytest.raises(ValueError, match="3, 4, 5, 6"):
        data.finetune_splits(pos, neg, k=7)


def test_extend_len_crops_around_centre(pos, neg):
    records = {r.id: r.seq for r in pos + neg}
    out = data.finetune_splits(pos, neg, k=3, seed=52, extend_len=10)
    for split in out.values():
        check_rows(split, records, 3, extend_len=10)
        assert all(len(s.split()) == 21 - 3 + 1 for s in split.sentences)
    full = data.finetune_splits(pos, neg, k=3, seed=52, extend_len=20)  # 41 nt: 20 keeps everything
    assert full == data.finetune_splits(pos, neg, k=3, seed=52)


def test_n_kmers_are_kept_with_warning(caplog):
    pos = [FastaRecord(f"p{i}", "ACGTNACGTA") for i in range(10)]
    neg = [FastaRecord(f"n{i}", "TTGCAACGTA") for i in range(10)]
    out = data.finetune_splits(pos, neg, k=3, seed=1)
    assert "GTN TNA NAC" in out["train"].sentences[out["train"].labels.index(1)]
    assert "contain N" in caplog.text


# ---------------------------------------------------------------------------- centre_crop
@pytest.mark.parametrize("length, extend_len, expected", [
    (501, 250, slice(0, 501)),
    (501, 300, slice(0, 501)),
    (501, 100, slice(150, 351)),
    (501, 0, slice(250, 251)),
    (41, 10, slice(10, 31)),
    (40, 5, slice(14, 25)),  # even length: centre is index (len-1)//2 = 19
])
def test_centre_crop(length, extend_len, expected):
    seq = "".join(np.random.RandomState(length).choice(list("ACGT"), size=length))
    got = data.centre_crop(seq, extend_len)
    assert got == seq[expected]
    assert len(got) == min(length, 2 * extend_len + 1)


def test_centre_crop_keeps_the_site():
    seq = "C" * 250 + "A" + "G" * 250
    for e in (0, 1, 5, 100, 250):
        crop = data.centre_crop(seq, e)
        assert len(crop) == 2 * e + 1 and crop[e] == "A"


# ---------------------------------------------------------------------------- kfold_splits
@pytest.mark.parametrize("n_folds", [2, 5, 7])
def test_kfold_coverage_and_disjointness(pos, neg, n_folds):
    splits, folds = data.kfold_splits(pos, neg, k=3, n_folds=n_folds, seed=52)
    assert len(splits) == len(folds) == n_folds
    dev_ids = [r for s in splits for r in s["dev"].ids]
    assert len(dev_ids) == len(set(dev_ids)) == 2 * len(pos)  # every record in exactly one dev fold
    assert {r for r in dev_ids if r.startswith("p")} == {r.id for r in pos}
    assert sorted(r for f in folds for r in f["pos"] + f["neg"]) == sorted(dev_ids)
    records = {r.id: r.seq for r in pos + neg}
    for i, s in enumerate(splits):
        assert set(s) == {"train", "dev"}
        assert set(s["train"].ids).isdisjoint(s["dev"].ids)
        assert set(s["train"].ids) | set(s["dev"].ids) == set(dev_ids)
        n_dev_pos = s["dev"].labels.count(1)
        assert s["dev"].labels == [1] * n_dev_pos + [0] * (len(s["dev"].labels) - n_dev_pos)
        assert s["dev"].ids[:n_dev_pos] == folds[i]["pos"] and s["dev"].ids[n_dev_pos:] == folds[i]["neg"]
        check_rows(s["train"], records, 3)
        check_rows(s["dev"], records, 3)


@pytest.mark.parametrize("n_folds", [3, 5, 10])
def test_kfold_stratified(pos, neg, n_folds):
    splits, folds = data.kfold_splits(pos, neg, k=3, n_folds=n_folds, seed=52)
    per_fold = len(pos) / n_folds
    for s, f in zip(splits, folds, strict=True):
        assert abs(len(f["pos"]) - per_fold) < 1 and abs(len(f["neg"]) - per_fold) < 1
        assert s["dev"].labels.count(1) == len(f["pos"])
        n_train_pos = s["train"].labels.count(1)
        assert n_train_pos == len(pos) - len(f["pos"])
        assert s["train"].labels[:n_train_pos] != [1] * n_train_pos  # shuffled


def test_kfold_neg_ratio(pos, neg):
    splits, folds = data.kfold_splits(pos, neg, k=3, n_folds=5, seed=52, neg_ratio=2)
    assert sum(len(f["neg"]) for f in folds) == 2 * len(pos)
    for f in folds:
        assert len(f["neg"]) == 2 * len(f["pos"])


def test_kfold_same_negatives_as_finetune(pos, neg):
    _, folds = data.kfold_splits(pos, neg, k=3, n_folds=5, seed=52)
    out = data.finetune_splits(pos, neg, k=3, seed=52)
    assert {r for f in folds for r in f["neg"]} == {r for s in out.values() for r in s.ids if r[0] == "n"}


@pytest.mark.parametrize("n_folds", [0, 1, 51])
def test_kfold_bad_n_folds(pos, neg, n_folds):
    with pytest.raises(InputError, match="n_folds"):
        data.kfold_splits(pos, neg, k=3, n_folds=n_folds)


# ---------------------------------------------------------------------------- pretrain_corpus
def test_pretrain_corpus_in_order_with_u_as_t():
    recs = [FastaRecord("a", "ACGUACGU"), FastaRecord("b", "GGGCCCAAAU"), FastaRecord("c", "ACGT")]
    out = data.pretrain_corpus(recs, k=3)
    assert out == {"3": [kmer.seq2kmer("ACGTACGT", 3), kmer.seq2kmer("GGGCCCAAAT", 3), "ACG CGT"]}
    assert all("U" not in s for s in out["3"])


@pytest.mark.parametrize("k", KS)
def test_pretrain_corpus_val_split(k):
    recs = make_records("r", 95, seed=5)
    out = data.pretrain_corpus(recs, k=k, seed=52, do_val=True)
    assert set(out) == {f"{k}_train", f"{k}_val"}
    assert len(out[f"{k}_val"]) == math.ceil(0.1 * 95) and len(out[f"{k}_train"]) == 95 - 10
    all_kms = [kmer.seq2kmer(r.seq, k) for r in recs]
    assert sorted(out[f"{k}_train"] + out[f"{k}_val"]) == sorted(all_kms)
    assert set(out[f"{k}_train"]).isdisjoint(out[f"{k}_val"])
    assert data.pretrain_corpus(recs, k=k, seed=52, do_val=True) == out
    assert data.pretrain_corpus(recs, k=k, seed=1, do_val=True) != out


def test_pretrain_corpus_extend_len_and_short():
    recs = [FastaRecord("a", "AAAAACGTCCCCC")]
    assert data.pretrain_corpus(recs, k=3, extend_len=2) == {"3": ["ACG CGT GTC"]}
    with pytest.raises(InputError, match=r"pre\.fa: record a"):
        data.pretrain_corpus(recs, k=6, extend_len=1, path="pre.fa")


def test_centre_crop_finds_the_site_of_short_windows():
    """Short windows were cut at a transcript end: the site is at 250 (3' cut) or len-251 (5' cut)."""
    rng = np.random.RandomState(3)
    body = "".join(rng.choice(list("GT"), size=600))  # no A, so no stray "AC"
    cut3 = body[:250] + "AC" + body[252:340]  # 340 nt, site at 250
    cut5 = body[:89] + "AC" + body[91:340]  # 340 nt, site at 340-251 = 89
    assert data.site_index(cut3) == 250 and data.site_index(cut5) == 89
    assert data.centre_crop(cut3, 10) == cut3[240:261]
    assert data.centre_crop(cut5, 10) == cut5[79:100]
    # AC at neither index: the letters cannot tell; m6abert.sites' rule takes 250 (a 3' cut, as most are)
    assert data.site_index(body[:300]) == 250
    assert data.centre_crop(body[:301], 5) == body[245:256]
