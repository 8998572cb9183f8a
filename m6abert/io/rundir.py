"""Run folders: the ``checkpoint-{step}`` folders of an output directory, listed, rotated and cleared,
and the lock that keeps two runs out of one folder.

A run folder holds the checkpoints and results of one training run. These functions decide what
is in it and what may be removed: only what this toolkit wrote. A checkpoint folder is the
toolkit's when it carries :data:`CHECKPOINT_MARKER` (written into every checkpoint the training
loop saves) or, for checkpoints of earlier versions, a ``trainer_state.json`` of the training
loop; a temporary or parked name is the toolkit's when :func:`~m6abert.io.files.is_leftover` says
so. Anything else (a user's own ``checkpoint-7/``, ``.notes.tmp``) is left alone.

:func:`lock_run_dir` holds :data:`LOCK_NAME` in the folder while a run writes there: created
atomically, holding the owner's pid, host and start time, removed when the run ends (also on an
error), taken over from a dead process of this host, and refused while its owner lives (or runs on
another host, where it cannot be checked).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from .. import __version__
from ..utils import InputError, log
from .files import is_leftover, make_dirs

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
CHECKPOINT_MARKER = "m6abert_checkpoint.json"  # in every checkpoint folder the training loop writes
LEGACY_STATE_KEYS = ("global_step", "epoch", "batch_in_epoch")  # trainer_state.json of the loop (no marker yet)
LOCK_NAME = ".m6abert.lock"
TAKEOVER_NAME = LOCK_NAME + ".takeover"  # held for a moment while a stale lock is replaced


# ---------------------------------------------------------------------------- checkpoints
def checkpoint_marker(step: int) -> dict:
    """The content of :data:`CHECKPOINT_MARKER` for the checkpoint of ``step``."""
    return {"m6abert_version": __version__, "step": int(step)}


def _json_object(path: Path) -> dict | None:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def is_toolkit_checkpoint(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is a checkpoint this toolkit wrote (its marker, or an earlier version's
    ``trainer_state.json`` of the training loop)."""
    folder = Path(folder)
    marker = _json_object(folder / CHECKPOINT_MARKER)
    if marker is not None and "m6abert_version" in marker:
        return True
    state = _json_object(folder / "trainer_state.json")
    return state is not None and all(key in state for key in LEGACY_STATE_KEYS)


def _numbered(out: Path) -> list[tuple[int, Path]]:
    if not out.is_dir():
        return []
    return sorted((int(m.group(1)), p) for p in out.iterdir() if p.is_dir() and (m := CHECKPOINT_RE.match(p.name)))


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """The toolkit's ``checkpoint-{step}`` folders of ``output_dir``, by step (complete ones only:
    saves are atomic). Folders of that name the toolkit did not write are not listed."""
    return [p for _, p in _numbered(Path(output_dir)) if is_toolkit_checkpoint(p)]


def foreign_checkpoints(output_dir: str | os.PathLike, last_step: int) -> None:
    """Refuse a ``checkpoint-{step}`` folder the toolkit did not write that a save of a run of
    ``last_step`` steps could replace (step <= last_step): it is never overwritten."""
    for step, p in _numbered(Path(output_dir)):
        if step <= last_step and not is_toolkit_checkpoint(p):
            raise InputError(f"{p}: a folder this toolkit did not write, which the checkpoint of step {step} would "
                             "replace; move it away or choose another --output_dir")


def has_outputs(out: str | os.PathLike) -> bool:
    """Whether the folder ``out`` holds anything but a run lock."""
    out = Path(out)
    return out.is_dir() and any(p.name not in (LOCK_NAME, TAKEOVER_NAME) for p in out.iterdir())


def resume_point(out: Path, should_continue: bool, overwrite: bool, do_train: bool) -> Path | None:
    """The checkpoint to resume from, or None; refuse a non-empty output folder. No side effects.

    ``--should_continue`` without a complete checkpoint starts afresh (a re-submitted batch job
    that was killed before its first save); :func:`clear_run_dir` later removes that attempt's
    leftovers, once every input has been checked. A run lock does not make the folder non-empty.
    """
    out = Path(out)
    ckpts = list_checkpoints(out)
    if should_continue and ckpts:
        return ckpts[-1]
    if do_train and has_outputs(out):
        if not (overwrite or should_continue):
            raise InputError(f"{out}: output directory exists and is not empty; use --overwrite_output_dir")
        if should_continue:
            log.warning("%s: --should_continue found no checkpoint; starting from the beginning", out)
    return None


