"""Tiny models and synthetic data for tests: short sequences with a planted, learnable signal."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from m6abert import io
from m6abert.kmer import seq2kmer
from m6abert.model import build_config, new_model

MOTIF = "TGTAAATA"


def random_seq(rng: np.random.RandomState, n: int, gc: float = 0.5) -> str:
    p = [(1 - gc) / 2, (1 - gc) / 2, gc / 2, gc / 2]
    return "".join(rng.choice(list("ATCG"), size=n, p=p))


def planted_records(n_pos: int = 40, n_neg: int = 40, length: int = 61, offset: int = 10, seed: int = 0):
    """Positives carry MOTIF at ``offset``; negatives are random. Returns (pos, neg) FastaRecords."""
    rng = np.random.RandomState(seed)
    pos, neg = [], []
    for i in range(n_pos):
        s = random_seq(rng, length)
        pos.append(io.FastaRecord(f"p{i + 1}", s[:offset] + MOTIF + s[offset + len(MOTIF):]))
    for i in range(n_neg):
        neg.append(io.FastaRecord(f"n{i + 1}", random_seq(rng, length)))
    return pos, neg


def write_fasta(path: Path, records) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f">{r.id}\n{r.seq}\n" for r in records))
    return path


def write_split_dir(folder: Path, k: int = 3, n: int = 40, length: int = 61, seed: int = 0) -> Path:
    """train/dev/test.tsv of planted data (k-mer sentences, CRLF as get_input writes them)."""
    rng = np.random.RandomState(seed + 1)
    for name, size in (("train", n), ("dev", n // 2), ("test", n // 2)):
        split_offset = {"train": 0, "dev": 1, "test": 2}[name] * 101  # hash(name) is salted per process
        pos, neg = planted_records(size // 2, size // 2, length, seed=seed + split_offset)
        rows = [(seq2kmer(r.seq, k), 1) for r in pos] + [(seq2kmer(r.seq, k), 0) for r in neg]
        order = rng.permutation(len(rows)) if name == "train" else np.arange(len(rows))
        io.write_tsv(folder / f"{name}.tsv", [rows[i][0] for i in order], [rows[i][1] for i in order])
    return folder


def tiny_pretrained(folder: Path, k: int = 3, seed: int = 0) -> Path:
    """A random tiny BertForMaskedLM checkpoint folder, as run_pretrain.py writes them."""
    import torch

    torch.manual_seed(seed)
    cfg = build_config("tiny", k)
    cfg.num_attention_heads, cfg.hidden_size, cfg.intermediate_size = 2, 32, 64
    io.save_checkpoint(folder, new_model(cfg, "mlm"), k)
    return folder


def tiny_classifier(folder: Path, k: int = 3, seed: int = 0) -> Path:
    """A random tiny BertForSequenceClassification checkpoint folder (it has a classifier head)."""
    import torch

    torch.manual_seed(seed)
    io.save_checkpoint(folder, new_model(build_config("tiny", k), "classification"), k)
    return folder


def write_corpus(path: Path, n: int, length: int = 40, k: int = 3, seed: int = 0) -> Path:
    """A line-by-line pretraining corpus: ``n`` k-mer sentences of random ``length``-nt sequences."""
    rng = np.random.RandomState(seed)
    io.write_lines(path, [seq2kmer(random_seq(rng, length), k) for _ in range(n)])
    return path
