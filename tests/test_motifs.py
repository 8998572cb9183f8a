"""m6abert.motifs (+ its io writers, the logo and find_motifs.py): edge cases, hand-computed
p-values, merging, windows, a planted motif, and end-to-end runs of the script.

Bad input is in tests/test_errors.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from m6abert import io, motif_summary, motifs
from m6abert.data import read_labelled_scores
from m6abert.kmer import seq2kmer
from m6abert.motifs import Instance, contiguous_regions, make_window, merge_motifs, motif_analysis

PLANTED = "TGTAAATA"


def planted_data(seed: int = 0, n: int = 200, length: int = 101):
    """Random positives (most carrying PLANTED, scored 1.0 there, noise elsewhere) and negatives."""
    rng = np.random.default_rng(seed)

    def rand_seq() -> str:
        return "".join(rng.choice(list("ACGT"), length))

    pos, scores, starts = [], [], []
    for i in range(n):
        seq, score = rand_seq(), rng.uniform(0.0, 0.02, length)
        start = None
        if i % 10:  # 90% carry the motif
            start = int(rng.integers(0, length - len(PLANTED) + 1))
            seq = seq[:start] + PLANTED + seq[start + len(PLANTED):]
            score[start:start + len(PLANTED)] = 1.0
        pos.append(seq)
        scores.append(score)
        starts.append(start)
    neg = [rand_seq() for _ in range(n)]
    return pos, neg, np.array(scores), starts


# ---------------------------------------------------------------------------- regions
@pytest.mark.parametrize(
    "cond, min_len, expected",
    [
        ([1, 1, 0, 0, 1, 1, 1], 1, [[0, 2], [4, 7]]),  # starts and ends True
        ([0, 1, 1, 1, 0], 1, [[1, 4]]),
        ([1, 1, 1, 1], 4, [[0, 4]]),  # all True, exactly min_len
        ([1, 1, 1, 1], 5, []),
        ([0, 0, 0], 1, []),
        ([1, 0, 1, 1, 0, 1, 1, 1], 2, [[2, 4], [5, 8]]),  # shorter runs dropped
        ([1], 1, [[0, 1]]),
        ([], 1, []),
    ],
)
def test_contiguous_regions(cond, min_len, expected):
    got = contiguous_regions(np.array(cond, dtype=bool), min_len)
    assert got.shape == (len(expected), 2) and got.tolist() == expected


def test_find_high_scores_is_dnabert_rule():
    score = np.array([0.0, 0.1, 0.5, 0.6, 0.7, 0.8, 0.9, 0.1, 0.0, 0.0])
    assert motifs.find_high_scores(score, min_len=5).tolist() == [[2, 7]]  # > mean (0.37) and > 0
    floor = np.full(10, 0.1)
    floor[3:8] = 0.9  # min 0.1: the "> 10*min" test (> 1.0) rejects everything
    assert motifs.find_high_scores(floor, min_len=1).tolist() == []


def test_candidate_motifs_truncate_scores_to_the_sequence():
    score = np.zeros(12)
    score[6:11] = 1.0  # beyond the 8-nt sequence from index 8
    found = motifs.candidate_motifs(["AAAAAACG"], score[None, :], min_len=2)
    assert found == {"CG": [Instance(0, 6, 8)]}
    with pytest.raises(ValueError, match="score row 0"):
        motifs.candidate_motifs(["AAAAAACG"], np.zeros((1, 5)))


# ---------------------------------------------------------------------------- enrichment
def test_count_motif_instances_one_per_sequence():
    seqs = ["GGACGGAC", "AGGACA", "TTTT", "GACGAC"]
    counts = motifs.count_motif_instances(seqs, ["GGAC", "GAC", "ACG", "CCCC", "GAC"])
    assert counts.tolist() == [2, 3, 2, 0, 3]


def hyper_sf(x: int, big_n: int, big_k: int, n: int) -> float:
    """P[X >= x] by hand."""
    return sum(math.comb(big_k, i) * math.comb(big_n - big_k, n - i) for i in range(x, min(n, big_k) + 1)) / math.comb(
        big_n, n
    )


def test_hypergeom_against_hand_computation():
    from scipy.stats import hypergeom

    pos = ["AAGGACT", "GGACTTT", "CCCCCCC"]
    neg = ["GGACAAA", "TTTTTTT"]
    res = motifs.hypergeom_test(pos, neg, ["GGAC", "CCCC"])
    assert res.n_target.tolist() == [2, 1] and res.n_all.tolist() == [3, 1]
    # sequences background: N = 5, K = 3
    assert res.p_values[0] == pytest.approx(hyper_sf(2, 5, 3, 3)) == pytest.approx(0.7)
    assert res.p_values[1] == pytest.approx(hyper_sf(1, 5, 3, 1)) == pytest.approx(hypergeom.sf(0, 5, 3, 1))
    # Benjamini-Hochberg by hand: sorted p, p_(i) * m / i, then cumulative minimum from the top
    p = res.p_values
    order = np.argsort(p)
    bh = np.minimum.accumulate((p[order] * len(p) / np.arange(1, len(p) + 1))[::-1])[::-1]
    expected = np.empty_like(bh)
    expected[order] = np.minimum(bh, 1)
    np.testing.assert_allclose(res.p_adjusted, expected)
    # the m6A fork's background: N = sum of n over motifs (4), K = sum of x (3)
    fork = motifs.hypergeom_test(pos, neg, ["GGAC", "CCCC"], background="motif_counts")
    assert fork.p_values[0] == pytest.approx(hyper_sf(2, 4, 3, 3))
    assert fork.p_values[1] == pytest.approx(hyper_sf(1, 4, 3, 1))
    with pytest.raises(ValueError, match="background"):
        motifs.hypergeom_test(pos, neg, ["GGAC"], background="motifs")


# ---------------------------------------------------------------------------- merging
def test_overlapping_motifs_merge_onto_the_key_frame():
    inst = {"GGACTT": [Instance(0, 1, 7)], "GACTTA": [Instance(1, 2, 8)], "CCCCC": [Instance(2, 0, 5)]}
    merged = merge_motifs(inst, min_len=5)
    assert set(merged) == {"CCCCC", "GGACTT"}  # CCCCC is shorter, so it is visited first
    # GACTTA at 2..8 -> GGACTT starts one to the left: 1..7, same length as the key
    assert merged["GGACTT"] == [Instance(0, 1, 7), Instance(1, 1, 7)]
    assert merged["CCCCC"] == [Instance(2, 0, 5)]
    assert inst["GGACTT"] == [Instance(0, 1, 7)]  # the input is not modified


def test_merge_contained_motif_and_unrelated():
    inst = {"TGTAAATAC": [Instance(0, 10, 19)], "GTAAA": [Instance(1, 4, 9)], "CCGCG": [Instance(2, 3, 8)]}
    merged = merge_motifs(inst, min_len=5)
    assert set(merged) == {"GTAAA", "CCGCG"}
    assert merged["GTAAA"] == [Instance(1, 4, 9), Instance(0, 11, 16)]


def test_align_all_ties_merges_into_every_best_key():
    # GGACT and ACTGG share only 3 letters (< min_len-1): two keys. GGACTGG aligns 5 letters to each.
    inst = {"GGACT": [Instance(0, 0, 5)], "ACTGG": [Instance(1, 0, 5)], "GGACTGG": [Instance(2, 10, 17)]}
    both = merge_motifs(inst, min_len=5, align_all_ties=True)
    assert both["GGACT"][-1] == Instance(2, 10, 15) and both["ACTGG"][-1] == Instance(2, 12, 17)
    first = merge_motifs(inst, min_len=5, align_all_ties=False)
    assert len(first["GGACT"]) == 2 and len(first["ACTGG"]) == 1


# ---------------------------------------------------------------------------- windows
def test_make_window_bounds_and_odd_remainder():
    seq = "ACGTACGTAC"  # length 10
    inst = {
        "m": [
            Instance(0, 3, 6),  # d=3, W=6: left 1, right 2 -> 2..8
            Instance(0, 1, 4),  # left 1 -> 0..6: starts exactly at 0, kept
            Instance(0, 0, 3),  # would start at -1: dropped
            Instance(0, 5, 8),  # 4..10: ends exactly at the end, kept (the original dropped it)
            Instance(0, 6, 9),  # 5..11: beyond the end, dropped
        ]
    }
    got = make_window(inst, [seq], window_size=6)["m"]
    assert [(w.start, w.end) for w in got] == [(2, 8), (0, 6), (4, 10)]
    assert [w.seq for w in got] == [seq[2:8], seq[0:6], seq[4:10]]
    strict = make_window(inst, [seq], window_size=6, strict_end=True)["m"]
    assert [(w.start, w.end) for w in strict] == [(2, 8), (0, 6)]
    shrunk = make_window({"m": [Instance(0, 1, 9)]}, [seq], window_size=5)["m"][0]  # d=8 > W: shrink
    assert (shrunk.start, shrunk.end) == (3, 8)  # as the original: 2 off the left, 1 off the right


def test_position_frequency_matrix():
    pfm = motif_summary.position_frequency_matrix(["ACGT", "AUGN", "ACGT"])
    assert pfm.shape == (4, 4)
    assert pfm.tolist() == [[3, 0, 0, 0], [0, 2, 0, 1], [0, 0, 3, 0], [0, 0, 0, 2]]
    with pytest.raises(ValueError, match="length"):
        motif_summary.position_frequency_matrix(["ACG", "AC"])


# ---------------------------------------------------------------------------- planted motif
def shares_planted(motif: str) -> bool:
    if PLANTED in motif:
        return True
    if motif in PLANTED:
        return len(motif) >= 6
    return False


def test_planted_motif_is_found_first():
    pos, neg, scores, starts = planted_data()
    found = motif_analysis(pos, neg, scores, window_size=24, min_len=5, pval_cutoff=0.05, min_n_motif=3)
    assert found, "no motif found"
    top = found[0]
    assert shares_planted(top.motif), [m.motif for m in found[:5]]
    assert top.p_adjusted < 1e-20
    assert top.n_instances == len(top.seq_idx) == len(top.regions) == len(top.windows) == len(top.seqs)
    left = (24 - len(top.motif)) // 2
    for i, (s, e), (ws, we), seq in zip(top.seq_idx, top.regions, top.windows, top.seqs, strict=True):
        assert we - ws == 24 and pos[i][ws:we] == seq and 0 <= ws and we <= len(pos[i])
        assert ws == s - left and e - s == len(top.motif)
        if top.motif == PLANTED:
            assert s == starts[i] and seq[left:left + 8] == PLANTED
    # sorted by adjusted p, then instance count descending
    keys = [(m.p_adjusted, -m.n_instances) for m in found]
    assert keys == sorted(keys)


def test_motif_analysis_checks_row_count():
    with pytest.raises(ValueError, match="score rows"):
        motif_analysis(["ACGTACGT"], [], np.zeros((2, 8)))
    assert motif_analysis(["ACGTACGT"], ["ACGT"], np.zeros((1, 8))) == []  # no high-score region


# ---------------------------------------------------------------------------- writers and logo
def test_write_motif_outputs_and_logo(tmp_path):
    m = motifs.Motif("GGACT", [0, 2], [(250, 255), (248, 253)], [(245, 260), (243, 258)],
                     ["A" * 15, "C" * 15], 1e-8, 2e-7, 2)
    written = io.write_motif_outputs(tmp_path, motif_summary.motif_records([m], site_index=250), site_index=250, set_name="pos")
    assert (tmp_path / "pos" / "motif_GGACT_2.txt").read_text() == "A" * 15 + "\n" + "C" * 15 + "\n"
    table = (tmp_path / "motifs_pos.tsv").read_text().splitlines()
    assert table[0] == "motif\tconsensus\tinstances\tp_value\tp_adjusted\tpositions"
    # two windows, A... and C...: every position carries 1 bit, the tie goes to A
    assert table[1] == "GGACT\t" + "A" * 15 + "\t2\t1e-08\t2e-07\t0,-2"
    rec = json.loads((tmp_path / "motifs_pos.json").read_text())
    assert rec["site_index"] == 250 and rec["motifs"]["GGACT"]["positions"] == [0, -2]
    assert rec["motifs"]["GGACT"]["windows"] == [[245, 260], [243, 258]]
    assert len(written) == 3
    io.write_motif_outputs(tmp_path, motif_summary.motif_records([m]), prefix="x_")  # no set: everything in save_dir
    assert (tmp_path / "x_motif_GGACT_2.txt").exists() and (tmp_path / "x_motifs.tsv").exists()

    from matplotlib.figure import Figure
    from matplotlib.image import imread

    from m6abert.plots import motif_logo

    fig = motif_logo(motif_summary.position_frequency_matrix(m.seqs), "GGACT")
    assert isinstance(fig, Figure)
    paths = io.save_figure(fig, tmp_path / "logo", formats=("png", "svg"))
    assert [p.name for p in paths] == ["logo.png", "logo.svg"]
    assert imread(paths[0]).size > 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


# ---------------------------------------------------------------------------- find_motifs.py
def write_scored_set(folder: Path, name: str, seed: int = 0, width: int = 110, n: int = 200):
    """TSV + atten npy for a planted data set; rows alternate positive / negative."""
    pos, neg, pos_scores, starts = planted_data(seed, n)
    rng = np.random.default_rng(seed + 1)
    sentences, labels, rows = [], [], []
    for i in range(n):
        sentences += [seq2kmer(pos[i], 3), seq2kmer(neg[i], 3)]
        labels += [1, 0]
        rows += [np.r_[pos_scores[i], np.zeros(width - 101)], rng.uniform(0, 0.02, width)]
    io.write_tsv(folder / f"{name}.tsv", sentences, labels)
    io.save_npy(folder / f"atten_{name}.npy", np.array(rows))
    return pos, starts


def test_find_motifs_end_to_end(tmp_path):
    from matplotlib.image import imread

    import find_motifs

    pos, starts = write_scored_set(tmp_path, "dev")
    out = tmp_path / "out"
    find_motifs.main(["--data_dir", str(tmp_path), "--npy_dir", str(tmp_path), "--data_name", "dev",
                      "--vis_task", "attn", "--save_file_dir", str(out), "--align_all_ties",
                      "--site_index", "50", "--do_plot"])
    table = (out / "motifs_pos.tsv").read_text().splitlines()
    assert table[0].split("\t") == ["motif", "consensus", "instances", "p_value", "p_adjusted", "positions", "ids"]
    top, core, n, _, p_adj, positions, ids = table[1].split("\t")
    assert len(ids.split(",")) == int(n) and all(i.isdigit() for i in ids.split(","))  # row numbers: no records.tsv
    assert shares_planted(top) and PLANTED in core and float(p_adj) < 1e-20
    rec = json.loads((out / "motifs_pos.json").read_text())["motifs"][top]
    assert rec["n_instances"] == int(n) and [int(x) for x in positions.split(",")] == rec["positions"]
    if top == PLANTED:  # positions are relative to --site_index
        assert rec["positions"] == [starts[i] - 50 for i in rec["seq_idx"]]
    lines = (out / "pos" / f"motif_{top}_{n}.txt").read_text().split("\n")
    assert len(lines) == int(n) + 1 and lines[-1] == "" and all(len(s) == 24 for s in lines[:-1])
    logo = imread(out / "pos" / f"motif_{top}_{n}_logo.png")
    assert logo.ndim == 3 and logo.shape[0] > 10 and logo.shape[1] > 10
    args = json.loads((out / "pos" / "find_motifs_args.json").read_text())
    assert args["set"] == "pos" and args["site_index"] == 50

    # --set neg: label-0 rows only hold noise; results go to their own files
    find_motifs.main(["--set", "neg", "--data_dir", str(tmp_path), "--npy_dir", str(tmp_path),
                      "--data_name", "dev", "--vis_task", "attn", "--save_file_dir", str(out)])
    assert (out / "motifs_neg.tsv").exists() and (out / "motifs_neg.json").exists()
    assert (out / "motifs_pos.tsv").read_text().splitlines()[1].startswith(top)


def test_read_labelled_scores_all_concatenates_in_order(tmp_path):
    for seed, name in enumerate(("train", "dev", "test")):
        write_scored_set(tmp_path, name, seed=seed, n=3)
    data = read_labelled_scores(tmp_path, tmp_path, "all", "attn")
    assert len(data.seqs) == 18 and data.scores.shape == (18, 110)
    dev = read_labelled_scores(tmp_path, tmp_path, "dev", "attn")
    assert data.seqs[6:12] == dev.seqs and np.array_equal(data.scores[6:12], dev.scores)
    for name, block in (("train", slice(0, 6)), ("test", slice(12, 18))):
        assert data.seqs[block] == read_labelled_scores(tmp_path, tmp_path, name, "attn").seqs, name
    assert data.labels.tolist() == [1, 0] * 9
