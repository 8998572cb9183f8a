"""The stretch goal ``--int8``: is dynamic int8 quantisation of the Linear layers faster than bf16 on this CPU?

Measures bert-base (random weights, k=3, 501 tokens, batch 8) inference in float32, bfloat16 autocast
and ``torch.ao.quantization.quantize_dynamic`` (int8 weights, activations quantised per batch), and
the largest change of P(class 1) against float32. ``--int8`` is offered only if it beats bf16.

Usage: ``python benchmarks/bench_int8.py [--config bert-base] [--batches 3]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from m6abert.model import build_config, new_model  # noqa: E402


def rate(model, x, batches: int, bf16: bool = False) -> tuple[float, torch.Tensor]:
    """(sequences per second, P(class 1) of the last batch)."""
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        model(input_ids=x)  # warm-up
        t0 = time.perf_counter()
        for _ in range(batches):
            logits = model(input_ids=x).logits
    return batches * x.shape[0] / (time.perf_counter() - t0), torch.softmax(logits.float(), -1)[:, 1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="bert-base")
    p.add_argument("--batches", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_int8.json"))
    args = p.parse_args()
    torch.manual_seed(0)
    model = new_model(build_config(args.config, 3), "classification", "sdpa").eval()
    x = torch.randint(5, 69, (8, 501))
    fp32, p32 = rate(model, x, args.batches)
    bf16, p16 = rate(model, x, args.batches, bf16=True)
    int8_model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    int8, p8 = rate(int8_model, x, args.batches)
    rows = {"fp32": (fp32, 0.0), "bf16 autocast": (bf16, float((p16 - p32).abs().max())),
            "int8 dynamic": (int8, float((p8 - p32).abs().max()))}
    for name, (r, d) in rows.items():
        print(f"{args.config} {name:<14} {r:6.2f} seq/s  max |dP| vs fp32 {d:.4f}")
    Path(args.out).write_text(json.dumps({"config": args.config, "threads": torch.get_num_threads(),
                                          "rows": {k: {"seq_per_s": v[0], "max_abs_dp": v[1]} for k, v in rows.items()}},
                                         indent=2) + "\n")


if __name__ == "__main__":
    main()
