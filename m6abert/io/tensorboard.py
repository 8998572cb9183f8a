"""TensorBoard event files (``--logging_dir``): a ``torch.utils.tensorboard.SummaryWriter``, imported
only when a run asks for one (the ``tensorboard`` package is optional)."""

from __future__ import annotations

import math
import os

from ..utils import InputError


def summary_writer_class():
    """``SummaryWriter``; an ``InputError`` naming the flag when the tensorboard package is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise InputError("--logging_dir needs the tensorboard package, which is not installed "
                         "(pip install tensorboard)") from None
    return SummaryWriter


def summary_writer(logging_dir: str | os.PathLike):
    """A ``SummaryWriter`` writing event files into ``logging_dir`` (created if missing)."""
    try:
        return summary_writer_class()(log_dir=str(logging_dir))
    except OSError as err:
        raise InputError(f"{logging_dir}: cannot write TensorBoard logs ({err.strerror or err})") from None


def log_scalars(writer, scalars: dict, step: int, tokens_per_s: float | None = None) -> None:
    """Finite numbers of ``scalars`` as ``eval/NAME`` (keys ``eval_NAME``) or ``train/NAME``, and the
    throughput as ``train/tokens_per_s``; flushed, so a preempted run keeps them."""
    for key, value in scalars.items():
        if isinstance(value, int | float) and math.isfinite(value):
            writer.add_scalar(f"eval/{key[5:]}" if key.startswith("eval_") else f"train/{key}", value, step)
    if tokens_per_s is not None:
        writer.add_scalar("train/tokens_per_s", tokens_per_s, step)
    writer.flush()
