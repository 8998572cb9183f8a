"""Load a pretraining-scale corpus through ``pretrain.load_corpus``: peak memory and time.

Writes a synthetic line-by-line corpus of N random sequences of L nt as k-mer sentences (default
500,000 x 501 nt at k=6: 248 M k-mers, 1.7 GB of text) into a temporary folder, then loads it in a
fresh child process (so its peak RSS is the loader's, plus the cost of importing torch) and reports
the child's peak RSS (``resource.getrusage``), the load time and the size of the id array.

Target: peak RSS < 2 GiB. Exit status: 0 if met, 1 if missed.

Usage: ``python benchmarks/bench_pretrain_corpus.py [--n 500000] [--length 501] [--k 6] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TARGET_BYTES = 2 * 1024**3
CHUNK = 5_000  # sequences written at a time


def write_corpus(path: Path, n: int, length: int, k: int, seed: int = 0) -> int:
    """Write ``n`` random ``length``-nt sequences as k-mer sentences; returns the file size."""
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ATCG", dtype=np.uint8)
    n_tok = length - k + 1
    with open(path, "wb") as fh:
        for start in range(0, n, CHUNK):
            m = min(CHUNK, n - start)
            seqs = letters[rng.integers(0, 4, size=(m, length))]  # m, length
            out = np.empty((m, n_tok, k + 1), dtype=np.uint8)  # m, tokens, k + separator
            out[:, :, :k] = np.lib.stride_tricks.sliding_window_view(seqs, k, axis=1)
            out[:, :, k] = ord(" ")
            out[:, -1, k] = ord("\n")
            fh.write(out.tobytes())
    return path.stat().st_size


def load(path: Path) -> dict:
    """The child: import, load, check a few rows, report."""
    sys.path.insert(0, str(ROOT))
    from m6abert.data import KmerDataset, load_corpus
    from m6abert.kmer import encode_kmer_sentences

    rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    corpus = load_corpus(path)
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with open(path) as fh:
        first = [fh.readline().strip() for _ in range(3)]
    enc = encode_kmer_sentences(first, corpus.k)
    ok = all(np.array_equal(corpus.row(i), enc.row(i)) for i in range(3))
    ds = KmerDataset(corpus)
    item = ds[len(ds) - 1]["input_ids"]
    return {"rows": len(corpus), "kmers": int(len(corpus.ids)), "ids_bytes": int(corpus.ids.nbytes),
            "dtype": str(corpus.ids.dtype), "k": corpus.k, "seconds": seconds, "peak_rss": rss,
            "peak_rss_after_imports": rss_import, "rows_match_tokenizer": ok, "last_item_len": int(len(item))}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=500_000)
    p.add_argument("--length", type=int, default=501)
    p.add_argument("--k", type=int, default=6)
    p.add_argument("--keep", type=str, default=None, help="write the corpus here and keep it")
    p.add_argument("--load", type=str, default=None, help=argparse.SUPPRESS)  # the child process
    args = p.parse_args()
    if args.load:
        print(json.dumps(load(Path(args.load))))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{args.k}.txt"
        t0 = time.perf_counter()
        size = write_corpus(path, args.n, args.length, args.k)
        print(f"wrote {args.n:,} x {args.length}-nt sentences at k={args.k}: {size / 1e9:.2f} GB "
              f"in {time.perf_counter() - t0:.1f} s ({path})")
        proc = subprocess.run([sys.executable, __file__, "--load", str(path)], capture_output=True, text=True)
        if proc.returncode:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        r = json.loads(proc.stdout.strip().splitlines()[-1])
    gib = 1024**3
    met = r["peak_rss"] < TARGET_BYTES and r["rows_match_tokenizer"]
    print(f"loaded {r['rows']:,} rows, {r['kmers']:,} k-mers ({r['dtype']}, {r['ids_bytes'] / gib:.2f} GiB) "
          f"in {r['seconds']:.1f} s ({r['kmers'] / r['seconds'] / 1e6:.1f} M k-mers/s)")
    print(f"peak RSS {r['peak_rss'] / gib:.2f} GiB (after imports, before loading: "
          f"{r['peak_rss_after_imports'] / gib:.2f} GiB); target < {TARGET_BYTES / gib:.0f} GiB: "
          f"{'ok' if met else 'MISSED'}; rows equal the tokenizer's: {r['rows_match_tokenizer']}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
