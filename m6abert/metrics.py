"""Classification metrics as the original reported them, plus AUPR and positive-class scores.

The original's ``dnaprom`` metrics are accuracy, MACRO F1/precision/recall, MCC and ROC AUC of
P(class 1), with predictions by argmax (ties go to class 0). They are kept under their original
names; the positive-class values and AUPR are extra keys.
"""

from __future__ import annotations

import numpy as np

from .utils import log

ORIGINAL_KEYS = ("acc", "f1", "mcc", "auc", "precision", "recall")


def softmax_p1(logits: np.ndarray) -> np.ndarray:
    """P(class 1) from (N, 2) logits, float32, shape (N,)."""
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite logits give NaN; callers refuse them
        z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        return (e[:, 1] / e.sum(axis=1)).astype(np.float32)


def log_odds(logits: np.ndarray) -> np.ndarray:
    """log P(class 1) - log P(class 0) = logit1 - logit0 of (N, 2) logits, float64, shape (N,).

    >>> log_odds(np.array([[0.5, 2.0]], dtype=np.float32)).tolist()
    [1.5]
    """
    return logits[:, 1].astype(np.float64) - logits[:, 0]


def classification_metrics(labels: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    """The original's six metrics (macro averages) plus ``aupr`` and ``*_pos`` positive-class scores.

    Parameters
    ----------
    labels: np.ndarray, shape=(N,)
        True labels in {0, 1}.
    logits: np.ndarray, shape=(N, 2)
        Model outputs.

    Returns
    -------
    dict[str, float]
        acc, f1, mcc, auc, precision, recall, aupr, precision_pos, recall_pos, f1_pos. AUC and AUPR
        are NaN when the labels hold a single class.
    """
    from sklearn.metrics import (  # scikit-learn is slow to import: only where metrics are computed
        accuracy_score,
        average_precision_score,
        f1_score,
        matthews_corrcoef,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    probs = softmax_p1(logits)
    preds = logits.argmax(axis=1)
    two_classes = len(np.unique(labels)) == 2
    if not two_classes:
        log.warning("AUC and AUPR are undefined (written as null): the %d labels hold one class only", len(labels))
    kw = {"zero_division": 0}
    return {
        "acc": float(accuracy_score(labels, preds)),
        "f1": float(f1_score(labels, preds, average="macro", **kw)),
        "mcc": float(matthews_corrcoef(labels, preds)),
        "auc": float(roc_auc_score(labels, probs)) if two_classes else float("nan"),
        "precision": float(precision_score(labels, preds, average="macro", **kw)),
        "recall": float(recall_score(labels, preds, average="macro", **kw)),
        "aupr": float(average_precision_score(labels, probs)) if two_classes else float("nan"),
        "precision_pos": float(precision_score(labels, preds, pos_label=1, **kw)),
        "recall_pos": float(recall_score(labels, preds, pos_label=1, **kw)),
        "f1_pos": float(f1_score(labels, preds, pos_label=1, **kw)),
    }


def eval_results_line(metrics: dict[str, float], data_dir: str) -> str:
    """One line of the original's ``eval_results.txt``.

    The basename of ``data_dir`` as the original took it (``data_dir.split('/')[-1]``, empty with
    a trailing slash), then the six original metrics in sorted key order, each ``str(value)[:5]``
    (truncated, not rounded), each followed by a space.

    >>> eval_results_line({"acc": 0.87123, "f1": 0.5, "mcc": -0.0512, "auc": 0.9, "precision": 1.0,
    ...                    "recall": 0.25, "aupr": 0.3}, "data/3_decay_250")
    '3_decay_250 0.871 0.9 0.5 -0.05 1.0 0.25 '
    """
    fields = "".join(f"{str(metrics[key])[:5]} " for key in sorted(ORIGINAL_KEYS))
    return f"{data_dir.split('/')[-1]} {fields}"


def summarise_folds(per_fold: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation of each metric over folds."""
    keys = [key for key in per_fold[0] if isinstance(per_fold[0][key], int | float)]
    out = {}
    for key in keys:
        vals = np.array([f[key] for f in per_fold], dtype=np.float64)
        out[key] = {"mean": float(np.mean(vals)), "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0}
    return out


def paired_t_interval(diffs: np.ndarray, level: float = 0.95, test_train_ratio: float = 0.0) -> dict[str, float | bool]:
    """Mean of paired differences (one per fold) with its Student-t confidence interval and p-value.

    Folds of a cross-validation share most of their training data, so their differences are not
    independent and the plain paired t is too narrow; ``test_train_ratio`` = n_test / n_train
    (1 / (k - 1) for k folds) applies Nadeau and Bengio's (2003) corrected variance,
    sd^2 * (1/n + n_test/n_train). 0 is the plain paired t.

    >>> r = paired_t_interval(np.array([0.01, 0.03, 0.02, 0.02, 0.02]))
    >>> round(r["mean"], 4), [round(v, 4) for v in r["ci"]], r["contains_zero"]
    (0.02, [0.0112, 0.0288], False)
    """
    from scipy import stats

    d = np.asarray(diffs, dtype=np.float64)
    n, mean = len(d), float(np.mean(d))
    sd = float(np.std(d, ddof=1)) if n > 1 else float("nan")
    se = sd * np.sqrt(1.0 / n + test_train_ratio)
    if not se > 0:  # identical differences (or one fold): the interval is the mean itself
        return {"mean": mean, "sd": sd, "ci": [mean, mean], "p": float("nan") if mean == 0 or n < 2 else 0.0,
                "n": n, "level": level, "contains_zero": bool(mean == 0)}
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * se)
    p = float(2 * stats.t.sf(abs(mean / se), n - 1))
    lo, hi = mean - half, mean + half
    return {"mean": mean, "sd": sd, "ci": [lo, hi], "p": p, "n": n, "level": level,
            "contains_zero": bool(lo <= 0 <= hi)}


def auc_of_resamples(labels: np.ndarray, scores: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """ROC AUC of each resample: ``rows`` (B, N) indices into ``labels``/``scores``, ties as half.

    The Mann-Whitney form with mid-ranks, vectorised over resamples; equals scikit-learn's
    ``roc_auc_score`` of each resample.
    """
    from scipy.stats import rankdata

    y = labels[rows]  # B, N
    ranks = rankdata(scores[rows], axis=1)  # B, N
    n1 = y.sum(axis=1)
    n0 = y.shape[1] - n1
    return ((ranks * y).sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def paired_bootstrap_auc(labels: np.ndarray, p_model: np.ndarray, p_ref: np.ndarray, n_boot: int = 2000,
                         seed: int = 52, level: float = 0.95) -> dict[str, float | bool | list]:
    """The pooled AUC difference ``model - ref`` with a paired, class-stratified bootstrap interval.

    Each resample draws positives and negatives with replacement (their numbers kept) and scores
    both models on the same rows; the interval is the percentile one.
    """
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    rows = np.concatenate([rng.choice(pos, (n_boot, len(pos))), rng.choice(neg, (n_boot, len(neg)))], axis=1)
    everything = np.arange(len(labels))[None, :]
    diff = float(auc_of_resamples(labels, p_model, everything)[0] - auc_of_resamples(labels, p_ref, everything)[0])
    boot = auc_of_resamples(labels, p_model, rows) - auc_of_resamples(labels, p_ref, rows)
    lo, hi = (float(v) for v in np.quantile(boot, [0.5 - level / 2, 0.5 + level / 2]))
    return {"diff": diff, "ci": [lo, hi], "n_boot": n_boot, "n": len(labels), "level": level,
            "contains_zero": bool(lo <= 0 <= hi)}


def cluster_weights(labels: np.ndarray, groups: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap weights (B, N) of a class-stratified cluster bootstrap: whole groups are drawn with
    replacement, within their stratum (all-positive, all-negative or mixed groups, their numbers
    kept); a window's weight is how often its group was drawn."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    _, g = np.unique(groups, return_inverse=True)
    share = np.bincount(g, weights=labels) / np.bincount(g)  # positives' share of each group
    stratum = np.where(share == 1, 1, np.where(share == 0, 0, 2))
    rng = np.random.default_rng(seed)
    counts = np.zeros((n_boot, len(share)))
    for s in (0, 1, 2):
        members = np.flatnonzero(stratum == s)
        if len(members):
            draws = rng.integers(0, len(members), (n_boot, len(members)))
            np.add.at(counts, (np.arange(n_boot)[:, None], members[draws]), 1)
    return counts[:, g]


def weighted_auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC (ties as half) of each row of ``weights`` (B, N): the Mann-Whitney statistic with
    every window counted ``weight`` times; equals scikit-learn's ``roc_auc_score(sample_weight=)``."""
    labels, scores, weights = np.asarray(labels), np.asarray(scores), np.atleast_2d(weights)
    levels, level = np.unique(scores, return_inverse=True)
    neg = np.zeros((len(weights), len(levels)))
    np.add.at(neg.T, level, (weights * (labels == 0)).T)
    below = np.cumsum(neg, axis=1) - neg  # negative weight strictly below each level
    pos_w = weights * (labels == 1)
    wins = (pos_w * (below[:, level] + 0.5 * neg[:, level])).sum(axis=1)
    return wins / (pos_w.sum(axis=1) * neg.sum(axis=1))


def paired_cluster_bootstrap_auc(labels: np.ndarray, p_model: np.ndarray, p_ref: np.ndarray, groups: np.ndarray,
                                 n_boot: int = 2000, seed: int = 52, level: float = 0.95) -> dict:
    """The pooled AUC difference ``model - ref`` with a paired, class-stratified **cluster**
    bootstrap interval (:func:`cluster_weights`: windows of one locus are drawn together, so near
    duplicates do not count as independent evidence); the interval is the percentile one."""
    labels = np.asarray(labels, dtype=np.int64)
    w = cluster_weights(labels, groups, n_boot, seed)
    one = np.ones((1, len(labels)))
    diff = float(weighted_auc(labels, p_model, one)[0] - weighted_auc(labels, p_ref, one)[0])
    boot = weighted_auc(labels, p_model, w) - weighted_auc(labels, p_ref, w)
    lo, hi = (float(v) for v in np.quantile(boot, [0.5 - level / 2, 0.5 + level / 2]))
    return {"diff": diff, "ci": [lo, hi], "n_boot": n_boot, "n": len(labels),
            "n_groups": len(np.unique(groups)), "level": level, "contains_zero": bool(lo <= 0 <= hi)}


def roc_band(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray, n_boot: int = 500, seed: int = 52,
             level: float = 0.95, grid: int = 101) -> dict[str, np.ndarray]:
    """The pooled ROC curve's pointwise cluster-bootstrap band: true positive rates at ``grid``
    false positive rates, the ``level`` percentile interval over resamples of whole groups."""
    labels = np.asarray(labels)
    order = np.argsort(-np.asarray(scores), kind="stable")
    last = np.r_[np.diff(np.asarray(scores)[order]) != 0, True]  # the end of each run of tied scores
    fpr_grid = np.linspace(0, 1, grid)
    tprs = []
    for w in cluster_weights(labels, groups, n_boot, seed)[:, order]:
        tp, fp = np.cumsum(w * labels[order])[last], np.cumsum(w * (1 - labels[order]))[last]
        tprs.append(np.interp(fpr_grid, np.r_[0, fp / fp[-1]], np.r_[0, tp / tp[-1]]))
    lo, hi = np.quantile(np.array(tprs), [0.5 - level / 2, 0.5 + level / 2], axis=0)
    return {"fpr": fpr_grid, "lo": lo, "hi": hi}


def calibration(labels: np.ndarray, p1: np.ndarray, n_bins: int = 10) -> dict:
    """Brier score, expected calibration error (``n_bins`` equal-width bins of P, weighted by their
    counts) and each bin's mean P, observed positive rate and count (the reliability diagram)."""
    labels, p1 = np.asarray(labels, dtype=np.float64), np.asarray(p1, dtype=np.float64)
    which = np.minimum((p1 * n_bins).astype(int), n_bins - 1)
    bins = {"mean_p": [], "observed": [], "n": []}
    ece = 0.0
    for b in range(n_bins):
        sel = which == b
        if sel.any():
            bins["mean_p"].append(float(p1[sel].mean()))
            bins["observed"].append(float(labels[sel].mean()))
            bins["n"].append(int(sel.sum()))
            ece += sel.mean() * abs(p1[sel].mean() - labels[sel].mean())
    return {"brier": float(np.mean((p1 - labels) ** 2)), "ece": float(ece), "n_bins": n_bins, "bins": bins}
