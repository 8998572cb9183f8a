"""Integrated gradients as a score method (``--vis_task attr``) with its own QC: completeness.

Integrated gradients' attributions add up to F(input) - F(baseline) when the integral is exact; the
quadrature's error per row (Captum's delta) against the size of that gap is the relative completeness
error. :func:`ig_output` computes the attributions (:func:`m6abert.attribution.attribute`), the
per-row QC table (:func:`completeness_table`, ``attributions_*_qc.tsv``), which rows are not to be
trusted (above ``--max_rel_delta`` and ``--max_abs_delta`` after the last integration,
:mod:`m6abert.integration`) and the signed profile figure.
"""

from __future__ import annotations

import numpy as np

from .inference import check_finite
from .integration import Tolerance, decided_by, within_tolerance
from .profiles import cropped
from .score_methods import ScoreOutput, method
from .utils import log


def ig_output(model, data, s, common: dict) -> ScoreOutput:
    """``--vis_task attr``: integrated gradients of ``data`` with the settings ``s`` (a
    :class:`~m6abert.commands.visualize.VisualizeSettings`), checked finite, with its QC."""
    from .attribution import attribute

    tol = s.tolerance
    res = attribute(model, data.dataset, method="ig", n_steps=tol.first, internal_batch_size=s.internal_batch_size,
                    attr_target=s.attr_target, baseline=s.baseline, n_baselines=s.n_baselines, seed=s.seed,
                    tolerance=tol, **common)
    check_finite(np.stack([res.delta, res.scores.sum(axis=1)], 1), s.model_path, data.names, "attributions")
    qc = completeness_table(res, data.labels, s.attr_target, data.names, tol)
    report_completeness(qc, s, method("attr").qc_name(s.data_name, s.layer))
    unreliable = np.asarray(qc["converged"]) == 0
    figures = {}
    if s.plot and data.labels is not None and len(data.labels):
        figures["signed_profile"] = signed_profile(s, res, data.labels, unreliable if s.skip_unreliable else None)
    return ScoreOutput(res.scores, res.lengths, {"signed": res.signed}, qc, unreliable, figures)


def completeness_table(res, labels: np.ndarray, attr_target: str, names: list[str],
                       tol: Tolerance | None = None) -> dict[str, list]:
    """Per sequence: label, P(class 1), the explained target at input and baseline (the mean over the
    references), Captum's delta (the mean over the references), the relative completeness error
    (:func:`~m6abert.attribution.relative_error`: abs_delta / gap, inf where the gap is 0), the gap
    (the mean over the references of |F(x) - F(reference)|) and abs_delta (the mean of their |delta|,
    the absolute error in target units); then the Gauss-Legendre steps its references took (the most),
    whether it is within ``tol`` (``converged`` 1/0) and which scale decided (``relative``, ``absolute``
    for a gap too small for a ratio, ``none`` when flagged; :func:`m6abert.integration.decided_by`)."""
    from .attribution import relative_error

    tol = Tolerance() if tol is None else tol
    f_in, f_base = res.f_input, res.f_baseline
    if attr_target == "prob":
        p1 = np.where(labels == 1, f_in, 1.0 - f_in)
    else:
        p1 = 1.0 / (1.0 + np.exp(-np.where(labels == 1, f_in, -f_in)))
    rel = relative_error(res)
    ok = within_tolerance(res.abs_delta, res.gap, tol)
    return {"row": names, "label": labels.tolist(), "p_class1": p1.tolist(), "target_input": f_in.tolist(),
            "target_baseline": f_base.tolist(), "delta": res.delta.tolist(), "rel_error": rel.tolist(),
            "gap": res.gap.tolist(), "abs_delta": res.abs_delta.tolist(), "steps": res.steps.tolist(),
            "converged": ok.astype(int).tolist(), "decided_by": decided_by(rel, res.abs_delta, tol)}


def report_completeness(qc: dict[str, list], s, name: str) -> None:
    """Log the median relative completeness error and the steps taken and, if rows are flagged, how many
    and what to try."""
    rel, steps = np.asarray(qc["rel_error"], dtype=np.float64), np.asarray(qc["steps"], dtype=np.int64)
    bad = int((np.asarray(qc["converged"]) == 0).sum())
    absolute = int(sum(d == "absolute" for d in qc["decided_by"]))
    tol = s.tolerance
    how = f"{tol.first} steps" if not tol.adaptive else (
        f"adaptive steps {tol.first}..{tol.cap}: median {np.median(steps):g}, 90th percentile "
        f"{np.percentile(steps, 90):g}, max {steps.max()}" if len(steps) else f"adaptive steps {tol.first}..{tol.cap}")
    log.info("integrated gradients (%s target, %s baseline x %d, %s): median relative completeness error %.3g over "
             "%d sequences; %d passed on the absolute error (gap too small for a ratio)", s.attr_target, s.baseline,
             s.n_baselines, how, float(np.median(rel)) if len(rel) else 0.0, len(rel), absolute)
    if bad:
        tips = [f"a higher --max_ig_steps (now {tol.cap})" if tol.adaptive else
                f"adaptive steps (drop --n_steps {tol.first})" if s.n_steps is not None and not s.dnabert_compat else
                f"more --n_steps (now {tol.first})"]
        if s.attr_target == "prob":
            tips.insert(0, "--attr_target logodds, which does not saturate")
        tips.append("or --skip_unreliable to leave them out of the figures and motifs")
        log.warning("integrated gradients: %d of %d sequences (%.0f %%) have a relative completeness error above "
                    "%g and an absolute one above %g: their attributions do not add up to F(input) - F(baseline) "
                    "and are not to be trusted (see %s; try %s)", bad, len(rel), 100.0 * bad / len(rel),
                    s.max_rel_delta, s.max_abs_delta, name, ", ".join(tips))


def signed_profile(s, res, labels: np.ndarray, left_out: np.ndarray | None):
    """The signed profile: mean signed attribution per nucleotide of each class, oriented towards class 1
    (the true label's attributions, sign-flipped for negatives: the target of class 0 is minus that of
    class 1 for log-odds, one minus it for probabilities), so above 0 pushes towards "degraded" and below
    towards "not degraded"; the rows ``left_out`` (--skip_unreliable) are left out here too."""
    from .plots import score_profile

    signed = cropped(res.signed, res.lengths) * np.where(labels == 1, 1.0, -1.0)[:, None]  # towards class 1
    if left_out is not None:
        signed[left_out] = np.nan
    target = "log-odds" if s.attr_target == "logodds" else "probability"
    what = f"Signed attribution to the {target} of degraded (above 0: towards degraded): {s.data_name} split"
    return score_profile(signed[labels == 1], signed[labels == 0], s.site_index, title=what,
                         ylabel="mean signed attribution (95 % CI)")
