"""In-silico saturation mutagenesis throughput: sequences per second over whole 501-nt windows.

Each sequence costs 1 + 3 x 501 = 1504 forward rows (the reference and every single-base mutant).
Usage: ``python benchmarks/bench_ism.py [--configs tiny,mini] [--n_seqs 2] [--batch 256] [--bf16]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from m6abert.ism import saturation_mutagenesis  # noqa: E402
from m6abert.model import build_config, new_model  # noqa: E402
from m6abert.predict import autocast  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--configs", default="tiny,mini")
    p.add_argument("--n_seqs", type=int, default=2)
    p.add_argument("--length", type=int, default=501)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--bf16", action="store_true")
    args = p.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rng = np.random.RandomState(0)
    seqs = ["".join(rng.choice(list("ACGT"), args.length)) for _ in range(args.n_seqs)]
    for name in args.configs.split(","):
        torch.manual_seed(0)
        model = new_model(build_config(name, 3), "classification", "sdpa").eval().to(device)
        with autocast(device, "bf16" if args.bf16 else None):
            saturation_mutagenesis(model, seqs[:1], 3, window=(-5, 5), batch_size=args.batch, device=device,
                                   verbose=False)  # warm-up
            t0 = time.perf_counter()
            saturation_mutagenesis(model, seqs, 3, batch_size=args.batch, device=device, verbose=False)
            dt = time.perf_counter() - t0
        rows = args.n_seqs * (1 + 3 * args.length)
        print(f"{name:5s} {device} {'bf16' if args.bf16 else 'fp32'} batch {args.batch}: "
              f"{args.n_seqs / dt:.3f} sequences/s ({rows / dt:.0f} mutants/s, {args.length}-nt windows, "
              f"{torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
