"""Nothing lost, nothing executed: kill and resume, NaN stops, partial saves ignored, determinism
(fine-tuning and pretraining), and no code path that unpickles training_args.bin."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from toy import tiny_pretrained, write_corpus, write_split_dir

import run_finetune_degradation as ft
import run_predict_degradation as pr
import run_pretrain as rp
import visualize_all
from m6abert import io
from m6abert.io import list_checkpoints

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--max_seq_length", "64", "--per_gpu_train_batch_size", "8", "--per_gpu_eval_batch_size", "16",
        "--learning_rate", "1e-3", "--logging_steps", "2", "--save_steps", "3", "--evaluate_during_training",
        "--do_train", "--do_eval", "--max_steps", "12", "--seed", "3", "--should_continue"]

# A run that kills itself (SIGKILL) in the middle of its second checkpoint save: after the weights
# are written into the temporary folder, before it is renamed into place.
KILL_IN_SAVE = """
import os, signal, sys
calls = {"n": 0}
import m6abert.io.checkpoints as ckpt_io
orig = ckpt_io.write_tokenizer_files
def dying(folder, k):
    calls["n"] += 1
    if calls["n"] == 2 and ".tmp" in str(folder):
        os.kill(os.getpid(), signal.SIGKILL)
    return orig(folder, k)
ckpt_io.write_tokenizer_files = dying
import run_finetune_degradation as ft
ft.main(sys.argv[1:])
"""


def _argv(tmp_path: Path, out: Path) -> list[str]:
    return [*ARGS, "--model_name_or_path", str(tmp_path / "pre"), "--data_dir", str(tmp_path / "data"),
            "--output_dir", str(out)]


def _same_result(a: Path, b: Path) -> None:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert all(torch.equal(wa[n], wb[n]) for n in wa)
    assert (a / "eval_results.txt").read_bytes() == (b / "eval_results.txt").read_bytes()


@pytest.fixture
def setup(tmp_path):
    write_split_dir(tmp_path / "data", n=48)
    tiny_pretrained(tmp_path / "pre")
    ref = tmp_path / "ref"
    start = time.perf_counter()
    ft.main(_argv(tmp_path, ref))
    return tmp_path, ref, time.perf_counter() - start  # the killed process's training takes as long


def test_sigkill_during_checkpoint_save_then_resume(setup):
    tmp_path, ref, _ = setup
    out = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", KILL_IN_SAVE, *_argv(tmp_path, out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL
    # the interrupted save left only a temporary folder; the checkpoint itself is absent
    complete = list_checkpoints(out)
    partial = [p for p in out.iterdir() if p.name.startswith(".checkpoint-") and p.name.endswith(".tmp")]
    assert len(complete) == 1 and len(partial) == 1
    assert not (out / partial[0].name.split(".")[1]).exists()
    ft.main(_argv(tmp_path, out))
    _same_result(ref, out)
    assert not any(p.name.startswith(".") for p in out.iterdir())


def _kill_after(out: Path, argv: list[str], checkpoints: int, delay: float) -> int:
    """Start the run, SIGKILL it ``delay`` s after its ``checkpoints``-th checkpoint appeared; its return code."""
    proc = subprocess.Popen([sys.executable, "run_finetune_degradation.py", *argv], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(list_checkpoints(out)) < checkpoints and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    return proc.wait()


def test_sigkill_at_random_moments_then_resume(setup):
    """Killed at a random moment between checkpoints 1..3 of 4 (12 steps, saved every 3): the resumed run
    ends with the uninterrupted run's weights and evaluation lines. The moment is drawn in the run's own
    time (after its k-th checkpoint), not from the reference run's duration, which a loaded machine skews."""
    tmp_path, ref, duration = setup
    rng = random.Random(1234)
    for trial in range(2):
        out = tmp_path / f"random{trial}"
        code = _kill_after(out, _argv(tmp_path, out), rng.choice([1, 2, 3]), rng.uniform(0.0, duration / 12))
        if code != -signal.SIGKILL:  # the run outpaced the kill: again at once after the first checkpoint
            shutil.rmtree(out)
            code = _kill_after(out, _argv(tmp_path, out), 1, 0.0)
        assert code == -signal.SIGKILL, "the run ended before the kill: nothing would be resumed"
        ft.main(_argv(tmp_path, out))
        _same_result(ref, out)


