"""Settings that make training fast on a CPU without changing what it computes: glibc's malloc keeps a
step's working set (m6abert.memory) and batches are length-bucketed outside --dnabert_compat."""

from __future__ import annotations

import ctypes.util
import json
import subprocess
import sys

import pytest
from toy import write_split_dir

from m6abert.data import Collator, dataset_from_seqs
from m6abert.train import Dist, bucket_lengths, epoch_order

GLIBC = ctypes.util.find_library("c") is not None and sys.platform.startswith("linux")
ONE = Dist(0, 1, -1, None)


def _in_fresh_process(code: str, env: dict | None = None) -> str:
    import os

    run_env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    proc = subprocess.run([sys.executable, "-c", code], env={**run_env, **(env or {})}, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_training_retains_freed_memory_unless_the_user_tunes_malloc():
    code = "from m6abert.memory import retain_freed_memory, fixed_mmap_threshold; print(retain_freed_memory(), fixed_mmap_threshold())"
    assert _in_fresh_process(code) == "True True"
    assert _in_fresh_process(code, {"MALLOC_MMAP_THRESHOLD_": "131072"}) == "False False"  # the user's choice stands


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_a_big_block_is_reused_without_page_faults_once_retained():
    """What the setting is for: a freed 256 MB block comes back without faulting its pages in again
    (glibc's malloc directly: torch's 64-byte-aligned allocations reuse the block at most every
    other time, see m6abert.memory)."""
    code = """
import ctypes, resource
from m6abert.memory import retain_freed_memory
if RETAIN:
    assert retain_freed_memory()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
n = 256 << 20
for step in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(n)
    ctypes.memset(block, 1, n)  # touch every page, as a step's activations do
    libc.free(block)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
    retained = int(_in_fresh_process(code.replace("RETAIN", "True")))
    default = int(_in_fresh_process(code.replace("RETAIN", "False")))
    assert default > 60_000  # 256 MB = 65,536 pages faulted in again at every step
    assert retained < 1_000


def test_finetuning_records_the_malloc_setting(tmp_path):
    import run_finetune_degradation

    data = write_split_dir(tmp_path / "data", n=16)
    run_finetune_degradation.main(["--model_type", "dna", "--tokenizer_name", "dna3", "--from_scratch", "--config_name",
                                   "tiny", "--task_name", "dnaprom", "--do_train", "--data_dir", str(data),
                                   "--output_dir", str(tmp_path / "o"), "--max_steps", "1", "--logging_steps", "100",
                                   "--save_steps", "100", "--overwrite_output_dir"])
    runs = list((tmp_path / "o").glob("*args*.json"))
    assert runs, list((tmp_path / "o").iterdir())
    runtime = json.loads(runs[0].read_text())["runtime"]
    assert runtime["malloc_retains_freed_memory"] is GLIBC


def _varied_dataset(n: int = 400):
    import numpy as np

    rng = np.random.RandomState(0)
    seqs = ["".join(rng.choice(list("ACGT"), int(rng.randint(20, 300)))) for _ in range(n)]
    return dataset_from_seqs(seqs, 3).dataset


def test_length_bucketed_batches_pad_less_and_keep_every_example():
    dataset = _varied_dataset()
    lengths = bucket_lengths(dataset, Collator(dnabert_compat=False))
    plain = epoch_order(len(dataset), 42, 0, ONE)
    bucketed = epoch_order(len(dataset), 42, 0, ONE, lengths, batch_size=8)
    assert sorted(bucketed) == list(range(len(dataset)))  # a permutation: nothing lost or repeated

    def padding(order):
        batches = [order[i:i + 8] for i in range(0, len(order), 8)]
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)

    assert padding(bucketed) < padding(plain) / 5
    assert max(lengths[i] for i in bucketed[:8]) == max(lengths)  # the longest batch first (memory errors early)
    assert bucketed == epoch_order(len(dataset), 42, 0, ONE, lengths, batch_size=8)  # seeded: resumption is exact
    assert bucketed != epoch_order(len(dataset), 42, 1, ONE, lengths, batch_size=8)  # a new order each epoch


def test_equal_lengths_and_dnabert_compat_keep_the_plain_order():
    dataset = _varied_dataset()
    assert bucket_lengths(dataset, Collator(dnabert_compat=True)) is None  # the original's order
    assert bucket_lengths(dataset, object()) is None  # a collate that does not say
    n = 100
    assert epoch_order(n, 7, 3, ONE, [501] * n, batch_size=8) == epoch_order(n, 7, 3, ONE)
    # a few short rows among full windows (the real data): bucketing would save < 5 % of the tokens
    few_short = [501] * (n - 4) + [300, 320, 460, 480]
    assert epoch_order(n, 7, 3, ONE, few_short, batch_size=8) == epoch_order(n, 7, 3, ONE)


def test_bucketed_order_under_ddp_covers_every_example_once():
    lengths = bucket_lengths(_varied_dataset(), Collator(dnabert_compat=False))
    ranks = [epoch_order(len(lengths), 1, 0, Dist(r, 2, r, None), lengths, batch_size=4) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) and sorted(ranks[0] + ranks[1]) == list(range(len(lengths)))
