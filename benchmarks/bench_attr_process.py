"""Whole-process attribution: ``visualize_all.py --vis_task attr`` timed from process start, with the
completeness error and the integration steps of every setting read from its ``attributions_{data}_qc.tsv``.

The performance issues' references: the original code took 108.6 s for 20 sequences with a mini model
(4 x 256, k=3) at its probability target, ``[PAD]`` baseline and 50 steps on an Intel machine, 311.9 s on
this AMD one (its MKL's slow path). This runs the same job (20 sequences, a mini model, ``--no_plot``)
for each setting below, so the time against ``--dnabert_compat`` (the original's algorithm) and the
error can be compared at once; user and system CPU seconds are kept apart (system time is mostly page
faults of fresh allocations). Give a *fine-tuned* model: on a barely trained one every setting's error
is tiny.

Usage: ``python benchmarks/bench_attr_process.py --model DIR --data_dir DIR [--data_name dev] [--n 20]``
(the first ``--n`` rows of ``{data_dir}/{data_name}.tsv`` are attributed).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ORIGINAL_S, ORIGINAL_N = 108.6, 20  # the original code, the performance issue's measurement
SETTINGS = {  # name: visualize_all.py flags
    "compat (prob, [PAD], 50 steps)": ["--dnabert_compat"],
    "default (logodds, 4 shuffles, adaptive 8..128)": [],
    "logodds, 4 shuffles, fixed 32 steps (the old default)": ["--n_steps", "32"],
    "logodds, 4 shuffles, adaptive, --max_rel_delta 1e-3": ["--max_rel_delta", "1e-3"],
    "logodds, [PAD], 4 steps": ["--attr_target", "logodds", "--baseline", "pad", "--n_steps", "4"],
    "logodds, [PAD], 8 steps": ["--attr_target", "logodds", "--baseline", "pad", "--n_steps", "8"],
    "logodds, [PAD], 16 steps": ["--attr_target", "logodds", "--baseline", "pad", "--n_steps", "16"],
    "prob, [PAD], 8 steps": ["--attr_target", "prob", "--baseline", "pad", "--n_steps", "8"],
}


def run_setting(flags: list[str], model: str, kmer: int, data_dir: Path, data_name: str, work: Path) -> dict:
    out = work / "vis"
    cmd = [sys.executable, str(ROOT / "visualize_all.py"), "--kmer", str(kmer), "--model_path", model, "--data_dir",
           str(data_dir), "--data_name", data_name, "--vis_task", "attr", "--output_dir", str(out), "--no_plot",
           "--batch_size", "20", *flags]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(proc.stderr[-2000:])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out / f"attributions_{data_name}_qc.tsv", newline="") as fh:
        qc = list(csv.DictReader(fh, delimiter="\t"))
    rel = np.array([float(r["rel_error"]) for r in qc])
    steps = np.array([int(r["steps"]) for r in qc])
    return {"wall_s": wall, "user_s": after.ru_utime - before.ru_utime, "sys_s": after.ru_stime - before.ru_stime,
            "median_rel_error": float(np.median(rel)), "p90_rel_error": float(np.percentile(rel, 90)),
            "max_rel_error": float(rel.max()), "share_above_0.1": float(np.mean(rel > 0.1)),
            "flagged": sum(r["converged"] == "0" for r in qc), "decided_absolute": sum(r["decided_by"] == "absolute" for r in qc),
            "steps_median": float(np.median(steps)), "steps_p90": float(np.percentile(steps, 90)),
            "steps_max": int(steps.max()), "n": int(rel.size)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a fine-tuned classifier folder")
    p.add_argument("--data_dir", required=True)
    p.add_argument("--data_name", default="dev")
    p.add_argument("--kmer", type=int, default=3)
    p.add_argument("--n", type=int, default=ORIGINAL_N)
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_attr_process.json"))
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        lines = Path(args.data_dir, f"{args.data_name}.tsv").read_text().splitlines()
        (data / f"{args.data_name}.tsv").write_text("\n".join(lines[: args.n + 1]) + "\n")
        print(f"{'setting':<54} {'wall s':>7} {'/compat':>8} {'median rel. err':>16} {'90th pct':>9} {'> 0.1':>6} "
              f"{'steps med/p90/max':>18}")
        for name in args.settings:
            r = {"setting": name, **run_setting(SETTINGS[name], args.model, args.kmer, data, args.data_name, Path(tmp) / "w")}
            r["speedup_vs_original"] = (ORIGINAL_S / ORIGINAL_N) / (r["wall_s"] / r["n"])
            r["vs_compat"] = r["wall_s"] / rows[0]["wall_s"] if rows else 1.0
            rows.append(r)
            steps = f"{r['steps_median']:g}/{r['steps_p90']:g}/{r['steps_max']}"
            print(f"{name:<54} {r['wall_s']:>7.1f} {r['vs_compat']:>7.2f}x {r['median_rel_error']:>16.2e} "
                  f"{r['p90_rel_error']:>9.2e} {r['share_above_0.1']:>6.0%} {steps:>18}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"model": args.model, "data": f"{args.data_dir}/{args.data_name}.tsv",
                                          "original_s": ORIGINAL_S, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