def clear_run_dir(out: str | os.PathLike, fresh: bool, result_files: tuple[str, ...] = ()) -> None:
    """Remove what killed saves left behind (the toolkit's temporary and parked names); for a fresh
    run also its old ``checkpoint-*`` folders and ``result_files``. Anything else stays (logged)."""
    out = Path(out)
    if not out.is_dir():
        return
    for p in out.iterdir():
        if is_leftover(p.name):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    if fresh:
        for _, ckpt in _numbered(out):
            if is_toolkit_checkpoint(ckpt):
                shutil.rmtree(ckpt)
            else:
                log.warning("%s: not a checkpoint of m6abert (no %s): left as it is", ckpt, CHECKPOINT_MARKER)
        for name in result_files:
            (out / name).unlink(missing_ok=True)


def rotate(output_dir: str | os.PathLike, limit: int | None, keep: str | None = None) -> None:
    """Delete the oldest of the toolkit's checkpoints beyond ``limit``, never the newest (the one to
    resume from) nor the one named ``keep`` (the best); so with a best checkpoint to keep, at least 2
    remain. Checkpoint folders the toolkit did not write are neither counted nor deleted."""
    if not limit or limit <= 0:
        return
    ckpts = list_checkpoints(output_dir)
    excess = len(ckpts) - max(limit, 2 if keep else 1)
    for p in ckpts[:-1]:
        if excess <= 0:
            break
        if p.name != keep:
            shutil.rmtree(p, ignore_errors=True)
            excess -= 1


# ---------------------------------------------------------------------------- the lock
_HELD: set[str] = set()  # lock files this process holds


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # after the command name, which may hold spaces
    return fields[19] if len(fields) > 19 else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:
        return False
    return True


def _owner_record() -> dict:
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "since": datetime.now().astimezone().isoformat(timespec="seconds"),
            "boot_id": _boot_id(), "process_start": _process_start(pid), "m6abert_version": __version__}


def _read_owner(lock: Path) -> dict | None:
    """The lock's owner record; None if the lock is gone. A lock being written is waited for."""
    for _ in range(20):
        try:
            text = lock.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError:
            text = ""
        try:
            owner = json.loads(text)
            if isinstance(owner, dict) and _is_pid(owner.get("pid")):
                return owner
        except ValueError:
            pass
        time.sleep(0.05)
    return {"unreadable": text}


def _is_pid(pid: object) -> bool:
    """Whether ``pid`` can be a process id (a lock holding another number is unreadable: ``os.kill``
    would overflow on a huge one and signal a process group for 0 or a negative one)."""
    return isinstance(pid, int) and not isinstance(pid, bool) and 0 < pid < 2**31


def _is_stale(owner: dict, lock: Path) -> bool:
    """Whether the owner is a process of this host that is gone (a pid reused since does not count)."""
    pid = owner["pid"]
    if pid == os.getpid():
        return os.path.abspath(lock) not in _HELD  # a leftover of an earlier process with this pid (a container)
    if owner.get("boot_id") and _boot_id() and owner["boot_id"] != _boot_id():
        return True  # written before a reboot
    if not _alive(pid):
        return True
    start = owner.get("process_start")
    return bool(start) and _process_start(pid) not in (None, start)


def _refusal(out: Path, lock: Path, owner: dict, here: str) -> InputError:
    if "unreadable" in owner:
        return InputError(f"{out}: in use by another run (unreadable lock file); wait for it or remove {lock} "
                          "if no run is using the folder")
    who = f"pid {owner['pid']} on host {owner.get('host')}, since {owner.get('since')}"
    if owner.get("host") != here:
        return InputError(f"{out}: in use by a run on another host ({who}), which cannot be checked from "
                          f"{here}; wait for it or remove {lock} if it is dead")
    if owner["pid"] == os.getpid():
        return InputError(f"{out}: already in use by this process ({who})")
    return InputError(f"{out}: in use by another run ({who}); wait for it or remove {lock} if it is dead")


