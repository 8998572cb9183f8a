"""m6abert.io: tmp_path round-trips of every reader/writer, atomic writes, and bad-input messages."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from m6abert import io
from m6abert.utils import InputError


# ---------------------------------------------------------------------------- TSV
def test_write_tsv_exact_bytes(tmp_path):
    path = tmp_path / "train.tsv"
    io.write_tsv(path, ["AAA AAC", "CAT ATG"], [1, 0])
    assert path.read_bytes() == b"seq\tlabel\r\nAAA AAC\t1\r\nCAT ATG\t0\r\n"


def test_tsv_round_trip(tmp_path):
    path = tmp_path / "sub" / "dev.tsv"  # parents are created
    sentences = ["ACG CGT GTA", "TTT TTG", "GGG"]
    labels = np.array([1, 0, 1])
    io.write_tsv(path, sentences, labels)
    got = io.read_tsv(path)
    assert got.sentences == sentences
    assert got.labels.dtype == np.int64 and got.labels.tolist() == [1, 0, 1]


def test_read_tsv_lf_endings(tmp_path):
    path = tmp_path / "lf.tsv"
    path.write_text("seq\tlabel\nAAA AAT\t0\nCCC CCA\t1\n")
    got = io.read_tsv(path)
    assert got.sentences == ["AAA AAT", "CCC CCA"] and got.labels.tolist() == [0, 1]


def test_read_tsv_headerless_keeps_first_row(tmp_path):
    path = tmp_path / "nohdr.tsv"
    path.write_bytes(b"AAA AAT\t1\r\nCCC CCA\t0\r\n")
    got = io.read_tsv(path)
    assert got.sentences == ["AAA AAT", "CCC CCA"] and got.labels.tolist() == [1, 0]


def test_read_tsv_headerless_bad_first_label_is_an_error(tmp_path):
    path = tmp_path / "nohdr.tsv"
    path.write_bytes(b"AAA AAT\t2\r\nCCC CCA\t0\r\n")
    with pytest.raises(InputError, match="row 1"):
        io.read_tsv(path)


def test_read_tsv_without_labels(tmp_path):
    path = tmp_path / "seqs.tsv"
    path.write_text("seq\nAAA AAT\nCCC CCA\n")
    got = io.read_tsv(path, require_labels=False)
    assert got.sentences == ["AAA AAT", "CCC CCA"] and got.labels is None
    with pytest.raises(InputError, match="2 tab-separated columns"):
        io.read_tsv(path)


# ---------------------------------------------------------------------------- lines, JSON, npy
def test_lines_round_trip(tmp_path):
    path = tmp_path / "pre" / "3.txt"
    lines = ["AAA AAT ATG", "CCC CCG", "GGG"]
    io.write_lines(path, lines)
    assert path.read_bytes() == b"AAA AAT ATG\nCCC CCG\nGGG\n"
    assert io.read_lines(path) == lines


def test_read_lines_skips_blank_lines(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("AAA\n\n  \nCCC\r\n")
    assert io.read_lines(path) == ["AAA", "CCC"]


def test_json_round_trip(tmp_path):
    path = tmp_path / "cfg.json"
    obj = {"k": 3, "seed": 52, "folds": [{"pos": ["p1"], "neg": ["n2"]}], "f": 0.5, "none": None}
    io.write_json(path, obj)
    assert io.read_json(path) == obj
    assert path.read_text().endswith("\n")


@pytest.mark.parametrize("content, match", [(None, "not found"), ("{bad", "not valid JSON"),
                                            ("[1, 2]", "JSON object")])
def test_read_json_errors(tmp_path, content, match):
    path = tmp_path / "x.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=match) as err:
        io.read_json(path)
    assert str(path) in str(err.value)


def test_npy_round_trip(tmp_path):
    path = tmp_path / "probs.bin"  # the name is kept exactly
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    io.save_npy(path, arr)
    assert path.exists() and not (tmp_path / "probs.bin.npy").exists()
    got = io.load_npy(path)
    assert got.dtype == arr.dtype and np.array_equal(got, arr)


def test_load_npy_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        io.load_npy(tmp_path / "missing.npy")
    bad = tmp_path / "bad.npy"
    bad.write_text("not numpy")
    with pytest.raises(InputError, match="not a NumPy array"):
        io.load_npy(bad)
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError):  # never unpickles
        io.load_npy(obj)


def test_append_line(tmp_path):
    path = tmp_path / "eval_results.txt"
    io.append_line(path, "a 1")
    io.append_line(path, "b 2")
    assert path.read_text() == "a 1\nb 2\n"


def test_write_run_args(tmp_path):
    from m6abert import __version__

    io.write_run_args(tmp_path, {"kmer": 3, "seed": 52})
    assert io.read_json(tmp_path / "run_args.json") == {"m6abert_version": __version__, "kmer": 3, "seed": 52}


# ---------------------------------------------------------------------------- atomic writing
def test_atomic_path_success(tmp_path):
    target = tmp_path / "out.txt"
    with io.atomic_path(target) as tmp:
        assert tmp != target and tmp.parent == tmp_path
        tmp.write_text("done")
        assert not target.exists()
    assert target.read_text() == "done"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), io.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), io.atomic_path(target) as tmp:
        tmp.write_text("new")
        raise RuntimeError
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_dir_replaces_only_on_success(tmp_path):
    target = tmp_path / "ckpt"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), io.atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]

    with io.atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
        assert (target / "old.txt").exists()
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert (target / "new.txt").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_atomic_dir_creates_new(tmp_path):
    target = tmp_path / "a" / "b"
    with pytest.raises(ValueError), io.atomic_dir(target) as tmp:
        (tmp / "x").write_text("x")
        raise ValueError
    assert not target.exists()
    with io.atomic_dir(target) as tmp:
        (tmp / "x").write_text("x")
    assert (target / "x").read_text() == "x"
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b"]


def test_atomic_file_mode_follows_umask(tmp_path):
    old = os.umask(0o022)
    try:
        io.write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644


def test_atomic_dir_mode_follows_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with io.atomic_dir(tmp_path / "ckpt") as tmp:
            (tmp / "f").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "ckpt").stat().st_mode) == 0o755


# ---------------------------------------------------------------------------- FASTA
def test_read_fasta_multiline_and_case(tmp_path):
    path = tmp_path / "x.fa"
    path.write_text(">r1 some description\nacgt\nACGU\n\n>r2\r\nNNac\r\ngt\r\n>r3\nA C G\n")
    recs = io.read_fasta(path)
    assert recs == [("r1", "ACGTACGU"), ("r2", "NNACGT"), ("r3", "ACG")]
    assert all(isinstance(r, io.FastaRecord) for r in recs)
    assert recs[0].id == "r1" and recs[0].seq == "ACGTACGU"


def test_read_fasta_header_without_id(tmp_path):
    path = tmp_path / "x.fa"
    path.write_text(">\nACGT\n>b\nGG\n")
    assert io.read_fasta(path) == [("#1", "ACGT"), ("b", "GG")]


def _write(path, content):
    if content is None:
        return
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


BAD_FASTA = [
    pytest.param(None, ["not found"], id="missing"),
    pytest.param("", ["empty"], id="empty"),
    pytest.param("\n  \n", ["empty"], id="blank"),
    pytest.param(b"\x00\x01\x02ACGT", ["binary"], id="binary"),
    pytest.param(b">r1\n\xff\xfeAC\n", ["UTF-8"], id="not-utf8"),
    pytest.param("ACGT\n>r1\nACGT\n", ["line 1", "not FASTA"], id="no-header"),
    pytest.param("seq\tlabel\nAAA\t1\n", ["line 1", "not FASTA"], id="tsv-given"),
    pytest.param(">r1\nACGT\n>r2\nACXT\n", ["record r2", "'X'", "position 3"], id="illegal-letter"),
    pytest.param(">r1\nAC-GT\n", ["record r1", "'-'"], id="gap"),
    pytest.param(">r1\nACGT\n>r2\n>r3\nAC\n", ["record r2", "empty sequence"], id="record-without-seq"),
    pytest.param(">r1\nACGT\n>last\n", ["record last", "empty sequence"], id="last-without-seq"),
]


@pytest.mark.parametrize("content, parts", BAD_FASTA)
def test_read_fasta_bad_input(tmp_path, content, parts):
    path = tmp_path / "in.fa"
    _write(path, content)
    with pytest.raises(InputError) as err:
        io.read_fasta(path)
    msg = str(err.value)
    assert str(path) in msg
    for part in parts:
        assert part in msg, msg


def test_read_fasta_directory(tmp_path):
    with pytest.raises(InputError, match="directory"):
        io.read_fasta(tmp_path)


BAD_TSV = [
    pytest.param(None, ["not found"], id="missing"),
    pytest.param("", ["empty"], id="empty"),
    pytest.param(b"seq\tlabel\r\n\x00\x00", ["binary"], id="binary"),
    pytest.param("seq\tlabel\r\n", ["no data rows"], id="header-only"),
    pytest.param("seq\tlabel\r\nAAA\t1\r\nCCC\t0\textra\r\n", ["row 2", "columns", "found 3"], id="three-cols"),
    pytest.param("seq\tlabel\r\nAAA\t1\r\nCCC\r\n", ["row 2", "columns", "found 1"], id="one-col"),
    pytest.param("seq\tlabel\tx\r\nAAA\t1\tx\r\n", ["row 1", "2 tab-separated columns"], id="wrong-width"),
    pytest.param("seq\tlabel\r\nAAA\t1\r\nCCC\t2\r\n", ["row 2", "label '2'"], id="label-2"),
    pytest.param("seq\tlabel\r\nAAA\tyes\r\n", ["row 1", "label 'yes'"], id="label-word"),
    pytest.param("seq\tlabel\r\nAAA\t1\r\n\t0\r\n", ["row 2", "empty sequence"], id="empty-seq"),
]


@pytest.mark.parametrize("content, parts", BAD_TSV)
def test_read_tsv_bad_input(tmp_path, content, parts):
    path = tmp_path / "in.tsv"
    _write(path, content)
    with pytest.raises(InputError) as err:
        io.read_tsv(path)
    msg = str(err.value)
    assert str(path) in msg
    for part in parts:
        assert part in msg, msg


def test_input_error_is_value_error():
    assert issubclass(InputError, ValueError)
