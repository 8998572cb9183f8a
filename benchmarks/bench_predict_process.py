"""Whole-process prediction against the kernel and the machine, measured in the same run.

For 40 and for 400 real windows of the paper's data (501 nt, k=3, a random bert-base classifier saved as
a model folder) and for float32 and bfloat16, three rates in sequences per second:

* ``process``: ``run_predict_degradation.py --predict_fasta`` timed from process start to exit, and its
  loop alone (``loop``: the time between the log line that starts the prediction and the results line);
* ``kernel``: :func:`m6abert.inference.predict` on the same windows in this process, after a warm-up,
  with glibc's malloc keeping freed memory as the command does (:func:`m6abert.memory.retain_freed_memory`;
  without it the kernel pays page faults the command does not: ``bench_predict_process_kernel_unretained.log``);
* ``peak``: the forward FLOPs of one window over the matmul peak of the precision (4096^3 matmuls).

The target (issue "the speed a user sees"): the whole process at >= 80 % of the kernel's rate for 400
windows. A table goes to stdout and everything to a JSON file.

Usage: ``python benchmarks/bench_predict_process.py [--data_dir ../shared/data/m6a_deg] [--sizes 40,400]
[--precisions fp32,bf16] [--out benchmarks/results/bench_predict_process.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_models import _machine, forward_gflop, matmul_peak  # noqa: E402

from m6abert import io  # noqa: E402
from m6abert.data import dataset_from_seqs  # noqa: E402
from m6abert.inference import autocast, predict  # noqa: E402
from m6abert.model import build_config, new_model  # noqa: E402

BATCH, K = 8, 3
STAMP = re.compile(r"^(\d\d/\d\d/\d{4} \d\d:\d\d:\d\d)")


def model_folder(folder: Path) -> Path:
    """A random bert-base classifier at k=3 saved as a toolkit model folder."""
    torch.manual_seed(0)
    model = new_model(build_config("bert-base", K), "classification")
    io.save_model_files(folder, model, K)
    return folder


def real_windows(data_dir: Path, n: int) -> list[io.FastaRecord]:
    """The first ``n`` windows of neg.fa then pos.fa that are 501 nt (the paper's full windows)."""
    records = [r for name in ("neg.fa", "pos.fa") for r in io.read_fasta(data_dir / name) if len(r.seq) == 501]
    if len(records) < n:
        raise SystemExit(f"{data_dir}: only {len(records)} full windows, {n} asked for")
    return records[:n]


def kernel_rate(model_dir: Path, seqs: list[str], precision: str | None) -> float:
    from m6abert.inference import load_classifier

    model, k = load_classifier(model_dir, K, 512)
    data = dataset_from_seqs(seqs, k, None, 512)
    with autocast("cpu", precision):
        warm = dataset_from_seqs(seqs[: 2 * BATCH], k, None, 512).dataset
        predict(model, warm, batch_size=BATCH, verbose=False)  # warm-up: the windows are all 501 nt (one shape)
        t0 = time.perf_counter()
        predict(model, data.dataset, batch_size=BATCH, verbose=False)
    return len(seqs) / (time.perf_counter() - t0)


def _loop_seconds(log: str) -> float | None:
    """Seconds between the prediction's first log line after the arguments and the written line."""
    stamps = [datetime.strptime(m[1], "%m/%d/%Y %H:%M:%S") for m in map(STAMP.match, log.splitlines()) if m]
    return (stamps[-1] - stamps[1]).total_seconds() if len(stamps) >= 3 else None


def process_rate(model_dir: Path, fasta: Path, out: Path, precision: str | None, n: int) -> dict:
    cmd = [sys.executable, "run_predict_degradation.py", "--output_dir", str(model_dir), "--predict_fasta",
           str(fasta), "--predict_dir", str(out), "--per_gpu_pred_batch_size", str(BATCH), "--max_seq_length", "512",
           "--progress_interval", "1000", *(["--bf16"] if precision == "bf16" else [])]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ})
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(proc.stderr[-2000:])
    loop = _loop_seconds(proc.stderr)
    return {"wall_s": round(wall, 2), "process_seq_s": n / wall, "loop_s": loop,
            "loop_seq_s": n / loop if loop else None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data_dir", type=Path, default=ROOT.parent / "shared" / "data" / "m6a_deg")
    p.add_argument("--sizes", default="40,400")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_predict_process.json")
    args = p.parse_args(argv)
    from m6abert.memory import retain_freed_memory

    retain_freed_memory()  # the kernel under the command's malloc setting
    sizes = [int(x) for x in args.sizes.split(",")]
    report = {"machine": _machine(), "batch": BATCH, "k": K, "config": "bert-base", "rows": []}
    cfg = build_config("bert-base", K)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = model_folder(Path(tmp) / "model")
        records = real_windows(args.data_dir, max(sizes))
        for precision in args.precisions.split(","):
            prec = None if precision == "fp32" else precision
            peak = matmul_peak(torch.float32 if prec is None else torch.bfloat16)
            per_seq = forward_gflop(cfg, 501)
            for n in sizes:
                fasta = Path(tmp) / f"w{n}.fa"
                io.write_text(fasta, "".join(f">{r.id}\n{r.seq}\n" for r in records[:n]))
                row = {"precision": precision, "n": n, "peak_seq_s": peak / per_seq,
                       "kernel_seq_s": kernel_rate(model_dir, [r.seq for r in records[:n]], prec),
                       **process_rate(model_dir, fasta, Path(tmp) / f"out_{precision}_{n}", prec, n)}
                row["process_vs_kernel"] = row["process_seq_s"] / row["kernel_seq_s"]
                report["rows"].append(row)
                print(json.dumps(row), flush=True)
    io.write_json(args.out, report)
    print(f"{'precision':>9} {'n':>4} {'peak':>7} {'kernel':>7} {'loop':>7} {'process':>8} {'process/kernel':>15}")
    for r in report["rows"]:
        loop = f"{r['loop_seq_s']:.2f}" if r["loop_seq_s"] else "-"
        print(f"{r['precision']:>9} {r['n']:>4} {r['peak_seq_s']:7.2f} {r['kernel_seq_s']:7.2f} {loop:>7} "
              f"{r['process_seq_s']:8.2f} {r['process_vs_kernel']:15.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
