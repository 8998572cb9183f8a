"""Progress of long work: a tqdm bar on a terminal, one log line every ``interval`` seconds elsewhere.

A batch job's log (SLURM's ``slurm-%j.out``) is a file, not a terminal: thousands of bar redraws
there are noise, and no bar at all says nothing about a job that runs for hours. So where stderr is
not a terminal, :func:`progress_bar` returns a :class:`LogProgress` that logs one INFO line
(``predict: 1200/40000 seq (3.0%), 41.2 seq/s, 15:41 left``) every ``interval`` seconds and one when
it closes. Commands set the interval (``--progress_interval``) and switch progress off (``--quiet``)
through :func:`configure`.
"""

from __future__ import annotations

import logging
import sys
import time

from tqdm.auto import tqdm

log = logging.getLogger("m6abert")
DEFAULT_INTERVAL = 60.0  # seconds between two progress lines in a log
_settings = {"interval": DEFAULT_INTERVAL, "enabled": True}


def configure(interval: float | None = None, enabled: bool | None = None) -> None:
    """Set the seconds between two progress lines in a log and whether progress is shown at all."""
    if interval is not None:
        _settings["interval"] = float(interval)
    if enabled is not None:
        _settings["enabled"] = bool(enabled)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class LogProgress:
    """A progress bar's interface (``update``, ``set_postfix``, ``close``, a context manager) that logs
    a line every ``interval`` seconds instead of redrawing a bar."""

    def __init__(self, total: int | None, desc: str, unit: str = "it", initial: int = 0,
                 interval: float = DEFAULT_INTERVAL):
        self.total, self.desc, self.unit, self.interval = total, desc, unit, interval
        self.n = self._start_n = self._logged_n = initial
        self._start = self._last = time.monotonic()
        self._postfix = ""
        self._closed = False

    def line(self) -> str:
        """The progress line as it is logged."""
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = (self.n - self._start_n) / elapsed
        done = f"{self.n}/{self.total}" if self.total else str(self.n)
        text = f"{self.desc}: {done} {self.unit}"
        if self.total:
            text += f" ({100.0 * self.n / self.total:.1f}%)"
        text += f", {rate:.3g} {self.unit}/s, {_clock(elapsed)} elapsed"
        if self.total and rate > 0 and self.n < self.total:
            text += f", {_clock((self.total - self.n) / rate)} left"
        return text + (f", {self._postfix}" if self._postfix else "")

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last, self._logged_n = now, self.n
            log.info(self.line())

    def set_postfix(self, **kwargs) -> None:
        self._postfix = ", ".join(f"{k}={v}" for k, v in kwargs.items())

    def close(self) -> None:
        if not self._closed and self.n > self._logged_n:  # the last line, unless it was just logged
            log.info(self.line())
        self._closed = True

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress_bar(total: int | None, desc: str, unit: str = "it", initial: int = 0, disable: bool = False,
                 leave: bool = True):
    """A tqdm bar when stderr is a terminal, a :class:`LogProgress` otherwise; a silent bar when
    ``disable`` is true or progress is switched off (``--quiet``)."""
    if disable or not _settings["enabled"]:
        return tqdm(total=total, disable=True)
    if sys.stderr.isatty():
        return tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=leave, dynamic_ncols=True)
    return LogProgress(total, desc, unit, initial, _settings["interval"])
