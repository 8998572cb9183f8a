"""Mean score profiles of a class and where they peak (pure numpy, no file I/O).

A per-nucleotide score array (attention, attribution or the ISM summary, ``(N, W)``) is averaged
over the rows of one class, smoothed with a centred moving average and searched for its maximum;
the peak is reported relative to the m6A site (0 is the site, negative upstream).

>>> scores = np.zeros((2, 11)); scores[:, 2:5] = [1.0, 2.0, 1.0]
>>> profile_peak(scores, np.array([1, 1]), site_index=5, smooth=3)
-2
"""

from __future__ import annotations

import numpy as np

from .constants import SITE_INDEX
from .utils import InputError

SMOOTH = 25  # nt of the centred moving average


def cropped(scores: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A copy of ``scores`` cut to the longest sequence, NaN past each sequence's end (figures leave it blank)."""
    width = int(min(scores.shape[1], lengths.max())) if len(lengths) else scores.shape[1]
    shown = scores[:, :width].astype(np.float64)
    shown[np.arange(width)[None, :] >= lengths[:, None]] = np.nan
    return shown


def class_rows(scores: np.ndarray, labels: np.ndarray | None = None, *, label: int = 1,
               length: int | None = None) -> np.ndarray:
    """The rows of class ``label``, cut to ``length`` columns, without rows holding NaN or infinity.

    Parameters
    ----------
    scores: np.ndarray, shape=(N, W)
        Per-nucleotide scores.
    labels: np.ndarray or None, shape=(N,)
        Class of each row. Default is None (every row).
    label: int
        Class kept. Default is 1 (positives).
    length: int or None
        Columns kept (the sequence length; score arrays may be wider). Default is None (all).

    Returns
    -------
    np.ndarray, shape=(n, length)
        float64 rows, all finite.

    Raises
    ------
    InputError
        ``scores`` not 2-D, ``labels`` of another length, or no finite row of the class.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise InputError(f"scores must be a 2-D (sequences x positions) array, not {scores.ndim}-D")
    if length is not None:
        scores = scores[:, :length]
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (scores.shape[0],):
            raise InputError(f"{labels.shape[0] if labels.ndim else 0} labels for {scores.shape[0]} score rows")
        scores = scores[labels == label]
    rows = scores[np.isfinite(scores).all(axis=1)]
    if not len(rows):
        raise InputError(f"no finite score row of class {label}: no profile")
    return rows


def moving_average(values: np.ndarray, width: int = SMOOTH) -> np.ndarray:
    """Centred moving average of ``width`` (odd) positions; at the ends, over the positions there are.

    Non-finite values are left out of the averages; a position with no finite value in reach is NaN.

    >>> moving_average(np.array([0.0, 3.0, 0.0, 0.0]), 3).tolist()
    [1.5, 1.0, 1.0, 0.0]
    """
    values = np.asarray(values, dtype=np.float64)
    if width < 1 or width % 2 == 0:
        raise InputError(f"the moving average needs an odd width >= 1, not {width}")
    if width > len(values):
        raise InputError(f"a moving average of {width} positions is wider than the {len(values)}-position profile")
    finite = np.isfinite(values)
    kernel = np.ones(width)
    sums = np.convolve(np.where(finite, values, 0.0), kernel, mode="same")
    counts = np.convolve(finite.astype(np.float64), kernel, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def mean_profile(scores: np.ndarray, labels: np.ndarray | None = None, *, label: int = 1,
                 length: int | None = None, smooth: int = SMOOTH) -> np.ndarray:
    """The smoothed mean profile of class ``label`` (see :func:`class_rows`, :func:`moving_average`).

    Returns
    -------
    np.ndarray, shape=(length,)
        float64; index ``i`` is sequence position ``i``.
    """
    return moving_average(class_rows(scores, labels, label=label, length=length).mean(axis=0), smooth)


def profile_peak(scores: np.ndarray, labels: np.ndarray | None = None, *, label: int = 1,
                 site_index: int = SITE_INDEX, length: int | None = None, smooth: int = SMOOTH) -> int:
    """Position, relative to the site, where the smoothed mean profile of class ``label`` peaks.

    Parameters
    ----------
    scores: np.ndarray, shape=(N, W)
        Per-nucleotide scores (attention, attribution, ISM summary).
    labels: np.ndarray or None, shape=(N,)
        Class of each row. Default is None (every row).
    label: int
        Class whose rows are averaged. Default is 1 (positives).
    site_index: int
        Sequence index of the m6A site. Default is 250.
    length: int or None
        Columns used (the sequence length). Default is None (all of ``scores``).
    smooth: int
        Width of the centred moving average (odd; 1: none). Default is 25.

    Returns
    -------
    int
        ``argmax - site_index`` (the first maximum on ties): negative is upstream of the site.

    Raises
    ------
    InputError
        See :func:`class_rows` and :func:`moving_average`.
    """
    profile = mean_profile(scores, labels, label=label, length=length, smooth=smooth)
    return int(np.nanargmax(profile)) - site_index
