"""Run folders: one run at a time (the lock), only the toolkit's own files removed (the markers),
every fold checked before the first, and no setting that fails after an old run was cleared.

Error lines and the "nothing changed" snapshots of these refusals are in tests/test_errors_flags.py.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from toy import tiny_pretrained, write_corpus, write_split_dir

import run_pretrain as rp
from m6abert import __version__, io
from m6abert.cli import finetune as ft_cli
from m6abert.cli.common import run_guarded
from m6abert.utils import InputError

ROOT = Path(__file__).resolve().parents[1]
LOCK, MARKER = ".m6abert.lock", "m6abert_checkpoint.json"  # io.LOCK_NAME, io.CHECKPOINT_MARKER
FT = ["--model_type", "dna", "--task_name", "dnaprom", "--max_seq_length", "64", "--per_gpu_train_batch_size", "8",
      "--per_gpu_eval_batch_size", "16", "--learning_rate", "1e-3", "--logging_steps", "0", "--seed", "7"]


def finetune(tmp: Path, out: Path, *extra: str, data: Path | None = None) -> dict:
    model = tmp / "pre" if (tmp / "pre").exists() else tiny_pretrained(tmp / "pre")
    data = data or (tmp / "data" if (tmp / "data").exists() else write_split_dir(tmp / "data", n=16))
    return run_guarded(ft_cli.run, [*FT, "--model_name_or_path", str(model), "--do_train", "--data_dir", str(data),
                    "--output_dir", str(out), "--max_steps", "1", *extra])


def pretrain_argv(tmp: Path, out: Path, *extra: str) -> list[str]:
    corpus = tmp / "corpus.txt" if (tmp / "corpus.txt").exists() else write_corpus(tmp / "corpus.txt", 8)
    return ["--config_name", "tiny", "--train_data_file", str(corpus), "--output_dir", str(out),
            "--per_gpu_train_batch_size", "4", "--max_steps", "1", "--save_steps", "0", "--logging_steps", "0", *extra]


@pytest.fixture
def sleeper():
    """A live process of this host that is not this one (its pid goes into lock files)."""
    proc = subprocess.Popen(["sleep", "120"])
    yield proc
    proc.kill()
    proc.wait()


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def write_lock(folder: Path, pid: int, host: str | None = None, **extra) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK
    lock.write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(), "since": "2024-05-01T10:00:00",
                                **extra}))
    return lock


def files(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


# ---------------------------------------------------------------------------- the lock
def test_lock_holds_owner_and_is_released(tmp_path):
    out = tmp_path / "a" / "b"
    with io.lock_run_dir(out) as lock:
        owner = json.loads(lock.read_text())
        assert lock == out / ".m6abert.lock"
        assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname() and owner["since"]
        with pytest.raises(InputError, match="already in use by this process"):
            io.acquire_lock(out)
        assert not io.has_outputs(out)  # the lock alone does not make the folder non-empty
    assert not (tmp_path / "a").exists()  # folders made only for the lock are removed again


def test_lock_is_released_on_an_error(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    with pytest.raises(RuntimeError), io.lock_run_dir(out):
        assert (out / LOCK).exists()
        raise RuntimeError("the run failed")
    assert out.is_dir() and list(out.iterdir()) == []


def test_live_lock_refuses_and_is_left_alone(tmp_path, sleeper):
    lock = write_lock(tmp_path, sleeper.pid)
    before = lock.read_bytes()
    with pytest.raises(InputError) as err:
        io.acquire_lock(tmp_path)
    assert str(err.value) == (f"{tmp_path}: in use by another run (pid {sleeper.pid} on host {socket.gethostname()}, "
                              f"since 2024-05-01T10:00:00); wait for it or remove {lock} if it is dead")
    assert lock.read_bytes() == before


def test_lock_of_another_host_is_refused(tmp_path):
    write_lock(tmp_path, dead_pid(), host="elsewhere.example")  # the pid means nothing here
    with pytest.raises(InputError, match="in use by a run on another host .* cannot be checked from"):
        io.acquire_lock(tmp_path)


@pytest.mark.parametrize("how", ["dead pid", "pid reused", "rebooted", "own pid, earlier process"])
def test_stale_lock_is_taken_over(tmp_path, sleeper, how, caplog):
    if how == "dead pid":
        write_lock(tmp_path, dead_pid())
    elif how == "pid reused":  # the pid lives, but started at another time than the lock's owner
        write_lock(tmp_path, sleeper.pid, process_start="1")
    elif how == "rebooted":
        write_lock(tmp_path, sleeper.pid, boot_id="an-earlier-boot")
    else:  # e.g. a container restarted with the same pid
        write_lock(tmp_path, os.getpid())
    if how in ("pid reused", "rebooted") and not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc")
    with caplog.at_level(logging.WARNING, logger="m6abert"):
        lock = io.acquire_lock(tmp_path)
    assert json.loads(lock.read_text())["pid"] == os.getpid() and "taking over the lock" in caplog.text
    io.release_lock(lock)
    assert not lock.exists()


def test_a_live_run_refuses_a_second_run(tmp_path, sleeper, capsys):
    out = tmp_path / "o"
    finetune(tmp_path, out, "--save_steps", "1")
    before = files(out)
    lock = write_lock(out, sleeper.pid)
    with pytest.raises(SystemExit) as exc:
        finetune(tmp_path, out, "--overwrite_output_dir")
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"in use by another run (pid {sleeper.pid} on host" in err
    lock.unlink()
    assert files(out) == before


def test_stale_lock_of_a_killed_run_does_not_block(tmp_path, caplog):
    out = tmp_path / "o"
    write_lock(out, dead_pid())  # all a killed run left; the folder counts as empty
    with caplog.at_level(logging.WARNING, logger="m6abert"):
        finetune(tmp_path, out)
    assert "taking over the lock" in caplog.text
    assert (out / "model.safetensors").exists() and not (out / LOCK).exists()


@pytest.mark.parametrize("diverges", [False, True])
def test_lock_held_during_the_run_and_released_after(tmp_path, monkeypatch, capsys, diverges):
    """The lock is held while the run trains and gone after it, also when the loss becomes NaN."""
    import m6abert.commands.finetune as lib

    seen = []
    real = lib.fine_tune

    def spy(model, k, train_data, dev_data, train_args, output_dir, *args, **kwargs):
        seen.append(json.loads((Path(output_dir) / LOCK).read_text())["pid"])
        return real(model, k, train_data, dev_data, train_args, output_dir, *args, **kwargs)

    monkeypatch.setattr(lib, "fine_tune", spy)
    out = tmp_path / "o"
    if diverges:
        with pytest.raises(SystemExit) as exc:
            finetune(tmp_path, out, "--learning_rate", "1e30", "--max_steps", "10", "--save_steps", "1")
        assert exc.value.code == 2 and "loss became" in capsys.readouterr().err
    else:
        finetune(tmp_path, out)
    assert seen == [os.getpid()] and not (out / LOCK).exists()


def test_pretraining_holds_the_lock(tmp_path, monkeypatch):
    import m6abert.commands.pretrain as lib

    seen = []
    real = lib.pretrain

    def spy(model, k, corpus, train_args, output_dir, *args, **kwargs):
        seen.append((Path(output_dir) / LOCK).exists())
        return real(model, k, corpus, train_args, output_dir, *args, **kwargs)

    monkeypatch.setattr(lib, "pretrain", spy)
    rp.main(pretrain_argv(tmp_path, tmp_path / "p"))
    assert seen == [True] and (tmp_path / "p" / "model.safetensors").exists()
    assert not (tmp_path / "p" / LOCK).exists()


def test_two_processes_one_folder(tmp_path):
    """A second run into the folder of a running one is refused; SIGTERM stops the first and frees it."""
    write_corpus(tmp_path / "corpus.txt", 64)
    out, log_file = tmp_path / "o", open(tmp_path / "first.log", "w")
    first = subprocess.Popen([sys.executable, "run_pretrain.py", *pretrain_argv(
        tmp_path, out, "--max_steps", "100000", "--save_steps", "50")], cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=log_file)
    try:
        deadline = time.time() + 120
        while not io.list_checkpoints(out) and first.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert first.poll() is None, (tmp_path / "first.log").read_text()[-2000:]
        second = subprocess.run([sys.executable, "run_pretrain.py", *pretrain_argv(tmp_path, out, "--overwrite_output_dir")],
                                cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2, second.stderr[-2000:]
        assert f"in use by another run (pid {first.pid} on host" in second.stderr.splitlines()[-1]
        assert io.list_checkpoints(out), "the second run deleted the first's checkpoints"
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=120)
        log_file.close()
    assert first.returncode != 0 and not (out / LOCK).exists()  # released on SIGTERM


DDP_SCRIPT = """
import json, os, sys, torch.distributed as td
from pathlib import Path
from m6abert.train import locked_run_dir, setup_distributed
from m6abert.utils import InputError
out, busy = Path(sys.argv[1]), Path(sys.argv[2])
dist = setup_distributed()
report = {"rank": dist.rank}
with locked_run_dir(out, dist):
    td.barrier()
    report["owner"] = json.loads((out / ".m6abert.lock").read_text())["pid"]
    report["pid"] = os.getpid()
    td.barrier()
