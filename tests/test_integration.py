"""Adaptive integration of integrated gradients (m6abert.integration): each (sequence, reference) pair is
refined only while its sequence does not add up, the rows per pass stay full, and what is left at the cap
is flagged; the QC names the scale that decided."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from m6abert.integration import Tolerance, decided_by, integrate_pairs, within_tolerance


class Quadrature:
    """A stand-in for Captum: pair p's integral has error ``size[p] * 0.5 ** n_steps`` (Gauss-Legendre's
    geometric convergence), its attributions are W copies of (gap + error) / W; every call is recorded."""

    def __init__(self, gap: np.ndarray, size: np.ndarray, width: int = 5):
        self.gap, self.size, self.width, self.calls = torch.tensor(gap), torch.tensor(size), width, []

    def __call__(self, pairs: torch.Tensor, n_steps: int, rows: int | None):
        self.calls.append((pairs.tolist(), n_steps, rows))
        err = self.size[pairs] * 0.5**n_steps
        attr = ((self.gap[pairs] + err) / self.width)[:, None].repeat(1, self.width).float()
        return attr, err.float()


def test_only_the_pairs_of_sequences_that_do_not_add_up_are_refined_together():
    """A sequence is refined while it does not add up; only its pairs above their own tolerance are redone."""
    # 3 sequences x 2 references; sequence 0 converges at 8 steps, sequence 1's second reference needs 16,
    # sequence 2's first needs 32 (its second is already within its own tolerance and is kept)
    gap = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    size = np.array([1.0, 1.0, 1.0, 40.0, 2000.0, 1.0])
    q = Quadrature(gap, size)
    tol = Tolerance(max_rel_delta=0.01, max_abs_delta=0.0, first=8, cap=128)
    out = integrate_pairs(q, torch.tensor(gap), 2, tol, rows=4)
    # at most 4 pairs per call (rows per forward pass), then the pairs still needed, together
    assert [(c[0], c[1]) for c in q.calls] == [([0, 1, 2, 3], 8), ([4, 5], 8), ([3, 4], 16), ([4], 32)]
    assert all(c[2] == 4 for c in q.calls)  # the rows per pass are kept while pairs drop out
    assert out.steps.tolist() == [8, 8, 8, 16, 32, 8]
    assert out.passes == 6 * 8 + 2 * 16 + 32
    np.testing.assert_allclose(out.delta.numpy(), size * 0.5 ** out.steps.numpy(), rtol=1e-6)
    seq_err = out.delta.abs().view(3, 2).mean(dim=1)
    assert within_tolerance(seq_err, torch.ones(3), tol).all()
    # the attributions of each pair are those of its last rule (they add up to gap + its delta)
    np.testing.assert_allclose(out.attributions.sum(dim=1).numpy(), gap + out.delta.numpy(), rtol=1e-6)


def test_a_pair_still_above_at_the_cap_is_flagged_and_a_fixed_count_is_one_pass():
    gap, size = np.array([1.0, 1.0]), np.array([1.0, 1e12])
    q = Quadrature(gap, size)
    tol = Tolerance(max_rel_delta=0.1, max_abs_delta=1e-3, first=8, cap=32)
    out = integrate_pairs(q, torch.tensor(gap), 1, tol, rows=None)
    assert [c[1] for c in q.calls] == [8, 16, 32] and out.steps.tolist() == [8, 32]
    assert within_tolerance(out.delta.abs(), torch.tensor(gap), tol).tolist() == [True, False]
    q = Quadrature(gap, size)
    out = integrate_pairs(q, torch.tensor(gap), 1, Tolerance.fixed(50), rows=None)
    assert [c[1] for c in q.calls] == [50] and out.steps.tolist() == [50, 50]


def test_a_gap_too_small_for_a_ratio_is_judged_on_the_absolute_error():
    """A sequence whose references the model scores like the input (gap 1e-6): its float32 error of
    1e-7 is 10 % of the gap, but 1e-7 in log-odds; it passes on the absolute scale, at the first rule."""
    gap, size = np.array([1e-6, 1e-6]), np.array([0.0, 0.0])
    q = Quadrature(gap, size)
    floor = lambda pairs, n, rows: (torch.zeros(len(pairs), 5), torch.full((len(pairs),), 1e-7))  # noqa: E731
    tol = Tolerance()
    out = integrate_pairs(floor, torch.tensor(gap), 2, tol, rows=None)
    assert out.steps.tolist() == [8, 8] and not q.calls
    rel, abs_delta = np.array([0.1]), np.array([1e-7])
    assert decided_by(rel * 10, abs_delta, tol) == ["absolute"]
    assert decided_by(np.array([0.05, 2.0]), np.array([0.05, 2.0]), tol) == ["relative", "none"]


@pytest.mark.parametrize("first, cap, rules", [(8, 128, [8, 16, 32, 64, 128]), (8, 8, [8]), (4, 20, [4, 8, 16])])
def test_rules_double_up_to_the_cap(first, cap, rules):
    assert Tolerance(first=first, cap=cap).rules() == rules
