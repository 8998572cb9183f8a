"""Figures a reader can publish: bands that respect the quantity, heatmaps that show their rows, a
mutation map under its importance logo, RNA letters for mRNA."""

from __future__ import annotations

import numpy as np

from m6abert.plots import _mean_band, motif_logo, mutation_map, score_heatmap, score_profile


def test_the_profile_band_of_a_non_negative_score_stays_above_0():
    """12 rows of a mean |Δ|: mostly 0, one large value a column. mean - 1.96 SE goes below 0; the
    bootstrap band of the figure does not, and it holds the mean."""
    rng = np.random.default_rng(1)
    g = np.zeros((12, 50))
    g[rng.integers(0, 12, 50), np.arange(50)] = rng.uniform(1, 3, 50)
    mean, lo, hi = _mean_band(g)
    se = g.std(axis=0, ddof=1) / np.sqrt(12)
    assert (mean - 1.96 * se < 0).all()  # what the old band drew
    assert (lo >= 0).all() and (lo <= mean).all() and (mean <= hi).all()
    fig = score_profile(g, g[:3], site_index=25)
    bands = [c for c in fig.axes[0].collections if len(c.get_paths())]
    assert bands and min(c.get_paths()[0].vertices[:, 1].min() for c in bands) >= 0


def test_heatmap_draws_each_cell_sorts_rows_by_peak_and_names_few_rows():
    rng = np.random.default_rng(2)
    pos = rng.random((5, 30))
    peaks = [20, 3, 11, 27, 7]
    for row, p in enumerate(peaks):
        pos[row, p] = 5.0
    fig = score_heatmap(pos, rng.random((4, 30)), site_index=15, pos_ids=list("abcde"), neg_ids=list("wxyz"))
    ax = fig.axes[0]
    images = ax.get_images()
    assert [im.get_interpolation() for im in images] == ["nearest", "nearest"]
    assert list(np.argmax(images[0].get_array(), axis=1)) == sorted(peaks)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[:5] == ["b (pos)", "e (pos)", "c (pos)", "a (pos)", "d (pos)"] and len(labels) == 9
    many = score_heatmap(rng.random((30, 30)), rng.random((30, 30)), 15, pos_ids=[str(i) for i in range(30)],
                         neg_ids=[str(i) for i in range(30)])
    assert [t.get_text() for t in many.axes[0].get_yticklabels()] == ["positives\n(n = 30)", "negatives\n(n = 30)"]


def test_mutation_map_has_the_importance_logo_above_and_rna_letters_for_mrna():
    rng = np.random.default_rng(3)
    seq = "ACGUACGUAC"
    delta = rng.normal(size=(10, 4))
    ref = ["ACGT".index(b.replace("U", "T")) for b in seq]
    delta[np.arange(10), ref] = 0
    fig = mutation_map(delta, seq, first=-5, title="Sequence 0")
    logo, heat = fig.axes[0], fig.axes[1]
    assert [t.get_text() for t in heat.get_yticklabels()] == ["A", "C", "G", "U"]
    assert logo.get_title() == "Sequence 0" and logo.get_xlim() == heat.get_xlim()
    expected = np.array([-np.mean([delta[j, c] for c in range(4) if c != ref[j]]) for j in range(10)])
    drawn = logo.get_ylim()
    assert drawn[0] <= expected.min() and expected.max() <= drawn[1]
    dna = mutation_map(delta, seq.replace("U", "T"), first=-5)
    assert [t.get_text() for t in dna.axes[1].get_yticklabels()] == ["A", "C", "G", "T"]
    # the rows are named by the letters asked for (visualize_all.py --letters rna: a T-coded mRNA window)
    rna = mutation_map(delta, seq.replace("U", "T"), first=-5, letters="ACGU")
    assert [t.get_text() for t in rna.axes[1].get_yticklabels()] == ["A", "C", "G", "U"]


def _pixels(fig) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())


def test_motif_logo_is_in_nt_from_the_site_and_in_rna_letters():
    counts = np.array([[0, 0, 0, 9], [0, 0, 9, 0], [0, 0, 0, 9], [9, 0, 0, 0]])  # TGTA
    fig = motif_logo(counts, "UGUA", first=-30, letters="ACGU")
    ax = fig.axes[0]
    assert np.allclose(ax.get_xlim(), (-30.5, -26.5), atol=0.05)
    assert ax.get_xlabel() == "position relative to the m6A site (nt)"
    assert np.allclose(motif_logo(counts).axes[0].get_xlim(), (-0.5, 3.5), atol=0.05)  # no site: the window's own
    # the same columns drawn with U and with T: the images differ (the T glyphs are U glyphs)
    rna, dna = _pixels(motif_logo(counts, first=-30, letters="ACGU")), _pixels(motif_logo(counts, first=-30))
    assert rna.shape == dna.shape and (rna != dna).any()


def test_visualize_labels_the_heatmap_rows_by_the_rows_names():
    """visualize_all.py's heatmap (commands.visualize.plot_scores) names its few rows by their ids,
    positives and negatives apart, each at its own row."""
    from m6abert.commands.visualize import plot_scores

    rng = np.random.default_rng(4)
    scores, labels = rng.random((4, 20)), np.array([1, 0, 1, 0])
    figs = plot_scores(scores, labels, np.full(4, 20), "s", 10, "title", ids=["r0", "r1", "r2", "r3"])
    names = [t.get_text() for t in figs["s_heatmap"].axes[0].get_yticklabels()]
    assert sorted(names) == ["r0 (pos)", "r1 (neg)", "r2 (pos)", "r3 (neg)"]
