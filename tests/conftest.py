"""Shared fixtures: where the paper's data and the original's parity fixtures live, a device."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("M6ABERT_SHARED", ROOT.parent / "shared"))
DATA_DIR = Path(os.environ.get("M6ABERT_DATA", SHARED / "data" / "m6a_deg"))
FIXTURES = SHARED / "fixtures"
DEMO_DIR = ROOT / "examples" / "demo"
# importing it registers a model in the comparison table: only the tests that want it import it
collect_ignore = ["toy_baseline.py"]


@pytest.fixture
def real_data_dir() -> Path:
    """The paper's pos.fa/neg.fa (set M6ABERT_DATA to move it); skips when absent."""
    if not (DATA_DIR / "pos.fa").exists() or not (DATA_DIR / "neg.fa").exists():
        pytest.skip(f"the paper's data is not at {DATA_DIR} (set M6ABERT_DATA)")
    return DATA_DIR


@pytest.fixture
def k3_fixture() -> Path:
    """The original-code parity fixture (a k=3 DNABERT-format checkpoint and its outputs)."""
    path = FIXTURES / "dnabert_k3_mini"
    if not (path / "ckpt" / "pytorch_model.bin").exists():
        pytest.skip(f"parity fixture not found at {path}")
    return path


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request) -> str:
    if request.param == "cuda":
        import torch

        if not torch.cuda.is_available():
            pytest.skip("no CUDA device")
    return request.param
