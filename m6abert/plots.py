"""Figures: every plotting function returns a matplotlib ``Figure`` and never writes a file.

Figures are built with the object-oriented API (``matplotlib.figure.Figure`` on an Agg canvas),
not pyplot, so they need no display and leave no global state; save them with
:func:`m6abert.io.save_figure`.
"""

from __future__ import annotations

import numpy as np


# ---------------------------------------------------------------------------- motif logos
def motif_logo(pfm_counts: np.ndarray, title: str = ""):
    """Information-content sequence logo of a motif's windows, drawn offline with logomaker.

    The original's weblogo call needed the online WebLogo server (and is commented out in the
    m6A fork); logomaker draws the same kind of logo locally. Counts are turned into bits with
    logomaker's default pseudocount of 1 per base.

    Parameters
    ----------
    pfm_counts: np.ndarray, shape=(W, 4)
        Counts of A, C, G, T at each window position
        (:func:`m6abert.motifs.position_frequency_matrix`).
    title: str
        Figure title. Default is "".

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
        pd.DataFrame(counts, columns=list("ACGT")), from_type="counts", to_type="information"
    )  # W, 4
    fig = Figure(figsize=(max(4.0, 0.3 * len(bits)), 2.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    logomaker.Logo(bits, ax=ax, color_scheme="classic")
    ax.set_ylim(0, 2)
    ax.set_xlabel("position in window")
    ax.set_ylabel("bits")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
