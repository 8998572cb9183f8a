"""Integrated gradients: completeness error against quadrature steps, and throughput, fp32 and bf16.

Completeness: the attributions of a sequence sum to F(x) - F(baseline) exactly in the limit; with
``n_steps`` Gauss-Legendre points the relative error is |delta| / |F(x) - F(baseline)| (Captum's
convergence delta). For a fine-tuned model and labelled TSV (default: the demo's, ``make demo``), this
prints the median and 90th percentile of the relative error and sequences per second for each step
count, so the fewest steps at a given error can be chosen.

Usage: ``python benchmarks/bench_ig_steps.py [--model demo_output/finetuned] [--data demo_output/data/dev.tsv]
[--n 40] [--steps 4 8 16 32 50]``
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

from m6abert.attribution import attribution_scores, relative_error  # noqa: E402
from m6abert.data import load_tsv_dataset  # noqa: E402
from m6abert.inference import autocast  # noqa: E402
from m6abert.model import load_model  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "demo_output" / "finetuned"))
    p.add_argument("--data", default=str(ROOT / "demo_output" / "data" / "dev.tsv"))
    p.add_argument("--n", type=int, default=40, help="sequences attributed")
    p.add_argument("--steps", type=int, nargs="+", default=[4, 8, 16, 32, 50])
    p.add_argument("--max_seq_length", type=int, default=512)
    p.add_argument("--targets", nargs="+", default=["prob", "logodds"], choices=["prob", "logodds"])
    p.add_argument("--baselines", nargs="+", default=["pad", "shuffle"], choices=["pad", "shuffle"],
                   help="reference kinds (shuffle: --n_baselines dinucleotide shuffles, float32 only)")
    p.add_argument("--n_baselines", type=int, default=8)
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_ig_steps.json"))
    args = p.parse_args(argv)
    model, k = load_model(args.model, "classification", fine_tuned=True)
    model.eval()
    data = load_tsv_dataset(args.data, k, args.max_seq_length)
    subset = torch.utils.data.Subset(data.dataset, range(min(args.n, len(data.dataset))))
    rows = []
    print(f"{args.model}: {len(subset)} sequences of {args.data}")
    print(f"{'target':<8} {'baseline':<10} {'prec':<5} {'steps':>5} {'median rel. error':>18} {'90th pct':>9} "
          f"{'seq/s':>7}")
    gaps = {}  # the float32 gap of each target: the truth the attributions of either precision must add up to
    runs = [(t, b, p, n) for t in args.targets for b in args.baselines for p in args.precisions for n in args.steps
            if not (b == "shuffle" and p == "bf16")]
    for target, baseline, precision, n_steps in runs:
        n_refs = args.n_baselines if baseline == "shuffle" else 1
        t0 = time.perf_counter()
        with autocast("cpu", None if precision == "fp32" else precision):
            res = attribution_scores(model, subset, k, args.max_seq_length, n_steps=n_steps, batch_size=8,
                                     verbose=False, attr_target=target, baseline=baseline, n_baselines=n_refs)
        rate = len(subset) / (time.perf_counter() - t0)
        truth = gaps.setdefault((target, baseline), res)  # float32's F(x) and F(reference): what bf16 must add up to
        rel = relative_error(res._replace(f_input=truth.f_input, f_baseline=truth.f_baseline, gap=truth.gap))
        rows.append({"target": target, "baseline": f"{baseline} x {n_refs}", "precision": precision, "n_steps": n_steps,
                     "median_rel_error": float(np.median(rel)), "p90_rel_error": float(np.percentile(rel, 90)),
                     "seq_per_s": rate})
        r = rows[-1]
        print(f"{target:<8} {r['baseline']:<10} {r['precision']:<5} {n_steps:>5} {r['median_rel_error']:>18.4f} "
              f"{r['p90_rel_error']:>9.4f} {rate:>7.2f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"model": args.model, "data": args.data, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
