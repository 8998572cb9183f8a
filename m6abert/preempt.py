"""Preemption: a batch system's stop signal ends training at a step boundary with a checkpoint.

Schedulers send SIGTERM before they kill a job (SLURM: ``--signal=TERM@120``, or at the time
limit), and SLURM can send SIGUSR1 ahead of time. While :func:`m6abert.train.train` runs, both only
set a flag (:class:`StopSignals`): the loop finishes the current optimisation step, agrees with
every rank (an all_reduce of the flag after each step, so all ranks stop at the same step), writes
a complete checkpoint through the ordinary, atomic checkpoint save, logs one line and raises
:class:`Preempted`. The commands end with :data:`EXIT_PREEMPTED` (143, as a process ended by
SIGTERM) and ``--should_continue`` resumes exactly from that checkpoint.

Outside the loop the handlers that were there before are in force: while a command holds its run
folder (:func:`held_run_dir`: the folder's lock, :func:`m6abert.io.lock_run_dir`), SIGTERM and SIGUSR1
end the process through ``SystemExit`` (:func:`signals_exit`), so the lock is released. A signal that arrives while the loop runs but that the loop did not act on (the
run was ending anyway) is delivered again to those handlers when the loop ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from . import io

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
EXIT_PREEMPTED = 128 + signal.SIGTERM  # 143: what a job script requeues on (documented in cli/common.py)


class Preempted(Exception):
    """Training stopped on a stop signal after writing a checkpoint to resume from.

    Attributes
    ----------
    signum: int
        The signal received (by any rank).
    step: int
        The optimisation steps done; ``checkpoint`` holds exactly this point.
    checkpoint: str
        The checkpoint folder written.
    """

    def __init__(self, signum: int, step: int, checkpoint: str):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        super().__init__(f"stopped by {signal_name(signum)} after step {step}; checkpoint {checkpoint} written, "
                         "resume with --should_continue")


def signal_name(signum: int) -> str:
    """``"SIGTERM"`` for 15 (the number itself if it names no signal).

    >>> signal_name(15), signal_name(10)
    ('SIGTERM', 'SIGUSR1')
    """
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


class StopSignals:
    """While entered, SIGTERM and SIGUSR1 set :attr:`signum` instead of ending the process.

    Only the main thread can install handlers; elsewhere (a library user's worker thread) nothing
    is installed and :attr:`signum` stays 0. On exit the earlier handlers are restored, and a
    signal that was caught but not :meth:`consume`\\ d is raised again for them.
    """

    def __init__(self) -> None:
        self.signum = 0
        self._consumed = False
        self._previous: dict[int, object] = {}

    def _catch(self, signum: int, frame: FrameType | None) -> None:
        self.signum = self.signum or signum  # no logging here: a handler may run inside a logging call

    def consume(self) -> int:
        """The signal caught (0 if none), now handled by the caller: it is not raised again."""
        self._consumed = True
        return self.signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.getsignal(sig)
                signal.signal(sig, self._catch)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        if self.signum and not self._consumed and exc[0] is None:
            signal.raise_signal(self.signum)  # to the handler in force outside the loop


@contextlib.contextmanager
def signals_exit() -> Iterator[None]:
    """While the block runs, SIGTERM or SIGUSR1 (a batch system's stop) ends the process through
    ``SystemExit(128 + signal)``, so that ``finally`` blocks (a run folder's lock) run; only for a signal
    that still has its default action, and only in the main thread. The training loop defers both to
    the end of its current step (:class:`StopSignals`) and restores these handlers afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    installed = [sig for sig in STOP_SIGNALS if signal.getsignal(sig) == signal.SIG_DFL]
    for sig in installed:
        signal.signal(sig, stop)
    try:
        yield
    finally:
        for sig in installed:
            signal.signal(sig, signal.SIG_DFL)


@contextlib.contextmanager
def held_run_dir(out: str | os.PathLike, enabled: bool = True) -> Iterator[Path | None]:
    """A command's hold on its output folder: the folder's lock (:func:`m6abert.io.lock_run_dir`; a folder
    made only for it removed again if the run is refused) and, while held, a stop signal ends the process
    through ``SystemExit`` so the lock is released. ``enabled=False`` (the other ranks of a distributed
    run) does nothing."""
    with io.lock_run_dir(out, enabled) as lock:
        if lock is None:
            yield None
            return
        with signals_exit():
            yield lock
