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
