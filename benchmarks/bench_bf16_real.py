"""bfloat16 against float32 prediction with trained models on labelled TSVs (the real data's folds).

For each (fine-tuned model folder, labelled TSV) pair, predicts P(class 1) once in float32 and once
under bfloat16 autocast through the one inference loop (``m6abert.inference.predict``), and reports
the largest |P_bf16 - P_fp32|, the AUC of each precision and their difference, and seconds per
precision. The performance issue's target: P(class 1) within 0.01 of float32.

Usage: ``python benchmarks/bench_bf16_real.py MODEL_DIR TSV [MODEL_DIR TSV ...] [--out JSON]``
e.g. the out-of-fold models of reproduce_table.py:
``python benchmarks/bench_bf16_real.py table_out/runs/bert_pretrained/fold_0/model data/fold_0/dev.tsv``
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

from m6abert.data import load_tsv_dataset  # noqa: E402
from m6abert.inference import autocast, load_classifier, predict  # noqa: E402
from m6abert.metrics import classification_metrics, softmax_p1  # noqa: E402


def logits_of(model: torch.nn.Module, dataset, precision: str | None, batch_size: int) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    with autocast("cpu", precision):
        logits = predict(model, dataset, batch_size=batch_size, verbose=False).astype(np.float64)
    return logits, time.perf_counter() - t0


def compare(model_dir: str, tsv: str, batch_size: int) -> dict:
    model, k = load_classifier(model_dir, None, 512)
    data = load_tsv_dataset(tsv, k, 512)
    l32, t32 = logits_of(model, data.dataset, None, batch_size)
    l16, t16 = logits_of(model, data.dataset, "bf16", batch_size)
    p32, p16 = softmax_p1(l32), softmax_p1(l16)
    auc32, auc16 = (classification_metrics(data.labels, x)["auc"] for x in (l32, l16))
    return {"model": model_dir, "tsv": tsv, "n": len(p32), "max_abs_diff_p1": float(np.abs(p16 - p32).max()),
            "median_abs_diff_p1": float(np.median(np.abs(p16 - p32))), "auc_fp32": auc32, "auc_bf16": auc16,
            "auc_diff": auc16 - auc32, "seconds_fp32": t32, "seconds_bf16": t16}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pairs", nargs="+", help="MODEL_DIR TSV pairs")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_bf16_real.json"))
    args = p.parse_args(argv)
    if len(args.pairs) % 2:
        p.error("give MODEL_DIR TSV pairs")
    rows = [compare(m, t, args.batch_size) for m, t in zip(args.pairs[::2], args.pairs[1::2], strict=True)]
    print(f"{'n':>5} {'max |dP|':>9} {'AUC fp32':>9} {'AUC bf16':>9} {'dAUC':>8} {'s fp32':>7} {'s bf16':>7}  model")
    for r in rows:
        print(f"{r['n']:>5} {r['max_abs_diff_p1']:>9.4f} {r['auc_fp32']:>9.4f} {r['auc_bf16']:>9.4f} "
              f"{r['auc_diff']:>8.4f} {r['seconds_fp32']:>7.1f} {r['seconds_bf16']:>7.1f}  {r['model']}")
    summary = {"max_abs_diff_p1": max(r["max_abs_diff_p1"] for r in rows),
               "max_abs_auc_diff": max(abs(r["auc_diff"]) for r in rows), "rows": rows}
    print(f"over {len(rows)} model(s): max |dP(class 1)| {summary['max_abs_diff_p1']:.4f}, "
          f"max |dAUC| {summary['max_abs_auc_diff']:.4f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
