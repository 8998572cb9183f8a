"""The notebook interface (m6abert.load, predict, attribute, saturation_mutagenesis): light to import,
and the same numbers as the commands."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from toy import random_seq, tiny_classifier, write_fasta

import m6abert
from m6abert import io


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_classifier(tmp_path_factory.mktemp("api") / "model")


@pytest.fixture(scope="module")
def seqs():
    rng = np.random.RandomState(7)
    return [random_seq(rng, n) for n in (501, 480, 300)]


def test_import_stays_light_and_the_api_is_there():
    code = ("import sys, m6abert; assert 'torch' not in sys.modules; "
            "print(callable(m6abert.predict), m6abert.load.__module__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "m6abert.api"]
    with pytest.raises(AttributeError):
        m6abert.no_such_thing  # noqa: B018


def test_predict_equals_the_prediction_command(model_dir, seqs, tmp_path):
    from m6abert.cli import predict as cli
    from m6abert.cli.common import run_guarded

    fasta = tmp_path / "s.fa"
    write_fasta(fasta, [io.FastaRecord(f"s{i}", s) for i, s in enumerate(seqs)])
    run_guarded(cli.run, ["--output_dir", str(model_dir), "--predict_fasta", str(fasta), "--predict_dir",
                          str(tmp_path / "pred"), "--no_cuda"])
    table = io.read_columns(tmp_path / "pred" / "predictions.tsv")
    p_column = next(c for c in table if c.startswith("prob"))
    expected = np.array(table[p_column], dtype=np.float64)
    assert m6abert.predict(seqs, str(model_dir)) == pytest.approx(expected, abs=1e-6)
    model = m6abert.load(model_dir)
    assert model.k == 3 and m6abert.predict([s.lower().replace("t", "u") for s in seqs], model) == pytest.approx(
        expected, abs=1e-6)


def test_attribute_adds_up_per_row(model_dir, seqs):
    res = m6abert.attribute(seqs[:2], model_dir, n_steps=64, n_baselines=2)
    for i in range(2):
        row = res.signed[i, :res.lengths[i]]
        assert res.lengths[i] == len(seqs[i]) and np.all(res.signed[i, res.lengths[i]:] == 0)
        assert row.sum() == pytest.approx(res.f_input[i] - res.f_baseline[i], rel=0.05, abs=1e-4)


def test_saturation_mutagenesis_is_zero_at_the_reference(model_dir, seqs):
    res = m6abert.saturation_mutagenesis(seqs[:1], model_dir, window=(-3, 3))
    assert (res.starts[0], res.ends[0]) == (247, 253)
    for pos in range(247, 253):
        ref = "ACGT".index(seqs[0][pos])
        assert res.delta[0, pos, ref] == 0 and np.any(res.delta[0, pos] != 0)
    p = m6abert.predict(seqs[:1], model_dir)[0]
    assert res.ref_logodds[0] == pytest.approx(np.log(p / (1 - p)), abs=1e-4)
