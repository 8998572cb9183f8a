"""Batch jobs on a cluster: preemption (stop signal, checkpoint, exact resume, DDP agreement), sharded
prediction and scores and their merge, the run record of devices, TensorBoard, the SLURM job scripts of
examples/hpc/ under a fake SLURM, and a two-"node" torchrun with a c10d rendezvous on 127.0.0.1.

The default run keeps one test of each feature (SIGTERM, the merge without variants, the attr merge,
the flag errors in-process, TensorBoard with a fake module, the multi-node job script, and what every
job script submits and runs, under a fake SLURM that only logs); the rest (SIGUSR1, DDP, variants, ISM,
real TensorBoard, the other two job scripts run to the end) are marked ``slow``."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from toy import planted_records, tiny_classifier, tiny_pretrained, write_fasta, write_split_dir

import run_finetune_degradation as ft
from m6abert import io

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
FT_ARGS = ["--max_seq_length", "64", "--per_gpu_train_batch_size", "8", "--per_gpu_eval_batch_size", "24",
           "--learning_rate", "1e-3", "--logging_steps", "2", "--save_steps", "50", "--evaluate_during_training",
           "--do_train", "--do_eval", "--max_steps", "18", "--seed", "3"]


def _ft_argv(base: Path, out: Path, *extra: str) -> list[str]:
    return [*FT_ARGS, "--model_name_or_path", str(base / "pre"), "--data_dir", str(base / "data"),
            "--output_dir", str(out), *extra]


def _same_result(a: Path, b: Path) -> None:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[n], wb[n]) for n in wa)
    assert (a / "eval_results.txt").read_bytes() == (b / "eval_results.txt").read_bytes()


def _run(cmd: list[str], env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """A command in a subprocess of one thread (a run's floats depend on the thread count)."""
    proc = subprocess.run(cmd, cwd=ROOT, env=env or ENV, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _finetune(*argv: str) -> subprocess.CompletedProcess:
    return _run([sys.executable, "run_finetune_degradation.py", *argv])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Data, a tiny pretrained model and an uninterrupted fine-tuning run (the reference)."""
    base = tmp_path_factory.mktemp("hpc")
    write_split_dir(base / "data", n=48)
    tiny_pretrained(base / "pre")
    _finetune(*_ft_argv(base, base / "ref"))
    return base


def _wait_for_step(proc: subprocess.Popen, step: int) -> None:
    """Read the run's stdout (a JSON record per logging step) until ``step`` has been logged."""
    for line in proc.stdout:
        if line.startswith("{") and json.loads(line).get("step", 0) >= step:
            return
    raise AssertionError("the run ended before its first logged step")


def _interrupt(cmd: list[str], sig: int, seed: int, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``cmd``, send ``sig`` at a seeded random moment (a random logged step 2..8, then a random
    fraction of a step), wait for it."""
    rng = random.Random(seed)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_step(proc, rng.choice([2, 4, 6, 8]))
        time.sleep(rng.uniform(0.0, 0.2))
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.mark.parametrize("sig", [signal.SIGTERM, pytest.param(signal.SIGUSR1, marks=pytest.mark.slow)])
def test_stop_signal_writes_a_checkpoint_and_resume_is_exact(trained, tmp_path, sig):
    out = tmp_path / "o"
    done = _interrupt([sys.executable, "run_finetune_degradation.py", *_ft_argv(trained, out)], sig, seed=int(sig))
    assert done.returncode == 143, done.stderr[-3000:]
    lines = [ln for ln in done.stderr.splitlines() if "resume with --should_continue" in ln]
    assert len(lines) == 1 and signal.Signals(sig).name in lines[0], done.stderr[-3000:]
    ckpts = io.list_checkpoints(out)
    state = json.loads((ckpts[-1] / "trainer_state.json").read_text())
    assert 2 <= state["global_step"] < 18 and f"checkpoint-{state['global_step']}" in lines[0]
    assert not (out / "model.safetensors").exists() and not (out / io.LOCK_NAME).exists()
    _finetune(*_ft_argv(trained, out, "--should_continue"))
    _same_result(trained / "ref", out)


def test_signal_outside_the_loop_still_releases_the_lock(tmp_path):
    """Before training starts (here: while waiting), SIGUSR1 ends a locked command with 128 + 10."""
    script = ("import sys, time\nfrom m6abert.preempt import held_run_dir\n"
              "with held_run_dir(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "o")], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    proc.send_signal(signal.SIGUSR1)
    assert proc.wait(timeout=60) == 128 + signal.SIGUSR1
    assert not (tmp_path / "o" / io.LOCK_NAME).exists()


def _children(pid: int) -> list[int]:
    kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(k) for k in kids]


def _rank_pid(launcher: int, rank: int, timeout: float = 120) -> int:
    """The pid of torchrun worker ``rank`` (its RANK in /proc/PID/environ)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for pid in _children(launcher):
            try:
                env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"RANK={rank}".encode() in env:
                return pid
        time.sleep(0.2)
    raise AssertionError(f"no worker of rank {rank}")


def _torchrun(port: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port), *args]


@pytest.mark.slow
def test_ddp_every_rank_stops_at_the_same_step(trained, tmp_path):
    """SIGUSR1 to rank 1 only: both ranks stop after the same step (all_reduce of the stop flag), rank 0
    writes the checkpoint, and the resumed DDP run ends as an uninterrupted one."""
    argv = ["run_finetune_degradation.py", *FT_ARGS, "--model_name_or_path", str(trained / "pre"),
            "--data_dir", str(trained / "data"), "--max_steps", "12"]
    ref, out = tmp_path / "ref", tmp_path / "o"
    proc = subprocess.run(_torchrun(29541, *argv, "--output_dir", str(ref)), cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = subprocess.Popen(_torchrun(29542, *argv, "--output_dir", str(out)), cwd=ROOT, env=ENV,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_step(run, 2)
        os.kill(_rank_pid(run.pid, 1), signal.SIGUSR1)
        _, err = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode != 0
    stops = [ln for ln in err.splitlines() if "resume with --should_continue" in ln]
    assert len(stops) == 1, err[-3000:]  # rank 0's line; rank 1 stopped at the same step without one
    assert "exitcode  : 143" in err or "exit code 143" in err
    step = json.loads((io.list_checkpoints(out)[-1] / "trainer_state.json").read_text())["global_step"]
    assert 2 <= step < 12 and f"after step {step} " in stops[0]
    proc = subprocess.run(_torchrun(29543, *argv, "--output_dir", str(out), "--should_continue"), cwd=ROOT,
                          env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _same_result(ref, out)
    assert json.loads((out / "all_results.json").read_text())["ddp_weights_identical"] is True


# ---------------------------------------------------------------------------- sharded prediction
PRED = ["--max_seq_length", "64", "--per_gpu_pred_batch_size", "4", "--chunk_records", "8"]


@pytest.fixture(scope="module")
def fasta_job(tmp_path_factory):
    """A tiny classifier, a FASTA of 43 records (6 chunks of 8) and a variants table over them."""
    base = tmp_path_factory.mktemp("shards")
    tiny_classifier(base / "model")
    pos, neg = planted_records(22, 21, length=61, seed=4)
    records = [r for pair in zip(pos, neg, strict=False) for r in pair] + pos[21:]
    write_fasta(base / "in.fa", records)
    rng = np.random.RandomState(0)
    lines = ["id\tpos\tref\talt"]
    for i in rng.permutation(len(records))[:30]:  # table order differs from the FASTA's
        r, p = records[i], int(rng.randint(1, 62))
        lines.append(f"{r.id}\t{p}\t{r.seq[p - 1]}\t{'A' if r.seq[p - 1] != 'A' else 'C'}")
    (base / "variants.tsv").write_text("\n".join(lines) + "\n")
    return base


def _pred_argv(base: Path, out: Path, *extra: str) -> list[str]:
    return ["--data_dir", str(base), "--output_dir", str(base / "model"), "--predict_fasta", str(base / "in.fa"),
            "--predict_dir", str(out), *PRED, *extra]


def _predict(base: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """In a subprocess of one thread, as the job scripts run it."""
    return _run([sys.executable, "run_predict_degradation.py", *_pred_argv(base, out, *extra)])


def _predict_here(base: Path, out: Path, *extra: str) -> None:
    """In this process (no interpreter start-up); compare only with runs made here."""
    import run_predict_degradation

    run_predict_degradation.main([*_pred_argv(base, out, *extra), "--no_cuda"])


def _refused(main, argv: list[str], prog: str, capsys, monkeypatch) -> str:
    """A command's ``main`` run here on bad input: exit status 2 and its one stderr line, returned."""
    monkeypatch.setattr(sys, "argv", [prog])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1, err
    return err[0]


def _merge_here(out: Path, dirs) -> None:
    import merge_shards

    merge_shards.main(["--output_dir", str(out), *map(str, dirs)])


@pytest.mark.parametrize("with_variants", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_merged_shards_equal_an_unsharded_run(fasta_job, tmp_path, with_variants):
    extra = ["--variants", str(fasta_job / "variants.tsv")] if with_variants else []
    names = ["pred_results.npy", "predictions.tsv"] + (["variant_effects.tsv"] if with_variants else [])
    _predict_here(fasta_job, tmp_path / "whole", *extra)
    for i in range(4):  # 6 chunks over 4 shards: blocks of 1, 2, 1, 2 chunks
        _predict_here(fasta_job, tmp_path / f"shard_{i}", *extra, "--shard", str(i), "--num_shards", "4")
    record = json.loads((tmp_path / "shard_1" / "shard.json").read_text())
    assert record["records"] == [8, 24] and record["n_records"] == 43
    # shards given out of order: the merge sorts them by their shard.json
    _merge_here(tmp_path / "merged", [tmp_path / f"shard_{i}" for i in (2, 0, 3, 1)])
    for name in names:
        assert (tmp_path / "merged" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    assert not (tmp_path / "merged" / "shard.json").exists()
    probs = np.load(tmp_path / "whole" / "pred_results.npy")
    assert probs.shape == (43,)


def test_shard_range_covers_every_item_once():
    from m6abert.utils import shard_range

    for n in (0, 1, 7, 100):
        for num in (1, 3, 8):
            for unit in (1, 4):
                parts = [list(shard_range(n, i, num, unit)) for i in range(num)]
                assert sum(parts, []) == list(range(n))
                assert all(p[0] % unit == 0 for p in parts if p)


@pytest.mark.parametrize("flags, message", [
    (["--shard", "3", "--num_shards", "3"], "--shard must be in 0..2 (0-based, below --num_shards), not 3"),
    (["--shard", "-1", "--num_shards", "2"], "--shard must be in 0..1 (0-based, below --num_shards), not -1"),
    (["--shard", "0", "--num_shards", "0"], "--num_shards must be at least 1, not 0"),
    (["--shard", "1"], "give --shard and --num_shards together (--shard I --num_shards N, 0 <= I < N)"),
    (["--num_shards", "2"], "give --shard and --num_shards together (--shard I --num_shards N, 0 <= I < N)"),
    (["--chunk_records", "0"], "--chunk_records must be at least 1, not 0"),
])
def test_bad_shard_flags_are_one_line_and_write_nothing(fasta_job, tmp_path, flags, message, capsys, monkeypatch):
    import run_predict_degradation

    out = tmp_path / "o"
    argv = ["--data_dir", str(fasta_job), "--output_dir", str(fasta_job / "model"), "--predict_fasta",
            str(fasta_job / "in.fa"), "--predict_dir", str(out), *flags]
    line = _refused(run_predict_degradation.main, argv, "run_predict_degradation.py", capsys, monkeypatch)
    assert line == f"run_predict_degradation.py: error: {message}"
    assert not out.exists()


def test_shard_needs_predict_fasta(fasta_job, capsys, monkeypatch):
    import run_predict_degradation

    argv = ["--data_dir", str(fasta_job), "--output_dir", str(fasta_job / "model"), "--shard", "0", "--num_shards", "2"]
    line = _refused(run_predict_degradation.main, argv, "run_predict_degradation.py", capsys, monkeypatch)
    assert line.endswith("--shard needs --predict_fasta (test.tsv is not sharded)")


def test_merge_refuses_a_missing_or_foreign_shard(fasta_job, tmp_path, capsys, monkeypatch):
    import merge_shards

    for i in range(2):
        _predict_here(fasta_job, tmp_path / f"s{i}", "--shard", str(i), "--num_shards", "2")
    _predict_here(fasta_job, tmp_path / "other", "--shard", "1", "--num_shards", "3")
    cases = [([tmp_path / "s0"], "1 shard folders for --num_shards 2: missing shard(s) [1]"),
             ([tmp_path / "s0", tmp_path / "s0"], "2 shard folders for --num_shards 2: shard(s) [0] given twice"),
             ([tmp_path / "s0", tmp_path / "other"], "a shard of another run than"),
             ([tmp_path / "s0", fasta_job], "no shard.json; not the output of run_predict_degradation.py --shard")]
    for dirs, message in cases:
        line = _refused(merge_shards.main, ["--output_dir", str(tmp_path / "m"), *map(str, dirs)], "merge_shards.py",
                        capsys, monkeypatch)
        assert message in line and not (tmp_path / "m").exists()


@pytest.fixture(scope="module")
def vis_job(tmp_path_factory):
    """A tiny classifier and a split folder whose test.tsv has 20 rows."""
    base = tmp_path_factory.mktemp("vis")
    tiny_classifier(base / "model")
    write_split_dir(base / "data", n=40)
    return base


VIS = {"attn": [], "attr": ["--n_steps", "4", "--n_baselines", "2", "--batch_size", "4"],
       "ism": ["--ism_window", "-8:8", "--site_index", "30", "--ism_batch_size", "64", "--plot_ids", "3,15"]}
VIS_OUTPUTS = {"attr": ["attributions_test.npy", "attributions_signed_test.npy", "attributions_test_qc.tsv",
                        "attributions_test.npy.json"],
               "ism": ["ism_test.npy", "ism_summary_test.npy", "ism_test.npy.json", "ism_summary_test.npy.json"]}


def _visualize(base: Path, out: Path, task: str, *extra: str) -> None:
    import visualize_all

    visualize_all.main(["--kmer", "3", "--model_path", str(base / "model"), "--data_dir", str(base / "data"),
                        "--data_name", "test", "--vis_task", task, "--max_seq_length", "64", "--output_dir",
                        str(out), *VIS[task], *extra])


def _same_scores(a: Path, b: Path, task: str) -> None:
    for name in VIS_OUTPUTS[task]:
        if name.endswith(".npy"):
            x, y = np.load(a / name), np.load(b / name)
            assert x.dtype == y.dtype and np.array_equal(x, y), name
        else:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.parametrize("task", ["attr", pytest.param("ism", marks=pytest.mark.slow)])
def test_merged_visualize_shards_equal_an_unsharded_run(vis_job, tmp_path, task):
    """visualize_all.py --shard I --num_shards 3, merged: the arrays, tables and .npy.json of an unsharded run."""
    _visualize(vis_job, tmp_path / "whole", task, "--no_plot")
    for i in (2, 0, 1):
        _visualize(vis_job, tmp_path / f"s{i}", task, "--shard", str(i), "--num_shards", "3",
                   *(["--no_plot"] if task == "attr" else []))
    meta = json.loads((tmp_path / "s1" / VIS_OUTPUTS[task][-1]).read_text())
    block = [6, 13] if task == "ism" else [4, 12]  # attr: in whole batches of 4 (5 batches over 3 shards)
    assert meta["shard"]["rows"] == block and meta["rows"] == block[1] - block[0] and meta["shard"]["n_rows"] == 20
    assert json.loads((tmp_path / "s1" / "visualize_args.json").read_text())["runtime"]["device"] == "cpu"
    if task == "ism":  # each map is drawn by the shard holding its row, named by the row
        assert [p.name for p in (tmp_path / "s0").glob("ism_test_map_*.png")] == ["ism_test_map_3.png"]
        assert [p.name for p in (tmp_path / "s2").glob("ism_test_map_*.png")] == ["ism_test_map_15.png"]
        assert np.load(tmp_path / "s1" / "ism_test.npy").shape[1] == np.load(tmp_path / "whole" / "ism_test.npy").shape[1]
    _merge_here(tmp_path / "m", [tmp_path / f"s{i}" for i in (1, 2, 0)])
    _same_scores(tmp_path / "whole", tmp_path / "m", task)


def test_merged_attr_shards_of_all_splits(vis_job, tmp_path):
    """--data_name all: the QC table's row numbers restart in each split, and the shards still merge into
    the unsharded run's arrays and table."""
    _visualize(vis_job, tmp_path / "whole", "attr", "--no_plot", "--data_name", "all", "--n_baselines", "1")
    for i in range(2):
        _visualize(vis_job, tmp_path / f"s{i}", "attr", "--no_plot", "--data_name", "all", "--n_baselines", "1",
                   "--shard", str(i), "--num_shards", "2")
    _merge_here(tmp_path / "m", [tmp_path / "s0", tmp_path / "s1"])
    for name in ("attributions_all.npy", "attributions_signed_all.npy"):
        assert np.array_equal(np.load(tmp_path / "m" / name), np.load(tmp_path / "whole" / name)), name
    qc = (tmp_path / "m" / "attributions_all_qc.tsv").read_bytes()
    assert qc == (tmp_path / "whole" / "attributions_all_qc.tsv").read_bytes() and qc.count(b"\n0\t") == 3


def test_merged_attn_shards_with_an_empty_one(vis_job, tmp_path):
    """6 shards over 5 batches: one shard has no rows (and draws no figures); the merge still equals the whole."""
    _visualize(vis_job, tmp_path / "whole", "attn", "--batch_size", "4", "--no_plot")
    for i in range(6):
        _visualize(vis_job, tmp_path / f"s{i}", "attn", "--batch_size", "4", "--shard", str(i), "--num_shards", "6")
    assert json.loads((tmp_path / "s0" / "atten_test.npy.json").read_text())["rows"] == 0
    assert not list((tmp_path / "s0").glob("*.png")) and list((tmp_path / "s1").glob("*.png"))
    _merge_here(tmp_path / "m", [tmp_path / f"s{i}" for i in range(6)])
    for name in ("atten_test.npy", "pred_results_test.npy"):
        assert np.array_equal(np.load(tmp_path / "m" / name), np.load(tmp_path / "whole" / name)), name
    assert (tmp_path / "m" / "atten_test.npy.json").read_bytes() == (tmp_path / "whole" / "atten_test.npy.json").read_bytes()


def test_merge_refuses_incomplete_visualize_shards(vis_job, tmp_path, capsys, monkeypatch):
    import merge_shards

    for i in (0, 1):
        _visualize(vis_job, tmp_path / f"s{i}", "attr", "--no_plot", "--shard", str(i), "--num_shards", "3")
    line = _refused(merge_shards.main, ["--output_dir", str(tmp_path / "m"), str(tmp_path / "s0"), str(tmp_path / "s1")],
                    "merge_shards.py", capsys, monkeypatch)
    assert line.endswith("2 shard folders for --num_shards 3: missing shard(s) [2]") and not (tmp_path / "m").exists()


# ---------------------------------------------------------------------------- run record, TensorBoard
class _FakeWriter:
    calls: list = []

    def __init__(self, log_dir):
        self.log_dir = log_dir

    def add_scalar(self, tag, value, step):
        _FakeWriter.calls.append((tag, value, step))

    def flush(self):
        pass

    def close(self):
        _FakeWriter.calls.append(("closed", None, None))


def test_logging_dir_writes_scalars_and_the_run_json_records_the_device(trained, tmp_path, monkeypatch):
    import types

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = _FakeWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    _FakeWriter.calls = []
    out = tmp_path / "o"
    ft.main(_ft_argv(trained, out, "--max_steps", "4", "--logging_dir", str(tmp_path / "runs")))
    tags = {t for t, _, _ in _FakeWriter.calls}
    assert {"train/loss", "train/learning_rate", "train/tokens_per_s", "eval/auc", "closed"} <= tags
    assert sorted({s for t, _, s in _FakeWriter.calls if t == "train/loss"}) == [2, 4]
    runtime = json.loads((out / "finetune_args.json").read_text())["runtime"]
    assert runtime["device"] == "cpu" and runtime["precision"] == "float32" and runtime["world_size"] == 1
    assert runtime["cuda_visible_devices"] == "" and os.environ["CUDA_VISIBLE_DEVICES"] == ""  # never set by us


def test_logging_dir_without_tensorboard_is_one_line(trained, tmp_path):
    script = ("import sys\nsys.modules['torch.utils.tensorboard'] = None\nimport run_finetune_degradation as ft\n"
              "ft.main(sys.argv[1:])\n")
    out = tmp_path / "o"
    proc = subprocess.run([sys.executable, "-c", script, *_ft_argv(trained, out, "--logging_dir", str(tmp_path / "r"))],
                          cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        "-c: error: --logging_dir needs the tensorboard package, which is not installed (pip install tensorboard)")
    assert not out.exists() and not (tmp_path / "r").exists()


@pytest.mark.slow
@pytest.mark.skipif(not __import__("importlib").util.find_spec("tensorboard"), reason="tensorboard not installed")
def test_logging_dir_with_real_tensorboard(trained, tmp_path):
    _finetune(*_ft_argv(trained, tmp_path / "o", "--max_steps", "2", "--logging_dir", str(tmp_path / "runs")))
    assert list((tmp_path / "runs").glob("events.out.tfevents.*"))


def test_predict_logs_and_records_the_device(fasta_job, tmp_path, caplog):
    with caplog.at_level("INFO", logger="m6abert"):
        _predict_here(fasta_job, tmp_path / "o")
    assert "device cpu, precision float32, world size 1" in caplog.text
    runtime = json.loads((tmp_path / "o" / "predict_args.json").read_text())["runtime"]
    assert runtime["device"] == "cpu" and runtime["world_size"] == 1


# ---------------------------------------------------------------------------- the SLURM job scripts
HPC = ROOT / "examples" / "hpc"
FAKE_SBATCH = r"""#!/bin/bash
# fake sbatch: logs its command line; runs the job (each array task in turn) at once, locally, unless
# FAKE_SBATCH_DRY is set; prints the job id. The job gets SLURM_CPUS_PER_TASK=${FAKE_CPUS_PER_TASK:-1}.
echo "sbatch $*" >> "$FAKE_SLURM/log"
parsable=0; array=""; args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --parsable) parsable=1 ;;
    --array=*) array="${1#--array=}" ;;
    --*) ;;
    *) args=("$@"); break ;;
  esac
  shift
done
n=$(( $(cat "$FAKE_SLURM/next_id" 2>/dev/null || echo 100) + 1 )); echo $n > "$FAKE_SLURM/next_id"
export SLURM_CPUS_PER_TASK=${FAKE_CPUS_PER_TASK:-1}
rc=0
if [ -n "${FAKE_SBATCH_DRY:-}" ]; then
  :
elif [ -n "$array" ]; then
  for ((i=${array%-*}; i<=${array#*-}; i++)); do
    SLURM_JOB_ID=$n SLURM_ARRAY_JOB_ID=$n SLURM_ARRAY_TASK_ID=$i bash "${args[@]}" >> "$FAKE_SLURM/job_${n}_$i.out" 2>&1 || rc=1
  done
else
  SLURM_JOB_ID=$n bash "${args[@]}" >> "$FAKE_SLURM/job_$n.out" 2>&1 || rc=1
fi
[ $parsable = 1 ] && echo $n || echo "Submitted batch job $n"
exit $rc
"""
FAKE_SRUN = r"""#!/bin/bash
# fake srun: logs the thread settings it got and its command line; runs the command once per node
# (SLURM_NNODES), in parallel, on this machine, unless FAKE_SRUN_DRY is set
echo "srun SRUN_CPUS_PER_TASK=${SRUN_CPUS_PER_TASK:-} OMP_NUM_THREADS=${OMP_NUM_THREADS:-} $*" >> "$FAKE_SLURM/log"
[ -n "${FAKE_SRUN_DRY:-}" ] && exit 0
while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done
pids=()
for ((node=0; node<${SLURM_NNODES:-1}; node++)); do SLURM_NODEID=$node "$@" & pids+=($!); done
rc=0; for p in "${pids[@]}"; do wait $p || rc=$?; done
exit $rc
"""
FAKE_SCONTROL = r"""#!/bin/bash
# fake scontrol: 'show hostnames' gives 127.0.0.1 per node; 'requeue' is recorded
case "$1 $2" in
  "show hostnames") for ((i=0; i<${SLURM_NNODES:-1}; i++)); do echo 127.0.0.1; done ;;
  *) echo "scontrol $*" >> "$FAKE_SLURM/log" ;;
esac
"""
# The job scripts' environment hook (ENV_SETUP): it logs that it was sourced and puts the running
# interpreter's console commands (m6abert-*, torchrun) on the PATH, which has none of them before.
ENV_SETUP = """echo env_setup >> "$FAKE_SLURM/log"
export PATH="{scripts}:$PATH"
"""
SITE = {"ACCOUNT": "acct", "PARTITION": "gpuq", "CPU_PARTITION": "cpuq", "GPU_REQUEST": "--gres=gpu:1"}


@pytest.fixture
def fake_slurm(tmp_path):
    """sbatch / srun / scontrol on a PATH without Python's commands, that run jobs locally, an
    ENV_SETUP hook that adds them, and the site settings of :data:`SITE`; returns (env, log folder)."""
    import sysconfig

    scripts = Path(sysconfig.get_path("scripts"))
    assert (scripts / "m6abert-finetune").exists(), f"m6abert is not installed in {scripts} (pip install -e .)"
    bin_dir, state = tmp_path / "bin", tmp_path / "slurm"
    bin_dir.mkdir()
    state.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("srun", FAKE_SRUN), ("scontrol", FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "env_setup.sh").write_text(ENV_SETUP.format(scripts=scripts))
    env = {**ENV, "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", "FAKE_SLURM": str(state), "REPO": str(ROOT),
           "ENV_SETUP": str(tmp_path / "env_setup.sh"), "CUDA_VISIBLE_DEVICES": "", **SITE}
    for name in ("PYTHONPATH", "VIRTUAL_ENV", "SLURM_JOB_ID", "SLURM_CPUS_PER_TASK", "ATTR_DATA", "VARIANTS"):
        env.pop(name, None)
    return env, state


def _bash(script: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(["bash", str(HPC / script), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    return proc


def _job_logs(state: Path) -> str:
    return "\n".join(f"== {p.name}\n{p.read_text()[-3000:]}" for p in sorted(state.glob("*.out")))


def _log(state: Path) -> list[str]:
    return (state / "log").read_text().splitlines() if (state / "log").exists() else []


@pytest.mark.parametrize("script, first, then", [("finetune_5fold.sbatch", "fold", "summary"),
                                                 ("predict_attr.sbatch", "shard", "merge")])
def test_array_on_the_gpu_partition_then_a_cpu_job(fake_slurm, script, first, then):
    """``bash SCRIPT`` sources ENV_SETUP, submits the array with ACCOUNT, PARTITION and GPU_REQUEST,
    and the job after it with ACCOUNT on CPU_PARTITION, asking for no GPU."""
    env, state = fake_slurm
    env.update(FAKE_SBATCH_DRY="1", N_FOLDS="2", N_SHARDS="2")
    proc = _bash(script, env)
    assert proc.returncode == 0, proc.stderr
    path = HPC / script
    assert _log(state) == [
        "env_setup",
        f"sbatch --parsable --account=acct --partition=gpuq --gres=gpu:1 --array=0-1 {path} {first}",
        f"sbatch --parsable --account=acct --partition=cpuq --dependency=afterok:101 --time=00:30:00 {path} {then}",
    ]


@pytest.mark.parametrize("script", ["finetune_5fold.sbatch", "predict_attr.sbatch", "pretrain_multinode.sbatch"])
def test_a_missing_env_setup_stops_before_submitting(fake_slurm, tmp_path, script):
    env, state = fake_slurm
    env.update(ENV_SETUP=str(tmp_path / "nowhere" / "activate"), FAKE_SBATCH_DRY="1")
    proc = _bash(script, env)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == f"{HPC / script}: cannot source ENV_SETUP={tmp_path}/nowhere/activate"
    assert _log(state) == []


def _srun_lines(state: Path) -> list[str]:
    return [line for line in _log(state) if line.startswith("srun ")]


@pytest.mark.parametrize("settings, variants_flags, attributions", [
    ({}, [], False),  # no VARIANTS, no ATTR_DATA: prediction only
    ({"VARIANTS": "/d/v.tsv"}, ["--variants", "/d/v.tsv"], False),  # 1-based positions: no flag
    ({"VARIANTS": "/d/v.tsv", "POS_RELATIVE_TO_SITE": "0"}, ["--variants", "/d/v.tsv"], False),
    ({"VARIANTS": "/d/v.tsv", "POS_RELATIVE_TO_SITE": "1"}, ["--variants", "/d/v.tsv", "--pos_relative_to_site"],
     False),
    ({"POS_RELATIVE_TO_SITE": "1"}, [], False),  # the switch is about VARIANTS: nothing without them
    ({"ATTR_DATA": "/d/split"}, [], True),
])
def test_predict_shard_flags(fake_slurm, settings, variants_flags, attributions):
    """One shard task under srun: ``--pos_relative_to_site`` only with VARIANTS and POS_RELATIVE_TO_SITE=1,
    attributions (m6abert-visualize) only with ATTR_DATA; srun gets the task's cores as SRUN_CPUS_PER_TASK
    and OMP_NUM_THREADS; ENV_SETUP is sourced first."""
    env, state = fake_slurm
    env.update(FAKE_SRUN_DRY="1", SLURM_CPUS_PER_TASK="3", SLURM_ARRAY_JOB_ID="9", SLURM_ARRAY_TASK_ID="1",
               N_SHARDS="2", FASTA="/d/in.fa", MODEL="/m", OUTPUT_PATH="/o", PRED_FLAGS="--chunk_records 8", **settings)
    proc = _bash("predict_attr.sbatch", env, "shard")
    assert proc.returncode == 0, proc.stderr
    assert _log(state)[0] == "env_setup"
    pred, *rest = _srun_lines(state)
    head = "srun SRUN_CPUS_PER_TASK=3 OMP_NUM_THREADS=3"
    assert pred == " ".join([head, "m6abert-predict --model_type dna --tokenizer_name dna3 --task_name dnaprom",
                             "--data_dir /d --output_dir /m --predict_fasta /d/in.fa", *variants_flags,
                             "--predict_dir /o/shard_1 --shard 1 --num_shards 2 --chunk_records 8"])
    assert [line.split()[3] for line in rest] == (["m6abert-visualize"] if attributions else [])
    if attributions:
        assert "--data_dir /d/split --data_name test --vis_task attr --output_dir /o/attr_shard_1" in rest[0]


def test_predict_refuses_a_bad_positions_switch(fake_slurm):
    env, state = fake_slurm
    env.update(FAKE_SBATCH_DRY="1", VARIANTS="/d/v.tsv", POS_RELATIVE_TO_SITE="yes")
    proc = _bash("predict_attr.sbatch", env)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"{HPC / 'predict_attr.sbatch'}: POS_RELATIVE_TO_SITE must be 0 or 1, not 'yes'"
    assert _log(state) == ["env_setup"]  # nothing submitted


@pytest.mark.parametrize("cpus, gpus, threads", [("16", "4", "4"), ("2", "4", "1"), ("6", "1", "6")])
def test_pretrain_threads_per_worker(fake_slurm, cpus, gpus, threads):
    """Inside the job, srun gets the task's cores (SRUN_CPUS_PER_TASK) and each of a node's
    GPUS_PER_NODE torchrun workers its share of them (OMP_NUM_THREADS, at least 1)."""
    env, state = fake_slurm
    env.update(FAKE_SRUN_DRY="1", SLURM_JOB_ID="5", SLURM_NNODES="2", SLURM_JOB_NODELIST="n[1-2]",
               SLURM_CPUS_PER_TASK=cpus, GPUS_PER_NODE=gpus, OUTPUT_PATH="/nonexistent/pre")
    proc = _bash("pretrain_multinode.sbatch", env)
    assert proc.returncode == 0, proc.stderr
    [srun] = _srun_lines(state)
    assert srun.startswith(f"srun SRUN_CPUS_PER_TASK={cpus} OMP_NUM_THREADS={threads} --kill-on-bad-exit=0 torchrun ")
    assert " --no-python m6abert-pretrain " in srun and _log(state)[0] == "env_setup"


@pytest.mark.slow
def test_finetune_5fold_script(trained, tmp_path, fake_slurm):
    env, state = fake_slurm
    for i in range(2):
        write_split_dir(tmp_path / "data" / f"fold_{i}", n=16, seed=i)
    env.update(KMER="3", N_FOLDS="2", DATA_PATH=str(tmp_path / "data"), MODEL_PATH=str(trained / "pre"),
               OUTPUT_PATH=str(tmp_path / "cv"),
               TRAIN_FLAGS="--max_seq_length 64 --per_gpu_train_batch_size 8 --max_steps 2 --logging_steps 1 "
                           "--save_steps 0 --evaluate_during_training --no_cuda")
    proc = _bash("finetune_5fold.sbatch", env)
    assert proc.returncode == 0, proc.stderr[-2000:] + _job_logs(state)
    cv = json.loads((tmp_path / "cv" / "cv_results.json").read_text())
    assert cv["n_folds"] == 2 and [f["fold"] for f in cv["folds"]] == [0, 1]
    assert (tmp_path / "cv" / "cv_results.md").exists()
    log = _log(state)
    assert log.count("env_setup") == 4  # the submission, each fold, the summary
    assert [line.split()[-1] for line in log if line.startswith("sbatch ")] == ["fold", "summary"]
    assert [line.split()[3] for line in _srun_lines(state)] == ["m6abert-finetune"] * 2


@pytest.mark.slow
def test_predict_attr_script(fasta_job, vis_job, tmp_path, fake_slurm):
    env, state = fake_slurm
    env.update(KMER="3", N_SHARDS="3", FASTA=str(fasta_job / "in.fa"), VARIANTS="", MODEL=str(fasta_job / "model"),
               OUTPUT_PATH=str(tmp_path / "p"), PRED_FLAGS=" ".join(PRED + ["--no_cuda"]),
               ATTR_DATA=str(vis_job / "data"), ATTR_SET="test",
               ATTR_FLAGS=" ".join(["--max_seq_length", "64", *VIS["attr"], "--no_cuda"]))
    proc = _bash("predict_attr.sbatch", env)
    assert proc.returncode == 0, proc.stderr[-2000:] + _job_logs(state)
    _predict(fasta_job, tmp_path / "whole")
    for name in ("pred_results.npy", "predictions.tsv"):
        assert (tmp_path / "p" / "merged" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    # the attributions, merged, as an unsharded run's (a subprocess of one thread, as the job's)
    _run([sys.executable, "visualize_all.py", "--kmer", "3", "--model_path", str(fasta_job / "model"), "--data_dir",
          str(vis_job / "data"), "--data_name", "test", "--vis_task", "attr", "--max_seq_length", "64",
          "--output_dir", str(tmp_path / "attr"), "--no_plot", "--no_cuda", *VIS["attr"]])
    _same_scores(tmp_path / "attr", tmp_path / "p" / "merged_attr", "attr")
    assert _log(state).count("env_setup") == 5  # the submission, each of 3 shards, the merge


def test_pretrain_multinode_script_two_local_nodes(tmp_path, fake_slurm):
    """``bash pretrain_multinode.sbatch`` submits the job with ACCOUNT and PARTITION; the job (ENV_SETUP
    sourced) runs the installed m6abert-pretrain under torchrun over 2 "nodes" x 1 process, c10d
    rendezvous on 127.0.0.1 (gloo), one thread each (the task's one core): both ranks end with identical weights."""
    from toy import write_corpus

    env, state = fake_slurm
    write_corpus(tmp_path / "train.txt", 32)
    write_corpus(tmp_path / "eval.txt", 8, seed=1)
    env.update(KMER="3", GPUS_PER_NODE="1", PORT="29551", SLURM_NNODES="2",
               SLURM_JOB_NODELIST="node[1-2]", TRAIN_FILE=str(tmp_path / "train.txt"),
               EVAL_FILE=str(tmp_path / "eval.txt"), OUTPUT_PATH=str(tmp_path / "pre"),
               TRAIN_FLAGS="--config_name tiny --per_gpu_train_batch_size 4 --max_steps 4 --logging_steps 2 "
                           "--save_steps 2 --evaluate_during_training --no_cuda")
    proc = _bash("pretrain_multinode.sbatch", env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + _job_logs(state)
    res = json.loads((tmp_path / "pre" / "all_results.json").read_text())
    assert res["world_size"] == 2 and res["ddp_weights_identical"] is True and res["global_step"] == 4
    log = _log(state)
    assert log[:3] == ["env_setup", f"sbatch --parsable --account=acct --partition=gpuq "
                                    f"{HPC / 'pretrain_multinode.sbatch'} train", "env_setup"]
    assert log[3].startswith("srun SRUN_CPUS_PER_TASK=1 OMP_NUM_THREADS=1 ") and len(log) == 4  # no requeue


@pytest.mark.gpu
def test_ddp_on_cuda_with_bf16(trained, tmp_path):
    """The same DDP fine-tuning on CUDA (nccl, one process per visible GPU, at most 2) under bf16 autocast:
    it finishes and every rank ends with the same weights. Skipped without a CUDA device."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    n = min(2, torch.cuda.device_count())
    out = tmp_path / "cuda"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(n), "--master_port", "29561",
           "run_finetune_degradation.py", *_ft_argv(trained, out, "--bf16")]
    _run(cmd, env={k: v for k, v in ENV.items() if k != "OMP_NUM_THREADS"})
    assert json.loads((out / "all_results.json").read_text())["ddp_weights_identical"] is True
    runtime = json.loads((out / "finetune_args.json").read_text())["runtime"]
    assert runtime["device"].startswith("cuda") and runtime["precision"] == "bfloat16"
