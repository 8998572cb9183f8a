"""get_input.py end to end: byte-identical with the original on the paper's data and the extra flags.

Bad input (one clean error line, exit status 2, nothing written) is in tests/test_errors.py.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from m6abert import io, kmer

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # pythonpath in pyproject.toml covers pytest; this covers other runners
    sys.path.insert(0, str(ROOT))
get_input = importlib.import_module("get_input")

# md5 of the original get_input.py's files for --do_val --kmer 3 --seed 52 (the shipped data/3_decay_250)
MD5 = {
    "train.tsv": "20a8fe12af28087bc2999d435bc377b2",
    "dev.tsv": "c13ea3659287b79da8838bb3bb66c8cd",
    "test.tsv": "659ead89bd9f032e9fe15284153d33ca",
}
ROWS = {"train.tsv": 698, "dev.tsv": 78, "test.tsv": 194}


def run(data_dir, save_dir, *extra: str, kmer_: int = 3, task: str = "finetune") -> Path:
    get_input.main(["--kmer", str(kmer_), "--extend_len", "250", "--task", task,
                    "--data_dir", str(data_dir), "--save_dir", str(save_dir), *extra])
    return Path(save_dir)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def rows(path: Path) -> tuple[list[str], list[int]]:
    """(sequences, labels) of a TSV, sequences rebuilt from the k-mers."""
    tsv = io.read_tsv(path)
    return [kmer.kmer2seq(s) for s in tsv.sentences], tsv.labels.tolist()


def record_ids(path: Path, data_dir: Path) -> list[str]:
    """The FASTA record id of every TSV row, found by its sequence."""
    by_seq = {r.seq: r.id for name in ("pos.fa", "neg.fa") for r in io.read_fasta(data_dir / name)}
    return [by_seq[s] for s in rows(path)[0]]


def random_fasta(path: Path, prefix: str, n: int, seed: int, length: int = 501) -> list[str]:
    rng = np.random.RandomState(seed)
    seqs = ["".join(rng.choice(list("ACGT"), size=length)) for _ in range(n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f">{prefix}{i + 1}\n{s[:250]}\n{s[250:]}\n" for i, s in enumerate(seqs)))
    return seqs


@pytest.fixture
def small_data(tmp_path) -> Path:
    """20 positives and 45 negatives of 501 nt."""
    d = tmp_path / "data"
    random_fasta(d / "pos.fa", "p", 20, seed=1)
    random_fasta(d / "neg.fa", "n", 45, seed=2)
    return d


@pytest.fixture(scope="module")
def paper_out(tmp_path_factory) -> Path:
    """The paper command's output on the real data (run once for the module)."""
    from conftest import DATA_DIR

    if not (DATA_DIR / "pos.fa").exists() or not (DATA_DIR / "neg.fa").exists():
        pytest.skip(f"the paper's data is not at {DATA_DIR} (set M6ABERT_DATA)")
    out = tmp_path_factory.mktemp("paper") / "out"
    run(DATA_DIR, out, "--do_val", "--seed", "52")
    return out


# ---------------------------------------------------------------------------- byte-identical with the original
def test_paper_command_byte_identical(real_data_dir, tmp_path):
    out = tmp_path / "out"
    get_input.main(["--do_val", "--kmer", "3", "--extend_len", "250", "--task", "finetune",
                    "--data_dir", str(real_data_dir), "--save_dir", str(out), "--seed", "52"])
    for name, digest in MD5.items():
        assert md5(out / name) == digest, name
    assert sorted(p.name for p in out.iterdir()) == ["dev.tsv", "get_input_args.json", "leakage.json", "records.tsv",
                                                     "test.tsv", "train.tsv"]
    args = io.read_json(out / "get_input_args.json")
    assert args["kmer"] == 3 and args["seed"] == 52 and args["do_val"] is True and "m6abert_version" in args


def test_paper_output_format(paper_out):
    for name, n in ROWS.items():
        raw = (paper_out / name).read_bytes()
        assert raw.startswith(b"seq\tlabel\r\n") and raw.endswith(b"\r\n")
        lines = raw.split(b"\r\n")[:-1]
        assert b"\n" not in b"".join(lines)  # every line ends with CRLF
        assert len(lines) == n + 1
        for line in lines[1:]:
            seq, label = line.split(b"\t")
            assert label in (b"0", b"1") and seq == seq.strip()
            assert all(len(km) == 3 for km in seq.split(b" "))