try:
    with locked_run_dir(busy, dist):
        report["busy"] = "entered"
except InputError as err:
    report["busy"] = str(err)
(out.parent / f"report_{dist.rank}.json").write_text(json.dumps(report))
td.destroy_process_group()
"""


def test_ddp_only_rank_0_locks(tmp_path, sleeper):
    """Under torchrun rank 0 holds the lock and the other rank is not refused by it; a busy folder
    stops every rank with the same error (none is left waiting)."""
    script = tmp_path / "ddp_lock.py"
    script.write_text(DDP_SCRIPT)
    busy = tmp_path / "busy"
    write_lock(busy, sleeper.pid)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(tmp_path / "o"), str(busy)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # one file per rank: two ranks' lines on a shared stdout pipe can interleave
    reports = [json.loads((tmp_path / f"report_{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["rank"] for r in reports] == [0, 1]
    assert reports[0]["owner"] == reports[1]["owner"] == reports[0]["pid"] != reports[1]["pid"]
    assert reports[0]["busy"] == reports[1]["busy"] and "in use by another run" in reports[0]["busy"]
    assert not (tmp_path / "o" / LOCK).exists() and (busy / LOCK).exists()


# ---------------------------------------------------------------------------- markers
def test_checkpoints_carry_the_marker(tmp_path):
    finetune(tmp_path, tmp_path / "o", "--save_steps", "1")
    marker = json.loads((tmp_path / "o" / "checkpoint-1" / MARKER).read_text())
    assert marker == {"m6abert_version": __version__, "step": 1}
    assert (io.CHECKPOINT_MARKER, io.LOCK_NAME) == (MARKER, LOCK)


def test_overwrite_removes_only_the_toolkits_own(tmp_path, caplog):
    out = tmp_path / "o"
    finetune(tmp_path, out, "--save_steps", "1")  # a previous run with its checkpoint-1
    mine = {"checkpoint-7/notes.txt": "a user's folder", ".notes.tmp": "a user's file",
            ".checkpoint-3.abc.tmp/x": "untagged: not the toolkit's"}
    for name, text in mine.items():
        io.write_text(out / name, text)
    theirs = [".checkpoint-2.m6abert-k2j4.tmp", ".eval_results.txt.m6abert-a1b2.tmp", ".checkpoint-1.m6abert.old"]
    for name in theirs:
        (out / name).mkdir() if "checkpoint" in name else (out / name).write_text("leftover")
    with caplog.at_level(logging.WARNING, logger="m6abert"):
        finetune(tmp_path, out, "--overwrite_output_dir", "--save_steps", "0")
    assert all((out / name).read_text() == text for name, text in mine.items())
    assert not any((out / name).exists() for name in theirs) and not (out / "checkpoint-1").exists()
    assert f"{out / 'checkpoint-7'}: not a checkpoint of m6abert" in caplog.text


def test_should_continue_resumes_only_from_the_toolkits_checkpoints(tmp_path):
    out = tmp_path / "o"
    finetune(tmp_path, out, "--save_steps", "1")
    io.write_json(out / "checkpoint-9" / "trainer_state.json", {"global_step": 9, "log_history": []})  # not ours
    assert io.list_checkpoints(out) == [out / "checkpoint-1"]
    assert io.resume_point(out, True, False, True) == out / "checkpoint-1"
    res = finetune(tmp_path, out, "--should_continue", "--max_steps", "2", "--save_steps", "1")
    assert res["global_step"] == 2 and (out / "checkpoint-9" / "trainer_state.json").exists()


def test_rotation_counts_and_deletes_only_marked_checkpoints(tmp_path):
    for step in (2, 4, 6):
        io.write_json(tmp_path / f"checkpoint-{step}" / MARKER, {"m6abert_version": __version__, "step": step})
    io.write_json(tmp_path / "checkpoint-5" / "trainer_state.json",  # an earlier version's checkpoint: ours
                  {"global_step": 5, "epoch": 0, "batch_in_epoch": 5})
    io.write_text(tmp_path / "checkpoint-3" / "notes.txt", "a user's")
    io.write_text(tmp_path / "checkpoint-8" / MARKER, "{not json")  # not a marker
    io.rotate(tmp_path, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-3", "checkpoint-6", "checkpoint-8"]


# ---------------------------------------------------------------------------- checked before the first write
def test_cv_checks_every_fold_before_the_first(tmp_path, capsys):
    data = tmp_path / "data"
    for i in range(2):
        write_split_dir(data / f"fold_{i}", n=16, seed=i)
    lines = (data / "fold_1" / "train.tsv").read_text().splitlines()
    lines[3] = lines[3].replace("\t1", "\tyes").replace("\t0", "\tyes")
    (data / "fold_1" / "train.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(SystemExit) as exc:
        finetune(tmp_path, tmp_path / "cv", "--n_folds", "2", "--do_eval", data=data)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "fold_1/train.tsv: row 3: label 'yes' is not 0 or 1" in err
    assert not (tmp_path / "cv").exists()


def test_cv_locks_the_top_folder(tmp_path, monkeypatch):
    import m6abert.commands.crossval as lib

    data = tmp_path / "data"
    for i in range(2):
        write_split_dir(data / f"fold_{i}", n=16, seed=i)
    seen = []
    real = lib.run_finetune

    def spy(s, dist=None):
        seen.append((Path(s.output_dir).parent / LOCK).exists())
        return real(s, dist)

    monkeypatch.setattr(lib, "run_finetune", spy)
    finetune(tmp_path, tmp_path / "cv", "--n_folds", "2", "--do_eval", data=data)
    assert seen == [True, True] and (tmp_path / "cv" / "cv_results.json").exists()
    assert not list((tmp_path / "cv").rglob(LOCK))


@pytest.mark.parametrize("bad", [dict(learning_rate=math.nan), dict(adam_epsilon=-1.0), dict(beta1=1.5),
                                 dict(max_grad_norm=-1.0), dict(num_train_epochs=math.inf)])
def test_library_settings_fail_before_the_old_run_is_cleared(tmp_path, bad):
    """Without the command's checks (a library call), AdamW's and the loop's refusals still come
    before anything is deleted."""
    from m6abert.commands.finetune import run_finetune
    from m6abert.commands.pretrain import PretrainSettings, run_pretrain
    from m6abert.finetune import FinetuneSettings
    from m6abert.train import TrainArgs

    out = tmp_path / "o"
    finetune(tmp_path, out, "--save_steps", "1")
    before = files(out)
    steps = {} if "num_train_epochs" in bad else {"max_steps": 1}
    ft_settings = FinetuneSettings(data_dir=str(tmp_path / "data"), output_dir=str(out), do_train=True,
                                   model_name_or_path=str(tmp_path / "pre"), max_seq_length=64,
                                   overwrite_output_dir=True, train=TrainArgs(**steps, **bad))
    pt_settings = PretrainSettings(output_dir=str(out), train_data_file=str(write_corpus(tmp_path / "c.txt", 8)),
                                   config_name="tiny", do_train=True, overwrite_output_dir=True,
                                   train=TrainArgs(per_gpu_train_batch_size=4, **steps, **bad))
    for run, settings in ((run_finetune, ft_settings), (run_pretrain, pt_settings)):
        with pytest.raises(InputError):
            run(settings)
        assert files(out) == before


def test_overwrite_removes_the_earlier_runs_model_and_predictions_first(tmp_path, monkeypatch):
    """A fresh run clears the old final model and predictions before training: a run that then stops
    (here: fails) never leaves them beside its own finetune_args.json."""
    import m6abert.commands.finetune

    out = tmp_path / "o"
    finetune(tmp_path, out, "--do_predict", "--save_steps", "0")
    assert (out / "model.safetensors").exists() and (out / "pred_results.npy").exists()

    def stops(*args, **kwargs):
        raise KeyboardInterrupt  # a run stopped after the clear

    monkeypatch.setattr(m6abert.commands.finetune, "fine_tune", stops)
    with pytest.raises(KeyboardInterrupt):
        finetune(tmp_path, out, "--overwrite_output_dir", "--seed", "9")
    left = sorted(p.name for p in out.iterdir())
    assert left == ["finetune_args.json", "run_settings.json"], left  # the new run's own records only
    assert json.loads((out / "finetune_args.json").read_text())["seed"] == 9
    assert json.loads((out / "run_settings.json").read_text())["seed"] == 9


def test_a_users_checkpoint_folder_is_never_replaced(tmp_path, capsys):
    out = tmp_path / "o"
    io.write_text(out / "checkpoint-1" / "notes.txt", "mine\n")
    with pytest.raises(SystemExit) as exc:
        finetune(tmp_path, out, "--overwrite_output_dir", "--save_steps", "1")
    assert exc.value.code == 2 and "checkpoint-1: a folder this toolkit did not write" in capsys.readouterr().err
    assert (out / "checkpoint-1" / "notes.txt").read_text() == "mine\n"
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-1"]
