"""Statistics over windows of one locus: the weighted AUC, the class-stratified cluster bootstrap of an
AUC difference and of the ROC curve, and calibration (m6abert.metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from m6abert.metrics import (
    calibration,
    cluster_weights,
    paired_bootstrap_auc,
    paired_cluster_bootstrap_auc,
    roc_band,
    weighted_auc,
)


def two_models(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Balanced labels and two correlated, imperfect scores (the model's a little better than the reference's)."""
    rng = np.random.default_rng(seed)
    y = np.repeat([1, 0], n // 2)
    shared = rng.normal(size=n)
    p_model = 1 / (1 + np.exp(-(1.2 * y + shared + 0.6 * rng.normal(size=n))))
    p_ref = 1 / (1 + np.exp(-(0.9 * y + shared + 0.6 * rng.normal(size=n))))
    return y, p_model, p_ref


def width(result: dict) -> float:
    return result["ci"][1] - result["ci"][0]


# ---------------------------------------------------------------------------- weighted AUC
def test_weighted_auc_equals_sklearn_with_sample_weights_on_tied_scores():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    scores = np.round(rng.random(300) * 0.6 + 0.3 * y, 1)  # 10 levels or so: many ties, across the classes too
    assert len(np.unique(scores)) < 15 and any(len(set(y[scores == s])) == 2 for s in np.unique(scores))
    weights = np.vstack([np.ones(300), rng.integers(0, 4, 300), rng.random(300) * 3])  # ones, counts, any weights
    got = weighted_auc(y, scores, weights)
    want = [roc_auc_score(y, scores, sample_weight=w) for w in weights]
    assert got.shape == (3,)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert got[0] == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    assert weighted_auc(y, scores, weights[1]).shape == (1,)  # one row of weights is one resample


# ---------------------------------------------------------------------------- cluster bootstrap of an AUC difference
def test_singleton_groups_give_the_window_bootstrap_interval():
    """With every window its own group the cluster bootstrap is the class-stratified window bootstrap:
    the same difference and, with 2000 resamples, the same interval within 0.01 at each end."""
    y, p_model, p_ref = two_models()
    window = paired_bootstrap_auc(y, p_model, p_ref, n_boot=2000, seed=3)
    cluster = paired_cluster_bootstrap_auc(y, p_model, p_ref, np.arange(len(y)), n_boot=2000, seed=4)
    assert cluster["diff"] == pytest.approx(window["diff"], abs=1e-12)
    assert window["ci"][0] < window["diff"] < window["ci"][1] and width(window) > 0.02  # a real interval to compare
    assert cluster["ci"] == pytest.approx(window["ci"], abs=0.01)
    assert cluster["n_groups"] == cluster["n"] == len(y) and cluster["n_boot"] == 2000


def test_duplicated_windows_widen_nothing_in_the_cluster_bootstrap_but_shrink_the_window_bootstrap():
    """Every window 5 times (a group of 5 copies): the cluster interval stays as wide as the original
    data's; the window bootstrap, counting copies as evidence, shrinks by about sqrt(5)."""
    y, p_model, p_ref = two_models()
    n = len(y)
    orig = paired_bootstrap_auc(y, p_model, p_ref, n_boot=2000, seed=5)
    y5, m5, r5, g5 = (np.repeat(a, 5) for a in (y, p_model, p_ref, np.arange(n)))
    cluster5 = paired_cluster_bootstrap_auc(y5, m5, r5, g5, n_boot=2000, seed=6)
    window5 = paired_bootstrap_auc(y5, m5, r5, n_boot=2000, seed=7)
    assert cluster5["diff"] == pytest.approx(orig["diff"], abs=1e-12) == window5["diff"]
    assert cluster5["n"] == 5 * n and cluster5["n_groups"] == n
    assert 0.85 < width(cluster5) / width(orig) < 1.15
    assert width(window5) / width(orig) < 0.6  # 1/sqrt(5) = 0.45
    assert width(window5) / width(cluster5) < 0.6


def test_identical_models_differ_by_zero_in_every_resample():
    y, p_model, _ = two_models()
    groups = np.arange(len(y)) // 3
    out = paired_cluster_bootstrap_auc(y, p_model, p_model.copy(), groups, n_boot=300, seed=0)
    assert out["diff"] == 0 and out["ci"] == [0.0, 0.0] and out["contains_zero"] is True


def test_cluster_weights_keep_the_number_of_groups_in_each_stratum():
    """Whole groups drawn within their stratum (all-positive, all-negative, mixed): every resample draws
    as many groups of each stratum as there are, and a window weighs what its group was drawn."""
    rng = np.random.default_rng(2)
    groups, labels = [], []
    for i in range(90):  # i % 3: 0 all negative, 1 all positive, 2 mixed (both classes)
        size = rng.integers(2 if i % 3 == 2 else 1, 6)
        groups += [i * 7 + 3] * size  # group names are not 0..G-1
        labels += [i % 3] * size if i % 3 < 2 else [j % 2 for j in range(size)]
    order = rng.permutation(len(groups))  # a group's members scattered
    groups, labels = np.array(groups)[order], np.array(labels)[order]
    stratum = {g: (1 if labels[groups == g].all() else 0 if not labels[groups == g].any() else 2)
               for g in np.unique(groups)}
    assert set(stratum.values()) == {0, 1, 2}
    w = cluster_weights(labels, groups, n_boot=200, seed=9)
    assert w.shape == (200, len(labels))
    names = np.unique(groups)
    first = np.array([np.flatnonzero(groups == g)[0] for g in names])
    draws = w[:, first]  # (B, G): how often each group was drawn
    for g, row in zip(names, first, strict=True):
        assert (w[:, groups == g] == w[:, [row]]).all()  # one weight per group
    assert np.array_equal(draws, np.round(draws)) and (draws >= 0).all()
    for s in (0, 1, 2):
        in_s = np.array([stratum[g] == s for g in names])
        assert (draws[:, in_s].sum(axis=1) == in_s.sum()).all(), s
    assert draws.std(axis=0).min() > 0  # drawn with replacement: counts vary
    assert np.array_equal(w, cluster_weights(labels, groups, n_boot=200, seed=9))


# ---------------------------------------------------------------------------- ROC band
def test_roc_band_holds_the_pooled_curve():
    from sklearn.metrics import roc_curve

    y, p_model, _ = two_models(n=600, seed=8)
    groups = np.arange(len(y)) // 2 + 1000 * y  # pairs of windows of one class
    band = roc_band(y, p_model, groups, n_boot=300, seed=1)
    fpr, tpr, _ = roc_curve(y, p_model)
    pooled = np.interp(band["fpr"], fpr, tpr)
    assert band["fpr"].shape == band["lo"].shape == band["hi"].shape == (101,)
    assert band["fpr"][0] == 0 and band["fpr"][-1] == 1
    assert (band["lo"] <= band["hi"]).all()
    assert (band["lo"] >= 0).all() and (band["hi"] <= 1).all()
    inside = (band["lo"] - 1e-12 <= pooled) & (pooled <= band["hi"] + 1e-12)
    assert inside.mean() >= 0.9, np.flatnonzero(~inside)
    assert (band["hi"] - band["lo"])[10:90].mean() > 0.02  # a band, not the curve itself


# ---------------------------------------------------------------------------- calibration
def bernoulli(n: int = 20000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    return (rng.random(n) < p).astype(int), p


def test_calibrated_probabilities_have_a_small_ece_and_the_expected_brier():
    y, p = bernoulli()
    out = calibration(y, p)
    assert out["ece"] < 0.02
    assert out["brier"] == pytest.approx(np.mean(p * (1 - p)), abs=0.005)
    bins = out["bins"]
    assert out["n_bins"] == 10 and len(bins["n"]) == 10 and sum(bins["n"]) == len(y)
    np.testing.assert_allclose(bins["observed"], bins["mean_p"], atol=0.03)  # the reliability diagram's diagonal
    assert bins["mean_p"] == sorted(bins["mean_p"])


def test_shifted_probabilities_have_a_larger_ece():
    y, p = bernoulli()
    good, shifted = calibration(y, p), calibration(y, p**3)
    assert shifted["ece"] > 0.1 > good["ece"] * 5
    assert shifted["brier"] > good["brier"]


def test_brier_equals_sklearn():
    from sklearn.metrics import brier_score_loss

    y, p = bernoulli(n=3000, seed=4)
    for q in (p, p**3, np.clip(p + 0.2, 0, 1)):
        assert calibration(y, q, n_bins=7)["brier"] == pytest.approx(brier_score_loss(y, q), abs=1e-12)