def test_paper_seed52_fingerprints(paper_out, real_data_dir):
    test_ids = record_ids(paper_out / "test.tsv", real_data_dir)
    dev_ids = record_ids(paper_out / "dev.tsv", real_data_dir)
    train_ids = record_ids(paper_out / "train.tsv", real_data_dir)
    assert test_ids[:3] == ["p136", "p667", "p725"]
    assert test_ids[97:100] == ["n7702", "n790", "n3264"]
    assert dev_ids[:3] == ["p107", "p557", "p227"]
    assert train_ids[:3] == ["p381", "p320", "n7765"]
    for ids, n in ((test_ids, 97), (dev_ids, 39)):
        assert all(r.startswith("p") for r in ids[:n]) and all(r.startswith("n") for r in ids[n:])
    all_ids = test_ids + dev_ids + train_ids
    assert len(set(all_ids)) == 970
    assert sum(r.startswith("p") for r in all_ids) == 485


def test_without_val_dev_is_the_test_split(real_data_dir, paper_out, tmp_path):
    out = run(real_data_dir, tmp_path / "noval")
    assert (out / "dev.tsv").read_bytes() == (paper_out / "test.tsv").read_bytes()
    assert not (out / "test.tsv").exists()
    seqs, labels = rows(out / "train.tsv")
    assert len(seqs) == 776 and labels.count(1) == 388
    val_seqs = set(rows(paper_out / "train.tsv")[0]) | set(rows(paper_out / "dev.tsv")[0])
    assert set(seqs) == val_seqs


@pytest.mark.parametrize("k", [4, 5, 6])
def test_same_rows_for_every_k(real_data_dir, paper_out, tmp_path, k):
    out = run(real_data_dir, tmp_path / f"k{k}", "--do_val", kmer_=k)
    for name in ROWS:
        tsv = io.read_tsv(out / name)
        assert kmer.sentence_k(tsv.sentences[0]) == k
        assert rows(out / name) == rows(paper_out / name), name


def test_n_folds(real_data_dir, tmp_path):
    out = run(real_data_dir, tmp_path / "cv", "--n_folds", "5")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"fold_{i}" for i in range(5)] + ["folds.json", "get_input_args.json", "leakage.json", "records.tsv"])
    folds = io.read_json(out / "folds.json")
    assert folds["n_folds"] == 5 and folds["seed"] == 52 and len(folds["folds"]) == 5
    fold_ids = [r for f in folds["folds"] for r in f["pos"] + f["neg"]]
    assert len(fold_ids) == len(set(fold_ids)) == 970
    pos_ids = {r.id for r in io.read_fasta(real_data_dir / "pos.fa")}
    assert {r for f in folds["folds"] for r in f["pos"]} == pos_ids
    all_dev = []
    for i, f in enumerate(folds["folds"]):
        assert sorted(p.name for p in (out / f"fold_{i}").iterdir()) == ["dev.tsv", "train.tsv"]
        dev_seqs, dev_labels = rows(out / f"fold_{i}" / "dev.tsv")
        train_seqs, _ = rows(out / f"fold_{i}" / "train.tsv")
        assert dev_labels == [1] * len(f["pos"]) + [0] * len(f["neg"])
        assert len(f["pos"]) == 97 and len(f["neg"]) == 97
        assert set(dev_seqs).isdisjoint(train_seqs) and len(dev_seqs) + len(train_seqs) == 970
        all_dev += dev_seqs
    assert len(set(all_dev)) == 970


def test_neg_ratio(real_data_dir, paper_out, tmp_path):
    out = run(real_data_dir, tmp_path / "r2", "--do_val", "--neg_ratio", "2")
    n_pos = {name: rows(paper_out / name)[1].count(1) for name in ROWS}
    for name in ROWS:
        labels = rows(out / name)[1]
        assert labels.count(1) == n_pos[name]
    # 2 * 485 = 970 negatives split 20 % / 10 % like the positives
    n_test = math.ceil(0.2 * 970)
    n_val = math.ceil(0.1 * (970 - n_test))
    assert rows(out / "test.tsv")[1].count(0) == n_test
    assert rows(out / "dev.tsv")[1].count(0) == n_val
    assert rows(out / "train.tsv")[1].count(0) == 970 - n_test - n_val
    assert sum(rows(out / name)[1].count(0) for name in ROWS) == 2 * sum(n_pos.values())


# ---------------------------------------------------------------------------- paths and the extra tasks
@pytest.mark.parametrize("sub", ["out", "out/", "a/b/c/out"])
def test_save_dir_forms(small_data, tmp_path, sub):
    save = str(tmp_path / "save") + "/" + sub
    run(small_data, save, "--do_val")
    out = Path(save)
    assert {p.name for p in out.iterdir()} == {"train.tsv", "dev.tsv", "test.tsv", "get_input_args.json", "leakage.json",
                                               "records.tsv"}
    assert len(rows(out / "train.tsv")[0]) + len(rows(out / "dev.tsv")[0]) + len(rows(out / "test.tsv")[0]) == 40


