"""Small things every stage needs: the input-error type, the package logger, seeding, the device."""

from __future__ import annotations

import logging
import random

import numpy as np

log = logging.getLogger("m6abert")


class InputError(ValueError):
    """Bad user input: a file, record or flag the run cannot use.

    Commands turn it into one line on stderr and exit status 2, without a traceback.
    """


def resolve_device(no_cuda: bool = False):
    """The GPU if there is one and ``--no_cuda`` was not given, else the CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() and not no_cuda else "cpu")


def check_model_k(flag: str, k: int | None, model_k: int | None, where: str) -> None:
    """Refuse a k given on the command line (``flag``, e.g. ``--kmer 3``) that is not the model's.

    >>> check_model_k("--kmer 3", 3, 3, "the model in m")
    >>> check_model_k("--kmer 3", 3, 4, "the model in m")
    Traceback (most recent call last):
    m6abert.utils.InputError: --kmer 3 does not match the model in m (k=4)
    """
    if k is not None and model_k is not None and k != model_k:
        raise InputError(f"{flag} does not match {where} (k={model_k})")


def check_fp16(fp16: bool, device_type: str) -> None:
    """Refuse ``--fp16`` off CUDA (float16 autocast and its gradient scaler are CUDA's)."""
    if fp16 and device_type != "cuda":
        raise InputError("--fp16 needs a CUDA device; use --bf16 on CPU")


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices). Called from a command's ``main``."""
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:  # get_input.py does not need torch
        return
    torch.manual_seed(seed)


def shard_range(n: int, shard: int | None = None, num_shards: int | None = None, unit: int = 1) -> range:
    """The indices of shard ``shard`` of ``num_shards`` over ``n`` items: a contiguous block in whole units.

    The ``ceil(n / unit)`` units are split as evenly as possible (shard ``I`` gets units
    ``I * m // N`` up to ``(I + 1) * m // N``); shards in order cover ``range(n)`` exactly once.
    Without a shard, ``range(n)``.

    >>> [list(shard_range(7, i, 3)) for i in range(3)]
    [[0, 1], [2, 3], [4, 5, 6]]
    >>> [shard_range(10, i, 2, unit=4) for i in range(2)]
    [range(0, 4), range(4, 10)]
    """
    if shard is None:
        return range(n)
    check_shard(shard, num_shards)
    units = -(-n // unit)
    return range(min(n, shard * units // num_shards * unit), min(n, (shard + 1) * units // num_shards * unit))


def check_shard(shard: int | None, num_shards: int | None) -> None:
    """Both or neither of ``--shard I --num_shards N``, with ``N >= 1`` and ``0 <= I < N``."""
    if (shard is None) != (num_shards is None):
        raise InputError("give --shard and --num_shards together (--shard I --num_shards N, 0 <= I < N)")
    if shard is None:
        return
    if num_shards < 1:
        raise InputError(f"--num_shards must be at least 1, not {num_shards}")
    if not 0 <= shard < num_shards:
        raise InputError(f"--shard must be in 0..{num_shards - 1} (0-based, below --num_shards), not {shard}")
