"""Time k-mer encoding of the paper's whole data set (pos.fa + neg.fa, 6,087 windows) at k = 3..6.

Target: ``kmer.encode_many`` encodes all sequences in under 1 s for every k (best of 5 runs).
The data directory is ``$M6ABERT_DATA`` or ``../shared/data/m6a_deg`` relative to the repository root.
Exit status: 0 if every target is met, 1 if one is missed, 2 if the data is missing.

Usage: ``python benchmarks/bench_tokenize.py``
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from m6abert import io, kmer  # noqa: E402

TARGET_S = 1.0
REPEATS = 5


def main() -> int:
    data_dir = Path(os.environ.get("M6ABERT_DATA", ROOT.parent / "shared" / "data" / "m6a_deg"))
    files = [data_dir / "pos.fa", data_dir / "neg.fa"]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        print(f"bench_tokenize.py: error: data not found: {', '.join(missing)} (set M6ABERT_DATA)",
              file=sys.stderr)
        return 2
    seqs = [r.seq for f in files for r in io.read_fasta(f)]
    n_nt = sum(map(len, seqs))
    print(f"{len(seqs)} sequences, {n_nt:,} nt from {data_dir}; best of {REPEATS} runs, target < {TARGET_S:g} s")
    print(f"{'k':>2}  {'k-mers':>10}  {'best s':>8}  {'M k-mers/s':>10}  target")
    ok = True
    for k in kmer.KMER_SIZES:
        times = []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            enc = kmer.encode_many(seqs, k)
            times.append(time.perf_counter() - t0)
        best = min(times)
        met = best < TARGET_S
        ok &= met
        print(f"{k:>2}  {len(enc.ids):>10,}  {best:>8.4f}  {len(enc.ids) / best / 1e6:>10.1f}  "
              f"{'ok' if met else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