def test_data_dir_with_trailing_slash(small_data, tmp_path):
    a = run(small_data, tmp_path / "a")
    b = run(str(small_data) + "/", tmp_path / "b")
    for name in ("train.tsv", "dev.tsv"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_seed_changes_split(small_data, tmp_path):
    a = run(small_data, tmp_path / "a")
    b = run(small_data, tmp_path / "b", "--seed", "452")
    assert set(rows(a / "dev.tsv")[0]) != set(rows(b / "dev.tsv")[0])
    assert (a / "train.tsv").read_bytes() != (b / "train.tsv").read_bytes()


PRETRAIN_FA = ">r1 first\nACGUACGUAC\nGUACGU\n>r2\nttgcaacgta\n>r3\nGGGCCCAAATTTN\n>r4\nACGTACGTACGTA\n" + "".join(
    f">x{i}\n{s}\n" for i, s in enumerate(
        "".join(np.random.RandomState(i).choice(list("ACGT"), size=30)) for i in range(16)))
PRETRAIN_SEQS = ["ACGTACGTACGTACGT", "TTGCAACGTA", "GGGCCCAAATTTN", "ACGTACGTACGTA"] + [
    "".join(np.random.RandomState(i).choice(list("ACGT"), size=30)) for i in range(16)]


@pytest.mark.parametrize("k", [3, 6])
def test_pretrain(tmp_path, k):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "pretrain.fa").write_text(PRETRAIN_FA)
    out = run(data_dir, tmp_path / "out", kmer_=k, task="pretrain")
    assert sorted(p.name for p in (out / "pre").iterdir()) == [f"{k}.txt"]
    text = (out / "pre" / f"{k}.txt").read_text()
    assert "U" not in text and "\r" not in text and text.endswith("\n")
    assert text.splitlines() == [kmer.seq2kmer(s, k) for s in PRETRAIN_SEQS]


def test_pretrain_do_val(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "pretrain.fa").write_text(PRETRAIN_FA)
    out = run(data_dir, tmp_path / "out", "--do_val", task="pretrain")
    assert sorted(p.name for p in (out / "pre").iterdir()) == ["3_train.txt", "3_val.txt"]
    train = io.read_lines(out / "pre" / "3_train.txt")
    val = io.read_lines(out / "pre" / "3_val.txt")
    assert len(val) == math.ceil(0.1 * len(PRETRAIN_SEQS)) and len(train) + len(val) == len(PRETRAIN_SEQS)
    assert sorted(train + val) == sorted(kmer.seq2kmer(s, 3) for s in PRETRAIN_SEQS)


def test_pretrain_fasta_flag(tmp_path):
    corpus = tmp_path / "elsewhere" / "corpus.fasta"
    corpus.parent.mkdir()
    corpus.write_text(PRETRAIN_FA)
    empty = tmp_path / "empty"
    empty.mkdir()
    out = run(empty, tmp_path / "out", "--fasta", str(corpus), kmer_=4, task="pretrain")
    assert io.read_lines(out / "pre" / "4.txt") == [kmer.seq2kmer(s, 4) for s in PRETRAIN_SEQS]


# ---------------------------------------------------------------------------- the demo data set
def test_demo_files_match_generator(tmp_path):
    from conftest import DEMO_DIR

    spec = importlib.util.spec_from_file_location("make_demo", DEMO_DIR / "make_demo.py")
    make_demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_demo)
    make_demo.main(["--out_dir", str(tmp_path)])
    for name in ("pos.fa", "neg.fa"):
        assert (tmp_path / name).read_bytes() == (DEMO_DIR / name).read_bytes(), f"regenerate {name}"
    pos, neg = io.read_fasta(DEMO_DIR / "pos.fa"), io.read_fasta(DEMO_DIR / "neg.fa")
    assert [r.id for r in pos] == [f"p{i}" for i in range(1, 301)]
    assert [r.id for r in neg] == [f"n{i}" for i in range(1, 301)]
    for r in pos + neg:
        assert len(r.seq) == 501
        assert r.seq[248] in "AGT" and r.seq[249] in "AG" and r.seq[250:252] == "AC" and r.seq[252] in "ACT"
    assert sum(make_demo.MOTIF in r.seq[130:178] for r in pos) == 270
    assert not any(make_demo.MOTIF in r.seq[130:178] for r in neg)


def test_get_input_on_demo(tmp_path):
    from conftest import DEMO_DIR

    out = run(DEMO_DIR, tmp_path / "demo", "--do_val", kmer_=6)
    counts = {name: len(rows(out / name)[1]) for name in ROWS}
    assert counts == {"train.tsv": 432, "dev.tsv": 48, "test.tsv": 120}


def test_help_lists_all_flags():
    proc = subprocess.run([sys.executable, "get_input.py", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0
    for flag in ("--do_val", "--kmer", "--extend_len", "--task", "--data_dir", "--save_dir", "--seed",
                 "--n_folds", "--neg_ratio", "--fasta"):
        assert flag in proc.stdout
