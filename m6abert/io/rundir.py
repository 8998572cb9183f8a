"""Run folders: the ``checkpoint-{step}`` folders of an output directory, listed, rotated and cleared.

A run folder holds the checkpoints and results of one training run. These functions decide what
is in it and what may be removed; they never look inside a checkpoint (see ``checkpoints``).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from ..utils import InputError, log

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """``checkpoint-{step}`` folders of ``output_dir``, by step (complete ones only: saves are atomic)."""
    out = Path(output_dir)
    if not out.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in out.iterdir() if p.is_dir() and (m := CHECKPOINT_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def resume_point(out: Path, should_continue: bool, overwrite: bool, do_train: bool) -> Path | None:
    """The checkpoint to resume from, or None; refuse a non-empty output folder. No side effects.

    ``--should_continue`` without a complete checkpoint starts afresh (a re-submitted batch job
    that was killed before its first save); :func:`clear_run_dir` later removes that attempt's
    leftovers, once every input has been checked.
    """
    out = Path(out)
    ckpts = list_checkpoints(out)
    if should_continue and ckpts:
        return ckpts[-1]
    if do_train and out.is_dir() and any(out.iterdir()):
        if not (overwrite or should_continue):
            raise InputError(f"{out}: output directory exists and is not empty; use --overwrite_output_dir")
        if should_continue:
            log.warning("%s: --should_continue found no checkpoint; starting from the beginning", out)
    return None


def clear_run_dir(out: str | os.PathLike, fresh: bool, result_files: tuple[str, ...] = ()) -> None:
    """Remove what killed saves left behind (``.name.*.tmp`` / ``.old``); for a fresh run also the
    old ``checkpoint-*`` folders and ``result_files``."""
    out = Path(out)
    if not out.is_dir():
        return
    for p in out.iterdir():
        if p.name.startswith(".") and p.name.endswith((".tmp", ".old")):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    if fresh:
        for ckpt in list_checkpoints(out):
            shutil.rmtree(ckpt)
        for name in result_files:
            (out / name).unlink(missing_ok=True)


def rotate(output_dir: str | os.PathLike, limit: int | None, keep: str | None = None) -> None:
    """Delete the oldest checkpoints beyond ``limit``, never the newest (the one to resume from) nor
    the one named ``keep`` (the best); so with a best checkpoint to keep, at least 2 remain."""
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
