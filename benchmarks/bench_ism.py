"""In-silico saturation mutagenesis throughput: sequences per second over whole 501-nt windows.

Each sequence costs 1 + 3 x 501 = 1504 forward rows (the reference and every single-base mutant).

Random models (throughput only):
``python benchmarks/bench_ism.py [--configs tiny,mini] [--n_seqs 2] [--batch 256] [--bf16]``

A fine-tuned model against the way the original's inference would score the same mutants (float32,
eager attention, batches of 8: its ``--per_gpu_eval_batch_size`` default; with a correct padding
mask, so that the numbers can be compared: the original's own mask lets padding be attended), with
the agreement of each setting with it (the largest |difference| of Δ log-odds, their correlation,
and whether each sequence's most important position is the same):
``python benchmarks/bench_ism.py --model DIR --data TSV [--n_seqs 4] [--batch 256]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from m6abert.inference import autocast  # noqa: E402
from m6abert.ism import saturation_mutagenesis  # noqa: E402
from m6abert.kmer import kmer2seq  # noqa: E402
from m6abert.model import build_config, load_model, new_model  # noqa: E402

ORIGINAL_STYLE = {"precision": None, "attention": "eager", "batch": 8, "dnabert_compat": False}


def timed(model, seqs, k, precision, attention, batch, dnabert_compat, device):
    """(IsmResult, seconds) of one saturation mutagenesis run in the given configuration."""
    model.config._attn_implementation = attention
    with autocast(device, precision):
        saturation_mutagenesis(model, seqs[:1], k, window=(-5, 5), batch_size=batch, device=device,
                               dnabert_compat=dnabert_compat, verbose=False)  # warm-up
        t0 = time.perf_counter()
        res = saturation_mutagenesis(model, seqs, k, batch_size=batch, device=device, dnabert_compat=dnabert_compat,
                                     verbose=False)
    return res, time.perf_counter() - t0


def compare(args, device) -> None:
    model, k = load_model(args.model, "classification", fine_tuned=True)
    model.eval()
    lines = Path(args.data).read_text().splitlines()[1:]
    seqs = [kmer2seq(line.split("\t")[0].split()) for line in lines[: args.n_seqs]]
    ref, t_ref = timed(model, seqs, k, device=device, **ORIGINAL_STYLE)
    rows = {"original-style (fp32, eager, batch 8)": (ref, t_ref)}
    for precision in (None, "bf16"):
        rows[f"m6abert ({precision or 'fp32'}, SDPA, batch {args.batch})"] = timed(
            model, seqs, k, precision, "sdpa", args.batch, False, device)
    out = []
    for name, (res, dt) in rows.items():
        d, r = res.delta.reshape(len(seqs), -1), ref.delta.reshape(len(seqs), -1)
        same_top = np.mean(np.argmax(res.summary, axis=1) == np.argmax(ref.summary, axis=1))
        out.append({"setting": name, "seq_per_s": len(seqs) / dt, "speedup": t_ref / dt,
                    "max_abs_diff": float(np.abs(d - r).max()), "pearson_r": float(np.corrcoef(d.ravel(), r.ravel())[0, 1]),
                    "max_abs_delta": float(np.abs(r).max()), "same_top_position": float(same_top)})
        o = out[-1]
        print(f"{name:<55} {o['seq_per_s']:7.3f} seq/s {o['speedup']:5.1f}x  max|diff| {o['max_abs_diff']:.4f} "
              f"(of max |delta| {o['max_abs_delta']:.3f})  r {o['pearson_r']:.5f}  same top {same_top:.0%}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"model": args.model, "data": args.data, "n_seqs": len(seqs),
                                          "threads": torch.get_num_threads(), "rows": out}, indent=2) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="tiny,mini")
    p.add_argument("--n_seqs", type=int, default=2)
    p.add_argument("--length", type=int, default=501)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--model", default=None, help="a fine-tuned classifier: compare with the original-style ISM")
    p.add_argument("--data", default=None, help="with --model: a k-merised TSV whose first --n_seqs rows are mutated")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_ism_compare.json"))
    args = p.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.model:
        return compare(args, device)
    rng = np.random.RandomState(0)
    seqs = ["".join(rng.choice(list("ACGT"), args.length)) for _ in range(args.n_seqs)]
    for name in args.configs.split(","):
        torch.manual_seed(0)
        model = new_model(build_config(name, 3), "classification", "sdpa").eval().to(device)
        _, dt = timed(model, seqs, 3, "bf16" if args.bf16 else None, "sdpa", args.batch, False, device)
        rows = args.n_seqs * (1 + 3 * args.length)
        print(f"{name:5s} {device} {'bf16' if args.bf16 else 'fp32'} batch {args.batch}: "
              f"{args.n_seqs / dt:.3f} sequences/s ({rows / dt:.0f} mutants/s, {args.length}-nt windows, "
              f"{torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
