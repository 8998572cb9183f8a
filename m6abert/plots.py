"""Figures: every plotting function returns a matplotlib ``Figure`` and never writes a file.

Figures are built with the object-oriented API (``matplotlib.figure.Figure`` on an Agg canvas),
not pyplot, so they need no display and leave no global state; save them with
:func:`m6abert.io.save_figure`.
"""

from __future__ import annotations

import numpy as np

from .constants import ALPHABET, SITE_INDEX


# ---- score plots
def _score_rows(scores: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (sequences x positions), not shape {arr.shape}")
    return arr


def _agg_figure(size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig


def score_heatmap(
    pos_scores: np.ndarray, neg_scores: np.ndarray, site_index: int = SITE_INDEX, title: str = "",
    pos_ids: list[str] | None = None, neg_ids: list[str] | None = None,
):
    """Heatmap of per-nucleotide scores: positives above negatives, x in nt relative to the m6A site.

    Each group fills a band whose height follows its share of the rows but is at least a quarter
    of the plot, so a few hundred positives stay visible above thousands of negatives. Within a
    group, rows are sorted by the position of their highest score, and every cell is drawn as it is
    (nearest-neighbour: a few rows are not smeared into blobs); with ``pos_ids``/``neg_ids`` and at
    most 40 rows, each row is labelled by its id. A black line separates the bands and a dashed
    line marks the site (position 0). Colours run from 0 to the 99th percentile of the scores, so a
    few extreme values do not wash the rest out.

    Parameters
    ----------
    pos_scores: np.ndarray, shape=(n_pos, W)
        Scores of label-1 sequences (rows of ``atten_*.npy`` / ``attributions_*.npy``).
    neg_scores: np.ndarray, shape=(n_neg, W)
        Scores of label-0 sequences; either group may be empty, not both.
    site_index: int
        Column of the m6A site; column ``j`` is drawn at ``j - site_index``. Default is 250.
    title: str
        Figure title. Default is "".

    Returns
    -------
    matplotlib.figure.Figure
    """
    pos, neg = _score_rows(pos_scores, "pos_scores"), _score_rows(neg_scores, "neg_scores")
    pos, pos_ids = _by_peak(pos, pos_ids)
    neg, neg_ids = _by_peak(neg, neg_ids)
    groups = [(name, g) for name, g in (("positives", pos), ("negatives", neg)) if g.shape[0] > 0]
    if not groups:
        raise ValueError("no score rows to draw")
    width = groups[0][1].shape[1]
    if any(g.shape[1] != width for _, g in groups):
        raise ValueError(f"pos_scores and neg_scores differ in width ({pos.shape[1]} vs {neg.shape[1]})")
    values = np.concatenate([g.ravel() for _, g in groups])
    values = values[np.isfinite(values)]
    vmin = min(0.0, float(np.percentile(values, 1))) if values.size else 0.0
    vmax = float(np.percentile(values, 99)) if values.size else 1.0
    vmax = vmax if vmax > vmin else vmin + 1.0
    total = sum(g.shape[0] for _, g in groups)
    share = [g.shape[0] / total for _, g in groups]
    if len(groups) == 2:
        share[0] = min(max(share[0], 0.25), 0.75)
        share[1] = 1.0 - share[0]
    fig = _agg_figure((9.0, 5.5))
    ax = fig.add_subplot()
    x0, x1 = -site_index - 0.5, width - site_index - 0.5
    top, ticks, labels = 0.0, [], []
    for (name, g), h in zip(groups, share, strict=True):
        image = ax.imshow(g, extent=(x0, x1, top + h, top), aspect="auto", cmap="YlGnBu",
                          vmin=vmin, vmax=vmax, interpolation="nearest")
        ids = pos_ids if name == "positives" else neg_ids
        if ids is not None and total <= 40:  # few rows: each one named
            ticks += [top + (j + 0.5) * h / g.shape[0] for j in range(g.shape[0])]
            labels += [f"{i} ({name[:3]})" for i in ids]
        else:
            ticks.append(top + h / 2)
            labels.append(f"{name}\n(n = {g.shape[0]})")
        top += h
    if len(groups) == 2:
        ax.axhline(share[0], color="black", linewidth=2)
    ax.axvline(0, color="red", linestyle="--", linewidth=0.8, alpha=0.8)
    ax.set_ylim(1.0, 0.0)
    ax.set_xlim(x0, x1)
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("position relative to the m6A site (nt)")
    fig.colorbar(image, ax=ax, label="score", fraction=0.04, pad=0.02)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def _by_peak(rows: np.ndarray, ids: list[str] | None) -> tuple[np.ndarray, list[str] | None]:
    """Rows (and their ids) sorted by the position of each row's highest finite score."""
    if rows.shape[0] == 0:
        return rows, ids
    peak = np.argmax(np.where(np.isfinite(rows), rows, -np.inf), axis=1)
    order = np.argsort(peak, kind="stable")
    return rows[order], None if ids is None else [ids[i] for i in order]


def _mean_band(g: np.ndarray, n_boot: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column means of ``g`` (NaN ignored) and their 95 % percentile bootstrap band over rows: it stays
    inside the range the scores can take (a mean |score| band never goes below 0)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column (past every sequence's end)
        mean = np.nanmean(g, axis=0)
        if g.shape[0] < 2:
            return mean, mean, mean
        rng = np.random.default_rng(seed)
        boots = np.stack([np.nanmean(g[rng.integers(0, g.shape[0], g.shape[0])], axis=0) for _ in range(n_boot)])
        lo, hi = np.nanpercentile(boots, [2.5, 97.5], axis=0)
    return mean, lo, hi


def score_profile(
    pos_scores: np.ndarray, neg_scores: np.ndarray, site_index: int = SITE_INDEX, title: str = "",
    ylabel: str = "mean score (95 % CI)",
):
    """Mean score per position of positives and negatives with 95 % confidence bands.

    The band is the 95 % percentile bootstrap band of the mean (200 resamples of the rows; none for a
    group of one sequence): unlike mean ± 1.96 SE it respects the quantity, so the band of a mean
    |score| never goes below 0. Non-finite scores are ignored. A dashed line marks the m6A site at 0; where scores
    are signed (some negative), a grey line marks 0 on the y axis, so a region that pushes towards
    "not degraded" (below) is told apart from one that pushes towards "degraded" (above).

    Parameters
    ----------
    pos_scores: np.ndarray, shape=(n_pos, W)
    neg_scores: np.ndarray, shape=(n_neg, W)
        Either group may be empty, not both.
    site_index: int
        Column of the m6A site. Default is 250.
    title: str
        Figure title. Default is "".
    ylabel: str
        Default is "mean score (95 % CI)".

    Returns
    -------
    matplotlib.figure.Figure
    """
    pos, neg = _score_rows(pos_scores, "pos_scores"), _score_rows(neg_scores, "neg_scores")
    if pos.shape[0] == 0 and neg.shape[0] == 0:
        raise ValueError("no score rows to draw")
    fig = _agg_figure((9.0, 3.5))
    ax = fig.add_subplot()
    for name, g, colour in (("positives", pos, "tab:red"), ("negatives", neg, "tab:blue")):
        if g.shape[0] == 0:
            continue
        mean, lo, hi = _mean_band(np.where(np.isfinite(g), g, np.nan))
        x = np.arange(g.shape[1]) - site_index
        ax.plot(x, mean, color=colour, linewidth=1.2, label=f"{name} (n = {g.shape[0]})")
        ax.fill_between(x, lo, hi, color=colour, alpha=0.25, linewidth=0)
    ax.axvline(0, color="black", linestyle="--", linewidth=0.8)
    if (np.concatenate([pos.ravel(), neg.ravel()]) < 0).any():
        ax.axhline(0, color="grey", linewidth=0.6)
    ax.set_xlabel("position relative to the m6A site (nt)")
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper right", frameon=False)
    ax.margins(x=0)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- mutation maps
def mutation_map(delta: np.ndarray, seq: str, first: int = 0, title: str = "", letters: str | None = None):
    """DeepBind-style mutation map: a 4 x W heatmap of Δ log-odds with the reference bases marked,
    under the sequence logo of the reference weighted by its importance (the letter of each position
    is as tall as minus the mean Δ of its three substitutions: above 0 where the reference base
    supports "degraded", below where it works against it). ``letters`` name the rows (A, C, G, U for
    mRNA, :data:`m6abert.constants.LETTERS`); default: U when ``seq`` has a U.

    Rows are A, C, G, T (top to bottom); column ``j`` is drawn at position ``first + j`` relative to
    the m6A site. Colours are symmetric around 0 (red: the mutant raises the log-odds, blue: it
    lowers them); a black dot marks the reference base of each position (its Δ is 0).

    Parameters
    ----------
    delta: np.ndarray, shape=(W, 4)
        Mutant minus reference log-odds of each position and new base (A, C, G, T), the mutated
        range of one row of ``ism_*.npy``.
    seq: str
        The W reference bases.
    first: int
        Position of column 0 relative to the site (``start - site_index``). Default is 0.
    title: str
        Figure title. Default is "".

    Returns
    -------
    matplotlib.figure.Figure
    """
    d = np.asarray(delta, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] != 4 or d.shape[0] == 0 or len(seq) != d.shape[0]:
        raise ValueError(f"delta must have shape (len(seq), 4), not {d.shape} for {len(seq)} bases")
    finite = np.abs(d[np.isfinite(d)])
    vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    width = d.shape[0]
    letters = letters or (ALPHABET.replace("T", "U") if "U" in seq.upper() else ALPHABET)
    fig = _agg_figure((min(max(4.0, 0.06 * width + 2.0), 30.0), 4.2))
    top, ax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1.6]})
    x0, x1 = first - 0.5, first + width - 0.5
    _importance_logo(top, d, seq, first, letters)
    image = ax.imshow(d.T, extent=(x0, x1, 3.5, -0.5), aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                      interpolation="nearest")
    rows = {b: i for i, b in enumerate(ALPHABET)}
    marked = [(first + j, rows[b]) for j, b in enumerate(seq.upper().replace("U", "T")) if b in rows]
    if marked:
        xs, ys = zip(*marked, strict=True)
        ax.scatter(xs, ys, s=max(1.0, min(12.0, 3000.0 / width)), c="black", marker="o", linewidths=0)
    if first <= 0 < first + width:
        ax.axvline(0, color="black", linestyle="--", linewidth=0.6, alpha=0.6)
    ax.set_yticks(range(4), list(letters))
    ax.set_xlim(x0, x1)
    ax.set_xlabel("position relative to the m6A site (nt)")
    fig.colorbar(image, ax=[top, ax], label="Δ log-odds", fraction=0.04, pad=0.02)
    if title:
        top.set_title(title)
    return fig


def _importance_logo(ax, delta: np.ndarray, seq: str, first: int, letters: str) -> None:
    """The reference sequence as a logo, each letter as tall as minus the mean Δ of its substitutions."""
    import logomaker
    import pandas as pd

    ref = [ALPHABET.find(b) for b in seq.upper().replace("U", "T")]
    heights = np.zeros((len(ref), 4))
    for j, r in enumerate(ref):
        if r >= 0:
            others = [c for c in range(4) if c != r and np.isfinite(delta[j, c])]
            heights[j, r] = -float(np.mean(delta[j, others])) if others else 0.0
    logo = pd.DataFrame(heights, columns=list(letters), index=np.arange(first, first + len(ref)))
    logomaker.Logo(logo, ax=ax, color_scheme="classic", flip_below=False)
    low, high = min(0.0, float(heights.min())), max(0.0, float(heights.max()))
    pad = 0.08 * (high - low) or 1.0
    ax.set_ylim(low - (pad if low < 0 else 0.0), high + pad)  # every letter whole
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.set_ylabel("−mean Δ")


# ---------------------------------------------------------------------------- motif logos
def motif_logo(pfm_counts: np.ndarray, title: str = "", first: int | None = None, letters: str = ALPHABET):
    """Information-content sequence logo of a motif's windows, drawn offline with logomaker.

    The original's weblogo call needed the online WebLogo server (and is commented out in the
    m6A fork); logomaker draws the same kind of logo locally. Counts are turned into bits with
    logomaker's default pseudocount of 1 per base.

    Parameters
    ----------
    pfm_counts: np.ndarray, shape=(W, 4)
        Counts of A, C, G, T at each window position
        (:func:`m6abert.motif_summary.position_frequency_matrix`).
    title: str
        Figure title. Default is "".
    first: int or None
        Position of the first column relative to the m6A site (the x axis is then in nt from the
        site); None numbers the columns 0..W-1 in the window. Default is None.
    letters: str
        The four letters drawn for A, C, G, T (``"ACGU"`` for mRNA). Default is "ACGT".

    Returns
    -------
    matplotlib.figure.Figure
    """
    import logomaker
    import pandas as pd
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = np.asarray(pfm_counts, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[1] != 4 or counts.shape[0] == 0:
        raise ValueError(f"pfm_counts must have shape (W, 4), not {counts.shape}")
    bits = logomaker.transform_matrix(
        pd.DataFrame(counts, columns=list(letters)), from_type="counts", to_type="information"
    )  # W, 4
    if first is not None:
        bits.index = np.arange(first, first + len(bits))
    fig = Figure(figsize=(max(4.0, 0.3 * len(bits)), 2.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    logomaker.Logo(bits, ax=ax, color_scheme="classic")
    ax.set_ylim(0, 2)
    ax.set_xlabel("position in window" if first is None else "position relative to the m6A site (nt)")
    ax.set_ylabel("bits")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- comparison table
def roc_figure(panels: dict[str, dict[str, tuple]], title: str = ""):
    """Pooled ROC curves, one panel per protocol and one curve per model, each with its band.

    Parameters
    ----------
    panels: dict
        ``{panel title: {model label: (fpr, tpr, AUC, band)}}``; ``band`` is None or a
        :func:`m6abert.metrics.roc_band` (``fpr``, ``lo``, ``hi``), drawn shaded.
    title: str
        Figure title. Default is "".

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = _agg_figure((4.6 * len(panels), 4.4))
    for j, (name, curves) in enumerate(panels.items()):
        ax = fig.add_subplot(1, len(panels), j + 1)
        for label, (fpr, tpr, auc, band) in curves.items():
            line, = ax.plot(fpr, tpr, lw=1.3, label=f"{label} (AUC {auc:.3f})")
            if band is not None:
                ax.fill_between(band["fpr"], band["lo"], band["hi"], color=line.get_color(), alpha=0.15, lw=0)
        ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="0.6")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(loc="lower right", fontsize=6.5, frameon=False)
        ax.set_title(name, fontsize=8.5)
    if title:
        fig.suptitle(title, fontsize=9.5)
    fig.tight_layout()
    return fig


def fold_auc_figure(panels: dict[str, dict[str, list[float]]], title: str = ""):
    """Each fold's AUC of every model as a paired dot plot: models along x, one grey line per fold
    joining its models' AUCs (a difference between models is a slope within folds), the mean as a
    black bar; y from 0.5 (chance; lower only when a fold is below it). One panel per protocol, on one
    y scale.

    Parameters
    ----------
    panels: dict
        ``{panel title: {model label: [AUC of fold 0, fold 1, ...]}}``.
    title: str
        Figure title. Default is "".

    Returns
    -------
    matplotlib.figure.Figure
    """
    values = [v for aucs in panels.values() for vs in aucs.values() for v in vs if np.isfinite(v)]
    top = min(1.0, max(values, default=1.0) + 0.03)
    bottom = min(0.5, min(values, default=0.5) - 0.03)  # from 0.5 (chance), lower only to show a fold below it
    n_models = max((len(aucs) for aucs in panels.values()), default=1)
    fig = _agg_figure((max(4.2, 0.9 * n_models + 1.2) * len(panels), 4.0))
    for j, (name, aucs) in enumerate(panels.items()):
        ax = fig.add_subplot(1, len(panels), j + 1)
        table = np.array([np.asarray(v, dtype=np.float64) for v in aucs.values()])  # models x folds
        x = np.arange(len(aucs))
        for fold in table.T:
            ax.plot(x, fold, color="0.55", lw=0.8, marker="o", ms=3.5, alpha=0.8)
        ax.hlines(table.mean(axis=1), x - 0.25, x + 0.25, color="k", lw=2)
        ax.axhline(0.5, ls="--", lw=0.8, color="0.6")
        ax.set_xticks(x, list(aucs), rotation=30, ha="right", fontsize=7)
        ax.set_ylim(bottom, top)
        ax.set_ylabel("AUC on the held-out fold")
        ax.set_title(name, fontsize=8.5)
    if title:
        fig.suptitle(title, fontsize=9.5)
    fig.tight_layout()
    return fig


def reliability_figure(panels: dict[str, dict[str, dict]], title: str = ""):
    """Reliability diagrams: each model's observed positive rate against its mean P(degraded) per bin
    (:func:`m6abert.metrics.calibration`), the diagonal being perfect calibration; one panel per protocol.

    Parameters
    ----------
    panels: dict
        ``{panel title: {model label: calibration dict}}``.
    title: str
        Figure title. Default is "".

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = _agg_figure((4.4 * len(panels), 4.4))
    for j, (name, models) in enumerate(panels.items()):
        ax = fig.add_subplot(1, len(panels), j + 1)
        for label, cal in models.items():
            ax.plot(cal["bins"]["mean_p"], cal["bins"]["observed"], marker="o", ms=3, lw=1.1,
                    label=f"{label} (Brier {cal['brier']:.3f}, ECE {cal['ece']:.3f})")
        ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="0.6")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("mean predicted P(degraded) in the bin")
        ax.set_ylabel("fraction degraded in the bin")
        ax.legend(loc="upper left", fontsize=6, frameon=False)
        ax.set_title(name, fontsize=8.5)
    if title:
        fig.suptitle(title, fontsize=9.5)
    fig.tight_layout()
    return fig
