"""gzip (and bgzip: concatenated gzip members) FASTA and TSV files are read through, whole or
streamed; a damaged one is refused in one line."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from toy import planted_records, tiny_classifier, write_fasta

from m6abert import io
from m6abert.utils import InputError


@pytest.fixture(scope="module")
def fasta(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gz")
    plain = folder / "s.fa"
    pos, neg = planted_records(3, 3, 101, seed=3)
    write_fasta(plain, pos + neg)
    data = plain.read_bytes()
    (folder / "s.fa.gz").write_bytes(gzip.compress(data))
    half = data.index(b">", len(data) // 2)  # bgzip: independent members, split between records
    (folder / "s.bgz").write_bytes(gzip.compress(data[:half]) + gzip.compress(data[half:]))
    return folder


@pytest.mark.parametrize("name", ["s.fa.gz", "s.bgz"])
def test_read_fasta_reads_gzip_and_bgzip(fasta, name):
    assert io.read_fasta(fasta / name) == io.read_fasta(fasta / "s.fa")


@pytest.mark.parametrize("name", ["s.fa.gz", "s.bgz"])
def test_streamed_fasta_reads_gzip_and_bgzip(fasta, name):
    def records(path):
        return [r for chunk in io.iter_fasta_chunks(path, chunk_records=2) for r in chunk]

    assert records(fasta / name) == records(fasta / "s.fa")


def test_prediction_of_a_gzip_fasta_equals_the_plain_one(fasta, tmp_path):
    from m6abert.cli import predict as cli
    from m6abert.cli.common import run_guarded

    model = tiny_classifier(tmp_path / "model")
    for name in ("s.fa", "s.fa.gz"):
        run_guarded(cli.run, ["--output_dir", str(model), "--predict_fasta", str(fasta / name), "--predict_dir",
                              str(tmp_path / name), "--no_cuda"])
    plain, packed = (np.load(tmp_path / n / "pred_results.npy") for n in ("s.fa", "s.fa.gz"))
    assert plain.shape == (6,) and np.array_equal(plain, packed)


def test_a_truncated_gzip_is_refused_in_one_line(fasta, tmp_path):
    cut = tmp_path / "cut.fa.gz"
    cut.write_bytes((fasta / "s.fa.gz").read_bytes()[:-20])
    with pytest.raises(InputError, match="cut.fa.gz: a damaged or truncated gzip file, expected a FASTA file"):
        io.read_fasta(cut)
    with pytest.raises(InputError, match="a damaged or truncated gzip file after line"):
        [r for chunk in io.iter_fasta_chunks(cut) for r in chunk]
