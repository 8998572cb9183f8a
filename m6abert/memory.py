"""How glibc's malloc serves the process's large blocks: flat for streaming, retained for training.

Two opposite needs, each set once by a command before its work starts (``mallopt``; a no-op where
the C library is not glibc, and nothing is changed where the user sets malloc's thresholds: see
:func:`user_tuned`):

- a streamed prediction over a large FASTA wants memory that stays flat in the number of records:
  :func:`fixed_mmap_threshold` keeps every large block in its own mapping, returned when freed;
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
MMAP_THRESHOLD = 128 * 1024  # bytes: glibc's initial threshold, kept fixed by fixed_mmap_threshold
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


def fixed_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Keep glibc's malloc from serving large blocks from its heap, so a long streamed run's memory stays flat.

    glibc raises its mmap threshold (up to 32 MiB) each time a large mmapped block is freed; the
    chunk-sized arrays and activations of the following chunks then come from the heap, which
    fragments and is not given back: peak RSS of ``--predict_fasta`` (tiny model, batch 64,
    chunks of 4096) went from 0.55 GB to 1.25 GB over the first chunks. A fixed threshold
    (``mallopt(M_MMAP_THRESHOLD)``, as ``MALLOC_MMAP_THRESHOLD_=131072``) keeps every block above it
    in its own mapping, returned when freed. Returns whether it was set.
    """
    mallopt = _mallopt()
    return bool(mallopt and not user_tuned() and mallopt(M_MMAP_THRESHOLD, int(threshold)))


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
