"""How glibc's malloc serves the process's large blocks: flat for streaming, retained for training.

Two opposite needs, each set once by a command before its work starts (``mallopt``; a no-op where
the C library is not glibc, and nothing is changed where the user sets malloc's thresholds: see
:func:`user_tuned`):

- a streamed prediction over a large FASTA wants memory that stays flat in the number of records:
  it retains freed memory within a chunk of records (as training does, below) and gives the free
  pages back after each chunk (:func:`release_free_memory`);
- a training loop allocates and frees the same multi-GB working set every step (activations,
  attention matrices, gradients): by default glibc serves each large block with a fresh ``mmap``
  and unmaps it when freed, so every step faults its whole working set in again (bert-base, batch
  8, 501 tokens, float32: about 2 million page faults, 9 GB, per step). :func:`retain_freed_memory`
  serves those blocks from the heap and keeps freed memory there for the next step: one step went
  from 17-18 s to 12.6 s in float32 and from 6.2 s to 5.0 s in bf16 (eager attention with dropout;
  benchmarks/results/train_step_profile.txt),
  with no page faults after the second step, at the price of a higher resident set (the heap keeps
  its high-water mark: 11.7 GB instead of 9.2 GB in that float32 case). Batches of changing widths
  still fault some pages in: torch allocates with 64-byte alignment, and glibc serves such a
  request from fresh pages when the freed block is a few bytes too small (a 256 MB block came back
  without faults every other time); a whole fine-tuning job (bert-base bf16, 10 steps) had 1.7-2.0
  million faults in all, where one step used to have about 2 million.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
RETAIN_MMAP_THRESHOLD = 1 << 30  # bytes: blocks below 1 GiB come from the heap while training
RETAIN_TRIM_THRESHOLD = (1 << 31) - 1  # bytes (mallopt takes an int): never give the heap's top back


def _mallopt():
    """glibc's ``mallopt``, or None (another C library, or one without it)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return None


TUNING_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")


def user_tuned() -> bool:
    """Whether the user sets malloc's thresholds through the environment (``MALLOC_MMAP_THRESHOLD_``
    and kin, or ``glibc.malloc.*`` in ``GLIBC_TUNABLES``); debugging variables such as
    ``MALLOC_CHECK_`` do not count."""
    return any(name in os.environ for name in TUNING_VARIABLES) or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "")


def retain_freed_memory() -> bool:
    """Serve a training loop's large blocks from the heap and keep what it frees there (see the module's text).

    Blocks up to 1 GiB come from the heap, and the heap's top is never trimmed, so the next step
    reuses the pages the previous one touched instead of faulting fresh ones in. Returns whether
    both settings were made.
    """
    mallopt = _mallopt()
    if mallopt is None or user_tuned():
        return False
    # the trim threshold only once the mmap threshold is taken: setting it alone would switch off
    # glibc's dynamic threshold and leave the fixed 128 KiB one, worse than the default for training
    return bool(mallopt(M_MMAP_THRESHOLD, RETAIN_MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD,
                                                                               RETAIN_TRIM_THRESHOLD))


def release_free_memory() -> bool:
    """Give the free pages of malloc's heaps back to the system (glibc's ``malloc_trim(0)``), keeping
    what is in use; a streamed prediction calls it after each chunk of records, so its resident set is
    the high-water mark of one chunk, not of the whole run. Returns whether memory was released."""
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return False
    return bool(trim(0))