def _take_over(lock: Path, owner: dict) -> None:
    """Remove the stale lock of ``owner``, unless another process replaced it meanwhile."""
    guard = lock.with_name(TAKEOVER_NAME)
    try:
        os.close(os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:  # another run is taking over right now: try again
        with contextlib.suppress(OSError):
            if time.time() - guard.stat().st_mtime > 30:  # left by a process killed in this very instant
                guard.unlink()
        time.sleep(0.1)
        return
    try:
        if _read_owner(lock) == owner:
            lock.unlink(missing_ok=True)
            log.warning("%s: taking over the lock of pid %s on host %s (since %s), which is no longer running",
                        lock, owner["pid"], owner.get("host"), owner.get("since"))
    finally:
        guard.unlink(missing_ok=True)


def _create_lock(lock: Path) -> bool:
    """Create the lock file with this process's record; False if it exists."""
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    except OSError as err:
        raise InputError(f"{lock.parent}: cannot create the lock file {lock.name} ({err.strerror})") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(_owner_record(), fh)
    return True


def acquire_lock(out: str | os.PathLike) -> Path:
    """Take the lock of the folder ``out`` (which must exist); returns the lock file.

    Raises
    ------
    InputError
        The folder is in use by a live run of this host or by a run of another host.
    """
    out = Path(out)
    lock, here = out / LOCK_NAME, socket.gethostname()
    for _ in range(100):
        if _create_lock(lock):
            _HELD.add(os.path.abspath(lock))
            return lock
        owner = _read_owner(lock)
        if owner is None:  # released meanwhile
            continue
        if "unreadable" in owner or owner.get("host") != here or not _is_stale(owner, lock):
            raise _refusal(out, lock, owner, here)
        _take_over(lock, owner)
    raise InputError(f"{out}: could not take the lock {lock} (other runs keep replacing it)")


def check_unlocked(folder: str | os.PathLike) -> None:
    """Refuse to read a folder that a live run holds (its files may be half-written); a stale lock is ignored.

    Raises
    ------
    InputError
        The folder's lock belongs to a live run of this host, a run of another host, or is unreadable.
    """
    out = Path(folder)
    lock, here = out / LOCK_NAME, socket.gethostname()
    owner = _read_owner(lock)
    if owner is not None and ("unreadable" in owner or owner.get("host") != here or not _is_stale(owner, lock)):
        raise _refusal(out, lock, owner, here)


def release_lock(lock: str | os.PathLike) -> None:
    """Remove a lock taken by :func:`acquire_lock` (if it is still this process's)."""
    lock = Path(lock)
    _HELD.discard(os.path.abspath(lock))
    owner = _read_owner(lock)
    if owner is not None and owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
        lock.unlink(missing_ok=True)


def _missing_dirs(out: Path) -> list[Path]:
    """``out`` and its missing parents, deepest first."""
    missing = []
    for p in (out, *out.parents):
        if p.exists():
            break
        missing.append(p)
    return missing


@contextlib.contextmanager
def lock_run_dir(out: str | os.PathLike, enabled: bool = True) -> Iterator[Path | None]:
    """Hold the lock of the run folder ``out`` while the block runs (it is created if missing).

    The lock is released when the block ends, also on an error; a folder created only for the
    lock is removed again if it is still empty, so a run refused inside the block leaves no trace.
    ``enabled=False`` (the other ranks of a distributed run) does nothing.

    Yields
    ------
    Path or None
        The lock file (None when not enabled).
    """
    if not enabled:
        yield None
        return
    out = Path(out)
    created = _missing_dirs(out)
    try:
        make_dirs(out)
    except InputError:
        _remove_empty(created)
        raise
    try:
        lock = acquire_lock(out)
    except BaseException:
        _remove_empty(created)
        raise
    try:
        yield lock
    finally:
        release_lock(lock)
        _remove_empty(created)


def _remove_empty(folders: list[Path]) -> None:
    for p in folders:  # deepest first
        with contextlib.suppress(OSError):
            p.rmdir()
