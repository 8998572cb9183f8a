"""Settings that make training fast on a CPU without changing what it computes: glibc's malloc keeps a
step's working set (m6abert.memory) and batches are length-bucketed outside --dnabert_compat."""

from __future__ import annotations

import ctypes.util
import json
import subprocess
import sys

import numpy as np
import pytest
from toy import write_split_dir

from m6abert.data import Collator, dataset_from_seqs
from m6abert.train import Dist, bucket_lengths, epoch_order, padded_tokens

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
    code = "from m6abert.memory import retain_freed_memory; print(retain_freed_memory())"
    assert _in_fresh_process(code) == "True"
    assert _in_fresh_process(code, {"MALLOC_MMAP_THRESHOLD_": "131072"}) == "False"  # the user's choice stands
    assert _in_fresh_process(code, {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1"}) == "False"
    assert _in_fresh_process(code, {"MALLOC_CHECK_": "0"}) == "True"  # a debugging switch is no tuning


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


def test_finetuning_records_the_malloc_setting_and_uses_fused_adamw(tmp_path):
    """In a process of its own (the setting is process-wide): the run JSON records it; AdamW is fused."""
    data = write_split_dir(tmp_path / "data", n=16)
    code = f"""
import json, sys
import m6abert.train as T
made = []
make = T.make_optimizer
T.make_optimizer = lambda model, a: made.append(make(model, a)) or made[-1]
import run_finetune_degradation
run_finetune_degradation.main(["--model_type", "dna", "--tokenizer_name", "dna3", "--from_scratch", "--config_name",
    "tiny", "--task_name", "dnaprom", "--do_train", "--data_dir", {str(data)!r}, "--output_dir", {str(tmp_path / "o")!r},
    "--max_steps", "1", "--logging_steps", "100", "--save_steps", "100", "--no_cuda"])
print(json.dumps([o.defaults["fused"] for o in made]))
"""
    fused = json.loads(_in_fresh_process(code).splitlines()[-1])
    assert fused and all(fused)
    runtime = json.loads((tmp_path / "o" / "finetune_args.json").read_text())["runtime"]
    assert runtime["malloc_retains_freed_memory"] is GLIBC


def test_bucketed_pretraining_resumes_exactly(tmp_path):
    """Rows of 20..120 nt: batches are length-bucketed, and a run resumed mid-epoch ends identical."""
    import shutil

    import numpy as np
    from safetensors.torch import load_file
    from toy import random_seq

    import run_pretrain
    from m6abert import io
    from m6abert.kmer import seq2kmer

    rng = np.random.RandomState(3)
    corpus = tmp_path / "train.txt"
    io.write_lines(corpus, [seq2kmer(random_seq(rng, int(rng.randint(20, 120))), 3) for _ in range(48)])
    lengths = [len(line.split()) + 2 for line in corpus.read_text().splitlines()]
    assert epoch_order(48, 42, 0, ONE, lengths, 4) != epoch_order(48, 42, 0, ONE)  # the bucketed path is taken
    flags = ["--model_type", "dna", "--tokenizer_name", "dna3", "--config_name", "tiny", "--train_data_file",
             str(corpus), "--mlm", "--do_train", "--per_gpu_train_batch_size", "4", "--max_steps", "16",
             "--save_steps", "8", "--logging_steps", "0", "--no_cuda", "--seed", "42"]
    full, part = tmp_path / "full", tmp_path / "part"
    run_pretrain.main([*flags, "--output_dir", str(full)])
    part.mkdir()
    shutil.copytree(full / "checkpoint-8", part / "checkpoint-8")  # mid-epoch (12 batches per epoch)
    run_pretrain.main([*flags, "--output_dir", str(part), "--should_continue"])
    a, b = load_file(full / "model.safetensors"), load_file(part / "model.safetensors")
    assert a.keys() == b.keys() and all(a[n].equal(b[n]) for n in a)


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
    plain = [epoch_order(len(lengths), 1, 0, Dist(r, 2, r, None)) for r in range(2)]
    for rank, order in enumerate(ranks):  # each rank's batches pad far less than the plain order's
        real = sum(lengths[i] for i in order)
        assert padded_tokens(order, lengths, 4) - real < (padded_tokens(plain[rank], lengths, 4) - real) / 5
    widths = [[max(lengths[i] for i in order[b:b + 4]) for b in range(0, len(order), 4)] for order in ranks]
    assert np.median(np.abs(np.subtract(*widths))) < 20  # the ranks' batches of a step have close widths


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")
def test_streamed_prediction_memory_is_flat_in_the_number_of_chunks(tmp_path):
    """--predict_fasta retains freed memory within a chunk (no page faults of each batch's working set) and
    gives the free pages back after each chunk: the peak resident set of 8 chunks is that of 2 chunks
    (within 40 MiB), and the run records that malloc retained memory."""
    from test_positions import peak_rss_mib
    from toy import tiny_classifier

    tiny_classifier(tmp_path / "model")
    rng = np.random.RandomState(0)
    peaks = {}
    for n_chunks in (2, 8):
        fasta = tmp_path / f"w{n_chunks}.fa"
        fasta.write_text("".join(f">r{i}\n{''.join(rng.choice(list('ACGT'), 501))}\n" for i in range(64 * n_chunks)))
        code = ("import sys; sys.argv[0] = 'run_predict_degradation.py'; from m6abert.cli import predict; "
                f"raise SystemExit(predict.main(['--output_dir', {str(tmp_path / 'model')!r}, '--predict_dir', "
                f"{str(tmp_path / f'p{n_chunks}')!r}, '--predict_fasta', {str(fasta)!r}, '--chunk_records', '64', "
                "'--per_gpu_pred_batch_size', '32']))")
        status, peaks[n_chunks] = peak_rss_mib(code)
        assert status == 0
        assert len(np.load(tmp_path / f"p{n_chunks}" / "pred_results.npy")) == 64 * n_chunks
    assert peaks[8] - peaks[2] < 40, peaks
    code = ("import sys; sys.argv[0] = 'run_predict_degradation.py'; import m6abert.memory as M; made = []; "
            "retain = M.retain_freed_memory; M.retain_freed_memory = lambda: made.append(retain()) or made[-1]; "
            "from m6abert.cli import predict; "
            f"predict.main(['--output_dir', {str(tmp_path / 'model')!r}, '--predict_dir', {str(tmp_path / 'q')!r}, "
            f"'--predict_fasta', {str(tmp_path / 'w2.fa')!r}]); print(made)")
    assert _in_fresh_process(code).splitlines()[-1] == "[True]"
