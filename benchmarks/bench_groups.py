"""Overlap groups (m6abert.groups): time and peak memory on the paper's 6,087 windows and on 100,000
random 501-nt windows with planted overlaps, and the leakage of get_input.py's seed-52 5-fold split.

  python benchmarks/bench_groups.py [--data ../shared/data/m6a_deg] [--out benchmarks/results/bench_groups.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from m6abert import io  # noqa: E402
from m6abert.groups import leakage, overlap_groups  # noqa: E402


def timed(func, *args, **kwargs):
    start = time.perf_counter()
    out = func(*args, **kwargs)
    return out, time.perf_counter() - start


def synthetic(n: int, seed: int = 0) -> list[str]:
    """n windows of 501 nt; every 10th is an earlier (original) window's locus shifted by 1..100 nt: the
    groups are n - (n - 1) // 10 (random 30-mers of other windows practically never coincide)."""
    rng = np.random.RandomState(seed)
    letters = np.frombuffer(b"ACGT", np.uint8)
    loci = letters[rng.randint(0, 4, size=(n, 601))]
    seqs = [loci[i, :501].tobytes().decode() for i in range(n)]
    for i in range(10, n, 10):
        j, shift = rng.randint(0, i), rng.randint(1, 101)
        j += j % 10 == 0  # an original window, not a copy
        seqs[i] = loci[j, shift:shift + 501].tobytes().decode()
    return seqs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "m6a_deg"))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_groups.json"))
    args = p.parse_args()
    results = {}
    data = Path(args.data)
    if (data / "pos.fa").exists():
        pos, neg = io.read_fasta(data / "pos.fa"), io.read_fasta(data / "neg.fa")
        seqs = [r.seq for r in pos + neg]
        groups, secs = timed(overlap_groups, seqs, 30)
        sizes = np.bincount(groups)
        results["paper_windows"] = {"n": len(seqs), "seconds": round(secs, 3), "groups": int(len(sizes)),
                                    "singletons": int((sizes == 1).sum()), "largest": int(sizes.max())}
        from m6abert.splits import kfold_splits

        _, folds = kfold_splits(pos, neg, 3, 5, seed=52)  # get_input.py --n_folds 5 --seed 52
        by_id = {r.id: r.seq for r in pos + neg}
        fold_seqs, fold_labels, fold_parts = [], [], []
        for i, fold in enumerate(folds):
            for label, key in ((1, "pos"), (0, "neg")):
                fold_seqs += [by_id[name] for name in fold[key]]
                fold_labels += [label] * len(fold[key])
                fold_parts += [f"fold_{i}"] * len(fold[key])
        report, secs = timed(leakage, fold_seqs, fold_labels, fold_parts, 30)
        results["seed52_5fold_leakage"] = {**report, "seconds": round(secs, 3)}
    seqs = synthetic(100_000)
    groups, secs = timed(overlap_groups, seqs, 30)
    results["synthetic_100000"] = {"n": len(seqs), "seconds": round(secs, 2), "groups": int(groups.max() + 1),
                                   "expected_groups": 100_000 - 99_999 // 10}
    results["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