def test_resume_without_checkpoint_starts_afresh(setup):
    tmp_path, ref, _ = setup
    out = tmp_path / "early"
    out.mkdir()
    io.write_text(out / "eval_results.txt", "stale line from a killed attempt\n")
    ft.main(_argv(tmp_path, out))
    _same_result(ref, out)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    write_split_dir(tmp_path / "data", n=32)
    tiny_pretrained(tmp_path / "pre")
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as exc:
        ft.main(["--model_name_or_path", str(tmp_path / "pre"), "--do_train", "--data_dir", str(tmp_path / "data"),
                 "--output_dir", str(out), "--max_seq_length", "64", "--learning_rate", "1e30",
                 "--save_steps", "1", "--max_steps", "10", "--per_gpu_train_batch_size", "8"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "loss became" in err and "Traceback" not in err
    kept = list_checkpoints(out)
    assert kept and f"last good checkpoint: {kept[-1]}" in err
    state = io.read_json(kept[-1] / "trainer_state.json")
    assert state["global_step"] == int(kept[-1].name.split("-")[1])
    assert not (out / "model.safetensors").exists()  # no final model from a diverged run


def test_partial_atomic_writes_leave_nothing(tmp_path):
    target = tmp_path / "pred_results.npy"
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def evil_training_args(folder: Path, marker: Path) -> None:
    """A ``training_args.bin`` (as transformers' Trainer and DNABERT wrote) whose unpickling runs code."""
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(folder / "training_args.bin", "wb") as fh:
        pickle.dump(Evil(), fh, protocol=2)


def test_training_args_bin_is_never_loaded(setup):
    """No code path opens training_args.bin: resuming, continuing pretraining, predicting, scoring."""
    import shutil

    tmp_path, ref, _ = setup
    marker = tmp_path / "PWNED"
    out = tmp_path / "resumed"
    for ckpt in ref.glob("checkpoint-*"):  # what the run kept: the latest (9) and the best on dev
        shutil.copytree(ckpt, out / ckpt.name)
    for folder in (out, out / "checkpoint-9", ref, tmp_path / "pre"):
        evil_training_args(folder, marker)
    ft.main(_argv(tmp_path, out))  # --should_continue from checkpoint-9
    _same_result(ref, out)
    pr.main(["--data_dir", str(tmp_path / "data"), "--output_dir", str(ref), "--predict_dir", str(tmp_path / "p"),
             "--max_seq_length", "64"])
    visualize_all.main(["--model_path", str(ref), "--data_dir", str(tmp_path / "data"), "--data_name", "dev",
                        "--vis_task", "attn", "--output_dir", str(tmp_path / "vis"), "--max_seq_length", "64",
                        "--no_plot"])
    write_corpus(tmp_path / "corpus.txt", 8)
    rp.main(["--model_name_or_path", str(tmp_path / "pre"), "--train_data_file", str(tmp_path / "corpus.txt"),
             "--output_dir", str(tmp_path / "pretrained"), "--max_steps", "1"])
    assert (tmp_path / "p" / "pred_results.npy").exists() and (tmp_path / "pretrained" / "model.safetensors").exists()
    assert not marker.exists()


# ---------------------------------------------------------------------------- pretraining
PRETRAIN_ARGS = ["--config_name", "tiny", "--per_gpu_train_batch_size", "8", "--per_gpu_eval_batch_size", "16",
                 "--learning_rate", "5e-3", "--logging_steps", "3", "--save_steps", "4", "--evaluate_during_training",
                 "--do_train", "--do_eval", "--max_steps", "24", "--seed", "5", "--should_continue"]
KILL_IN_PRETRAIN_SAVE = KILL_IN_SAVE.replace("import run_finetune_degradation as ft", "import run_pretrain as ft")


def _pretrain_argv(tmp_path: Path, out: Path) -> list[str]:
    return [*PRETRAIN_ARGS, "--train_data_file", str(tmp_path / "train.txt"), "--eval_data_file",
            str(tmp_path / "eval.txt"), "--output_dir", str(out)]


def _same_pretraining(a: Path, b: Path) -> None:
    _same_result(a, b)
    assert (a / "eval_results.jsonl").read_bytes() == (b / "eval_results.jsonl").read_bytes()


@pytest.fixture
def pretrain_setup(tmp_path):
    """An uninterrupted pretraining run (24 steps over 3 epochs of 8 batches) and its duration."""
    write_corpus(tmp_path / "train.txt", 64, seed=1)
    write_corpus(tmp_path / "eval.txt", 16, seed=2)
    ref = tmp_path / "ref"
    start = time.perf_counter()
    rp.main(_pretrain_argv(tmp_path, ref))
    return tmp_path, ref, time.perf_counter() - start


def test_pretraining_sigkill_during_checkpoint_save_then_resume(pretrain_setup):
    tmp_path, ref, _ = pretrain_setup
    out = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", KILL_IN_PRETRAIN_SAVE, *_pretrain_argv(tmp_path, out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    complete = list_checkpoints(out)
    partial = [p for p in out.iterdir() if p.name.startswith(".checkpoint-") and p.name.endswith(".tmp")]
    assert [p.name for p in complete] == ["checkpoint-4"] and len(partial) == 1
    assert not (out / "model.safetensors").exists()
    marker = tmp_path / "PWNED"  # the checkpoint's training_args.bin, if any code path loaded it
    evil_training_args(complete[0], marker)
    rp.main(_pretrain_argv(tmp_path, out))
    _same_pretraining(ref, out)
    assert not any(p.name.startswith(".") for p in out.iterdir()) and not marker.exists()


def test_pretraining_sigkill_at_a_random_moment_then_resume(pretrain_setup):
    tmp_path, ref, duration = pretrain_setup
    out = tmp_path / "random"
    proc = subprocess.Popen([sys.executable, "run_pretrain.py", *_pretrain_argv(tmp_path, out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # once training has started (the first checkpoint exists), kill within the run's duration
    deadline = time.time() + 120
    while not list_checkpoints(out) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(random.Random(4321).uniform(0.0, duration / 3))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before the kill: nothing would be resumed"
    rp.main(_pretrain_argv(tmp_path, out))
    _same_pretraining(ref, out)


def test_pretraining_same_seed_same_result(pretrain_setup):
    tmp_path, ref, _ = pretrain_setup
    again = tmp_path / "again"
    rp.main(_pretrain_argv(tmp_path, again))
    _same_pretraining(ref, again)
    assert io.read_json(ref / "all_results.json") == io.read_json(again / "all_results.json")


def test_pretraining_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    write_corpus(tmp_path / "train.txt", 32)
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as exc:
        rp.main(["--config_name", "tiny", "--train_data_file", str(tmp_path / "train.txt"), "--output_dir", str(out),
                 "--learning_rate", "1e30", "--save_steps", "1", "--max_steps", "10", "--per_gpu_train_batch_size", "8"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "loss became" in err and "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]  # the progress bar, then the error on its own line
    assert re.match(r"^\S+: error: loss became (nan|inf) at step \d+; stopped", lines[-1]), err
    kept = list_checkpoints(out)
    assert kept and f"last good checkpoint: {kept[-1]}" in err
    state = io.read_json(kept[-1] / "trainer_state.json")
    assert state["global_step"] == int(kept[-1].name.split("-")[1])
    assert torch.isfinite(load_file(kept[-1] / "model.safetensors")["bert.embeddings.word_embeddings.weight"]).all()
    assert not (out / "model.safetensors").exists()  # no final model from a diverged run


if os.name != "posix":  # SIGKILL semantics
    pytestmark = pytest.mark.skip("POSIX only")
