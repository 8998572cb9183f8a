"""Model throughput against the machine's matmul peak: inference, a fine-tuning step, an MLM step, integrated
gradients, start-up time and peak memory, in float32 and bfloat16.

For a config (default bert-base at k=3, 501-nt windows, batch 8) every figure is reported as sequences
per second (tokens per second for MLM), achieved GFLOP/s (a training step counts as 3x the forward
FLOPs, integrated gradients as ``n_steps`` x (forward + backward) = 3 x ``n_steps`` forwards) and the
fraction of the matmul peak of the same precision, measured in the same run (4096^3 matmuls). A table
goes to stdout and the figures to a JSON file.

Usage: ``python benchmarks/bench_models.py [--config bert-base|mini|tiny] [--batch 8] [--n_batches 3]
[--out benchmarks/results/bench_models.json] [--skip ig,mlm,...]``
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from m6abert.data import Collator, dataset_from_seqs  # noqa: E402
from m6abert.inference import autocast, predict  # noqa: E402
from m6abert.model import PRESETS, build_config, new_model  # noqa: E402

PARTS = ("inference", "finetune", "mlm", "ig", "startup")


def matmul_peak(dtype: torch.dtype, n: int = 4096, repeats: int = 3) -> float:
    """Best GFLOP/s of an n x n x n matmul in ``dtype`` on this process's threads."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)  # warm-up
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def forward_gflop(config, tokens: int) -> float:
    """Matmul FLOPs of one forward pass of a BERT encoder over ``tokens`` tokens, in GFLOP."""
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    per_layer = 8 * tokens * h * h + 4 * tokens * tokens * h + 4 * tokens * h * i  # QKVO, attention, FFN
    return layers * per_layer / 1e9


def windows(n: int, length: int, seed: int = 0) -> list[str]:
    rng = np.random.RandomState(seed)
    return ["".join(rng.choice(list("ACGT"), length)) for _ in range(n)]


def bench_inference(model, data, batch: int, precision: str | None) -> tuple[float, np.ndarray]:
    with autocast("cpu", precision):
        predict(model, data.dataset, batch_size=batch, verbose=False)  # warm-up
        t0 = time.perf_counter()
        logits = predict(model, data.dataset, batch_size=batch, verbose=False)
        t = time.perf_counter() - t0
    return len(data.dataset) / t, logits


