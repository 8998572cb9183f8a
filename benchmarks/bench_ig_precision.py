"""Where bf16 loses the completeness of integrated gradients, and whether a float32/bf16 split keeps it.

For a fine-tuned model and the first ``--n`` rows of a split, the default attribution (log-odds, 4
dinucleotide-shuffled references) at fixed step counts, in four precisions:

* ``fp32``: everything in float32 (what visualize_all.py runs);
* ``bf16``: the whole model under bf16 autocast (the refused ``--bf16``);
* ``split``: the encoder's matmuls in bf16, the embeddings (where Captum interpolates), the pooler and
  the classifier (the final log-odds) and the gradient sums in float32;
* ``split+head``: as ``split``, with the last encoder layer in float32 too.

Reported per setting: seconds, and the median / 90th percentile / max relative completeness error
and the share of sequences above 0.1 (the QC's threshold), and the largest difference of the
signed attributions from float32's at the same steps (relative to float32's largest |value|).

Usage: ``python benchmarks/bench_ig_precision.py --model DIR --data DIR/dev.tsv [--n 20] [--steps 16,32,64]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from m6abert import io  # noqa: E402
from m6abert.attribution import attribution_scores, relative_error  # noqa: E402
from m6abert.data import load_tsv_dataset  # noqa: E402
from m6abert.inference import load_classifier  # noqa: E402

PRECISIONS = ("fp32", "bf16", "split", "split+head")


def _bf16(module: torch.nn.Module) -> contextlib.AbstractContextManager:
    """Run ``module``'s forward under bf16 autocast (its matmuls in bf16), whatever encloses it."""
    forward = module.forward

    def wrapped(*args, **kwargs):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = forward(*args, **kwargs)
        return out

    @contextlib.contextmanager
    def patched():
        module.forward = wrapped
        try:
            yield
        finally:
            del module.forward

    return patched()


def precision_context(model: torch.nn.Module, precision: str) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    layers = model.bert.encoder.layer
    stack = contextlib.ExitStack()
    for layer in (layers if precision == "split" else layers[:-1]):
        stack.enter_context(_bf16(layer))
    return stack


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, help="a labelled split TSV")
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--steps", default="16,32,64")
    p.add_argument("--precisions", default=",".join(PRECISIONS))
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_ig_precision.json")
    args = p.parse_args(argv)
    model, k = load_classifier(args.model, None, 512)
    data = load_tsv_dataset(args.data, k, 512)
    subset = torch.utils.data.Subset(data.dataset, range(min(args.n, len(data.dataset))))
    rows, reference = [], {}
    for n_steps in [int(s) for s in args.steps.split(",")]:
        for precision in args.precisions.split(","):
            with precision_context(model, precision):
                t0 = time.perf_counter()
                res = attribution_scores(model, subset, k, n_steps=n_steps, batch_size=args.n, verbose=False,
                                         attr_target="logodds", baseline="shuffle", n_baselines=4, seed=42)
                seconds = time.perf_counter() - t0
            rel = relative_error(res)
            reference.setdefault(n_steps, res.signed)
            scale = np.abs(reference[n_steps]).max()
            row = {"precision": precision, "n_steps": n_steps, "seconds": round(seconds, 2),
                   "median_rel_error": float(np.median(rel)), "p90_rel_error": float(np.percentile(rel, 90)),
                   "max_rel_error": float(rel.max()), "share_above_0.1": float((rel > 0.1).mean()),
                   "max_signed_diff_vs_fp32": float(np.abs(res.signed - reference[n_steps]).max() / scale)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    io.write_json(args.out, {"model": args.model, "data": args.data, "n": args.n, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
