"""Generic files: atomic writers, text, JSON, NumPy arrays, tables and figures."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..utils import InputError

# ---------------------------------------------------------------------------- atomic writing
TMP_TAG = "m6abert"  # in every temporary name, so only the toolkit's own leftovers are ever removed


def temp_prefix(name: str) -> str:
    """The prefix of the temporary names of ``name``: ``.{name}.m6abert-`` (then random, ``.tmp``)."""
    return f".{name}.{TMP_TAG}-"


def old_name(name: str) -> str:
    """Where :func:`atomic_dir` parks the folder it replaces: ``.{name}.m6abert.old``."""
    return f".{name}.{TMP_TAG}.old"


def is_leftover(name: str) -> bool:
    """Whether ``name`` is a temporary or parked name of this toolkit's atomic writers.

    >>> is_leftover(".model.safetensors.m6abert-x1y2.tmp"), is_leftover(".checkpoint-5.m6abert.old")
    (True, True)
    >>> is_leftover(".my_notes.tmp"), is_leftover("checkpoint-5")
    (False, False)
    """
    return name.startswith(".") and (
        (f".{TMP_TAG}-" in name and name.endswith(".tmp")) or name.endswith(f".{TMP_TAG}.old"))

@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes files private; follow the umask instead
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory next to ``path``; it replaces ``path`` if the block succeeds.

    A folder written this way (a checkpoint) is complete or absent.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~current_umask())
        if path.exists():
            old = path.with_name(old_name(path.name))
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def current_umask() -> int:
    """The process umask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str, newline: str = "\n") -> None:
    """Write ``text`` atomically; ``newline`` is what each "\\n" becomes on disk."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline=newline) as fh:
        fh.write(text)


def write_json(path: str | os.PathLike, obj: object) -> None:
    """Write ``obj`` as indented JSON (atomically)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: str | os.PathLike, what: str = "JSON file") -> dict:
    """Read a JSON object; a missing or malformed file is an ``InputError``."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            obj = json.load(fh)
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: {what} is not valid JSON ({err})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}: {what} must hold a JSON object")
    return obj


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line (a log such as ``eval_results.txt``): the old content plus it, atomically."""
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    write_text(path, old + line + "\n")


def write_run_args(output_dir: str | os.PathLike, args: dict, name: str = "run_args.json") -> None:
    """Record a run's resolved arguments, with the package version, next to its outputs."""
    from .. import __version__

    write_json(Path(output_dir) / name, {"m6abert_version": __version__, **args})


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """``np.save`` atomically (the file name is kept exactly, no ``.npy`` appended)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)


def load_npy(path: str | os.PathLike) -> np.ndarray:
    """Load a NumPy array written by :func:`save_npy` (never unpickles objects)."""
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except ValueError as err:
        raise InputError(f"{path}: not a NumPy array file ({err})") from None


def read_text_file(path: str | os.PathLike, what: str) -> str:
    """The whole text of a UTF-8 file (BOM dropped); a folder, missing, unreadable, binary, non-UTF-8
    or blank file is an ``InputError`` naming ``what`` the file should be."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a {what}")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read {what} ({err.strerror})") from None
    if b"\0" in data:
        raise InputError(f"{path}: binary file, expected a {what}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text at byte {err.start}, expected a {what}") from None
    if not text.strip():
        raise InputError(f"{path}: empty {what}")
    return text


def read_lines(path: str | os.PathLike, what: str = "corpus") -> list[str]:
    """Non-empty lines of a text file (a line-by-line pretraining corpus)."""
    path = Path(path)
    lines = [ln.strip() for ln in read_text_file(path, what).splitlines()]
    return [ln for ln in lines if ln]


def write_lines(path: str | os.PathLike, lines: list[str]) -> None:
    """Write one line per item with ``\\n`` endings (DNABERT's line-by-line corpus format)."""
    write_text(path, "".join(line + "\n" for line in lines))


def write_predictions_tsv(path: str | os.PathLike, columns: dict[str, list]) -> None:
    """Write a table of equal-length columns as a TSV with a header (LF endings)."""
    names = list(columns)
    n = len(columns[names[0]])
    lines = ["\t".join(names)]
    for i in range(n):
        lines.append("\t".join(_fmt(columns[c][i]) for c in names))
    write_text(path, "\n".join(lines) + "\n")


def _fmt(v: object) -> str:
    if isinstance(v, float | np.floating):
        return f"{float(v):.6g}"
    return str(v)


def save_figure(fig, path_without_ext: str | os.PathLike, formats: tuple[str, ...] = ("png",),
                dpi: int = 150) -> list[Path]:
    """Save a matplotlib Figure as ``path_without_ext.{fmt}`` for each format, atomically.

    Each file is drawn under a temporary name with the right extension in the target folder
    and renamed into place.
    """
    base = Path(path_without_ext)
    base.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        fmt = fmt.lstrip(".").lower()
        target = base.with_name(f"{base.name}.{fmt}")
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
        written.append(target)
    return written