def bench_train_step(model, batch_items: list[dict], collate, precision: str | None, steps: int) -> float:
    """Sequences per second of forward + backward + AdamW steps on one batch."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    batch = collate(batch_items)
    times = []
    for _ in range(steps + 1):  # the first is a warm-up
        t0 = time.perf_counter()
        with autocast("cpu", precision):
            loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    model.eval()
    return len(batch_items) / float(np.median(times[1:]))


def bench_ig(model, data, k: int, n_steps: int, batch: int, precision: str | None) -> float:
    from m6abert.attribution import attribution_scores

    with autocast("cpu", precision):
        t0 = time.perf_counter()
        attribution_scores(model, data.dataset, k, n_steps=n_steps, batch_size=batch, verbose=False)
    return len(data.dataset) / (time.perf_counter() - t0)


def bench_startup(k: int) -> float:
    """Seconds from process start to the end of a one-sequence prediction with a tiny model."""
    from m6abert import io

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        io.save_checkpoint(model_dir, new_model(build_config("tiny", k), "classification"), k)
        (Path(tmp) / "one.fa").write_text(">r1\n" + windows(1, 501)[0] + "\n")
        cmd = [sys.executable, str(ROOT / "run_predict_degradation.py"), "--data_dir", tmp, "--output_dir",
               str(model_dir), "--predict_fasta", str(Path(tmp) / "one.fa"), "--max_seq_length", "512",
               "--predict_dir", str(Path(tmp) / "pred")]
        runs = [_timed(lambda: subprocess.run(cmd, check=True, capture_output=True)) for _ in range(3)]
    return float(np.median(runs))


def row(name: str, precision: str, rate: float, gflop: float, peak: float, unit: str = "seq/s") -> dict:
    achieved = rate * gflop
    return {"part": name, "precision": precision, "rate": rate, "unit": unit, "gflops": achieved,
            "fraction_of_peak": achieved / peak}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="bert-base", choices=list(PRESETS))
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--n_batches", type=int, default=3, help="inference batches timed")
    p.add_argument("--length", type=int, default=501)
    p.add_argument("--ig_steps", type=int, nargs="+", default=[20, 50], help="IG quadrature steps timed")
    p.add_argument("--skip", default="", help=f"comma-separated parts to skip: {', '.join(PARTS)}")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_models.json"))
    args = p.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    torch.manual_seed(0)
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    cfg = build_config(args.config, args.k, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = new_model(cfg, "classification").eval()
    seqs = windows(args.batch * args.n_batches, args.length)
    data = dataset_from_seqs(seqs, args.k, labels=[i % 2 for i in range(len(seqs))])
    tokens = args.length - args.k + 1 + 2
    fwd = forward_gflop(cfg, tokens)
    rows, extra = [], {}
    for prec, tag in ((None, "fp32"), ("bf16", "bf16")):
        if "inference" not in skip:
            rate, logits = bench_inference(model, data, args.batch, prec)
            rows.append(row("inference", tag, rate, fwd, peaks[tag]))
            extra[f"logits_{tag}"] = logits
        if "finetune" not in skip:
            items = [data.dataset[i] for i in range(args.batch)]
            rows.append(row("finetune step", tag, bench_train_step(model, items, Collator(), prec, 2), 3 * fwd,
                            peaks[tag]))
        if "mlm" not in skip:
            rows.append(_mlm_row(cfg, data, args, prec, tag, fwd, peaks[tag], tokens))
        if "ig" not in skip:
            small = dataset_from_seqs(seqs[: min(4, len(seqs))], args.k, labels=[1, 0, 1, 0][: min(4, len(seqs))])
            for n_steps in args.ig_steps:
                rate = bench_ig(model, small, args.k, n_steps, 4, prec)
                rows.append(row(f"IG {n_steps} steps", tag, rate, 3 * n_steps * fwd, peaks[tag]))
    if "inference" not in skip:
        p32 = _p1(extra["logits_fp32"])
        extra = {"max_abs_p1_difference_bf16_vs_fp32": float(np.abs(_p1(extra["logits_bf16"]) - p32).max())}
    startup = bench_startup(args.k) if "startup" not in skip else None
    report = {"machine": _machine(), "config": args.config, "k": args.k, "batch": args.batch, "tokens": tokens,
              "forward_gflop_per_sequence": fwd, "matmul_peak_gflops": peaks, "rows": rows,
              "startup_s_one_prediction": startup, "peak_rss_gib": _rss_gib(), **extra}
    _print(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0


def _mlm_row(cfg, data, args, prec, tag, fwd, peak, tokens) -> dict:
    from m6abert.pretrain import SpanMaskingCollator

    mlm = new_model(build_config(args.config, args.k, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0), "mlm")
    items = [{"input_ids": data.dataset[i]["input_ids"]} for i in range(args.batch)]
    rate = bench_train_step(mlm, items, SpanMaskingCollator(args.k, cfg.vocab_size), prec, 2)
    return row("MLM step", tag, rate * tokens, 3 * fwd / tokens, peak, unit="tokens/s")


def _p1(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    return np.exp(z[:, 1]) / np.exp(z).sum(axis=1)


def _machine() -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {"cpu": cpu, "threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version()}


def _rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _print(report: dict) -> None:
    m = report["machine"]
    print(f"{m['cpu']}, {m['threads']} threads, torch {m['torch']}; {report['config']} k={report['k']}, "
          f"batch {report['batch']}, {report['tokens']} tokens, {report['forward_gflop_per_sequence']:.1f} GFLOP/forward")
    print("matmul peak: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in report["matmul_peak_gflops"].items()))
    print(f"{'part':<16} {'prec':<5} {'rate':>12} {'unit':<9} {'GFLOP/s':>9} {'of peak':>8}")
    for r in report["rows"]:
        print(f"{r['part']:<16} {r['precision']:<5} {r['rate']:>12.2f} {r['unit']:<9} {r['gflops']:>9.1f} "
              f"{100 * r['fraction_of_peak']:>7.0f}%")
    if report.get("startup_s_one_prediction") is not None:
        print(f"start-up + one prediction (tiny model, whole process): {report['startup_s_one_prediction']:.2f} s")
    if "max_abs_p1_difference_bf16_vs_fp32" in report:
        print(f"max |P(class 1) bf16 - fp32|: {report['max_abs_p1_difference_bf16_vs_fp32']:.4f}")
    print(f"peak RSS {report['peak_rss_gib']:.2f} GiB")


if __name__ == "__main__":
    raise SystemExit(main())
