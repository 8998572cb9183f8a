"""Small things every stage needs: the input-error type, the CLI error guard, seeding, logging."""

from __future__ import annotations

import functools
import logging
import os
import random
import sys
from collections.abc import Callable

import numpy as np

log = logging.getLogger("m6abert")


class InputError(ValueError):
    """Bad user input: a file, record or flag the run cannot use.

    Scripts turn it into one line on stderr and exit status 2, without a traceback.
    """


def cli(func: Callable[..., object]) -> Callable[..., object]:
    """Decorate a script's ``main``: an ``InputError`` ends the process with one line, status 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        logging.basicConfig(
            format="%(asctime)s - %(levelname)s - %(name)s -   %(message)s",
            datefmt="%m/%d/%Y %H:%M:%S",
            level=logging.INFO,
        )
        try:
            return func(*args, **kwargs)
        except InputError as err:
            prog = os.path.basename(sys.argv[0]) or "m6abert"
            msg = " ".join(str(err).split())  # exactly one line
            print(f"{prog}: error: {msg}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper


def resolve_device(no_cuda: bool = False):
    """The GPU if there is one and ``--no_cuda`` was not given, else the CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() and not no_cuda else "cpu")


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices). Called once, from a script's ``main``."""
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:  # get_input.py does not need torch
        return
    torch.manual_seed(seed)
