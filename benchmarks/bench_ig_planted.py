"""Integration error or an ill-conditioned ratio? Integrated gradients on a tiny planted-motif model.

A tiny k=3 model is fine-tuned (from scratch, ``--max_steps`` steps, the planted-motif data of
tests/test_attribution.py: positives carry a motif 100 nt before the site) and its 40 test rows are
attributed against 4 dinucleotide-shuffled references (log-odds target) at 4..128 Gauss-Legendre
steps. Per (sequence, reference) pair: the gap |F(x) - F(reference)| and |delta| (Captum's
completeness error). If the relative errors were an ill-conditioned ratio, |delta| would stay put
as the steps grow (a floor) and the large ratios would sit on small gaps; if they are integration
error, |delta| falls with the steps. Writes a text table to stdout (kept in
``benchmarks/results/bench_ig_planted.txt``).

Usage: ``python benchmarks/bench_ig_planted.py [--max_steps 120] [--work /tmp/ig_planted]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from test_attribution import planted_rows, write_rows  # noqa: E402

from m6abert.attribution import shuffled_baseline_ids, target_function  # noqa: E402
from m6abert.cli import finetune as finetune_cli  # noqa: E402
from m6abert.cli.common import run_guarded  # noqa: E402
from m6abert.data import Collator, load_tsv_dataset  # noqa: E402
from m6abert.inference import load_classifier  # noqa: E402

N_REFS = 4


def planted_model(root: Path, max_steps: int) -> Path:
    if not (root / "model" / "config.json").exists():
        rng = np.random.RandomState(0)
        write_rows(root / "data" / "train.tsv", planted_rows(400, rng))
        write_rows(root / "data" / "dev.tsv", planted_rows(40, rng))
        write_rows(root / "data" / "test.tsv", planted_rows(40, rng))
        run_guarded(finetune_cli.run, [
            "--model_type", "dna", "--tokenizer_name", "dna3", "--from_scratch", "--config_name", "tiny",
            "--task_name", "dnaprom", "--do_train", "--do_eval", "--data_dir", str(root / "data"),
            "--max_seq_length", "128", "--per_gpu_train_batch_size", "32", "--per_gpu_eval_batch_size", "64",
            "--learning_rate", "1e-3", "--max_steps", str(max_steps), "--warmup_percent", "0.1",
            "--logging_steps", "1000", "--save_steps", "1000", "--output_dir", str(root / "model"), "--seed", "0"])
    return root / "model"


def main(argv: list[str] | None = None) -> int:
    from captum.attr import LayerIntegratedGradients

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max_steps", type=int, default=120, help="fine-tuning steps of the planted model")
    p.add_argument("--work", type=Path, default=Path("/tmp/ig_planted"))
    args = p.parse_args(argv)
    model, _ = load_classifier(planted_model(args.work, args.max_steps), 3, 128)
    model.eval()
    data = load_tsv_dataset(args.work / "data" / "test.tsv", 3, 128)
    batch = Collator(128, False)([data.dataset[i] for i in range(len(data.dataset))])
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    refs = shuffled_baseline_ids(ids, mask, 3, N_REFS, 42)
    f = target_function(model, "logodds")
    pairs = [t.repeat_interleave(N_REFS, 0) for t in (ids, mask, labels)]
    with torch.no_grad():
        f_in = f(ids, mask)[torch.arange(len(ids)), labels].double()
        f_ref = f(refs, pairs[1])[torch.arange(len(refs)), pairs[2]].double()
    gap = (f_in.repeat_interleave(N_REFS) - f_ref).abs()
    print(f"# planted tiny k=3 model, {args.max_steps} fine-tuning steps; {len(ids)} test rows x {N_REFS} shuffled "
          f"references; median P(true label) {torch.sigmoid(f_in).median():.3f}")
    print(f"# gap |F(x) - F(ref)| per pair: 10th/50th/90th percentile {np.percentile(gap.numpy(), [10, 50, 90])}")
    print("steps  seconds  |delta| 50th/90th/max per pair        rel. error per sequence: median  p90  >0.1 "
          "| pairs >0.1: all, with gap <1e-3")
    lig = LayerIntegratedGradients(f, model.bert.embeddings, multiply_by_inputs=True)
    for n_steps in (4, 8, 16, 32, 64, 128):
        t0 = time.perf_counter()
        _, delta = lig.attribute(inputs=pairs[0], baselines=refs, target=pairs[2], additional_forward_args=(pairs[1],),
                                 n_steps=n_steps, method="gausslegendre", internal_batch_size=len(refs) * 8,
                                 return_convergence_delta=True)
        d = delta.detach().abs().double()
        rel_pair = d / gap
        rel_seq = (d.view(-1, N_REFS).mean(1) / gap.view(-1, N_REFS).mean(1)).numpy()
        q = np.percentile(d.numpy(), [50, 90, 100])
        small = gap < 1e-3
        print(f"{n_steps:5d} {time.perf_counter() - t0:8.1f}  {q[0]:.2e} {q[1]:.2e} {q[2]:.2e}              "
              f"{np.median(rel_seq):10.3g} {np.percentile(rel_seq, 90):6.3g} {(rel_seq > 0.1).mean():5.0%} | "
              f"{(rel_pair > 0.1).float().mean():.0%}, {(rel_pair[small] > 0.1).float().mean() if small.any() else 0:.0%}"
              f" of {int(small.sum())}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
