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


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices). Called from a command's ``main``."""
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:  # get_input.py does not need torch
        return
    torch.manual_seed(seed)
