"""Generic files: atomic writers, text, JSON, NumPy arrays, tables and figures."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import json
import math
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

def make_dirs(folder: str | os.PathLike) -> Path:
    """Create ``folder`` with its parents; a file in the way or a refused folder is an ``InputError``."""
    folder = Path(folder)
    missing: list[Path] = []  # the parents it makes, deepest first
    try:
        missing = list(itertools.takewhile(lambda p: not p.exists(), folder.parents))
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), folder)
        raise InputError(f"{folder}: cannot create the folder: {blocker} is a file, not a folder") from None
    except OSError as err:
        for p in missing:  # made before it failed (a name too long at the end): removed again
            with contextlib.suppress(OSError):
                p.rmdir()
        raise write_error(folder, err) from None
    return folder


def write_error(path: str | os.PathLike, err: BaseException) -> InputError:
    """One line naming ``path`` and why it could not be written (a full disk said as such)."""
    if isinstance(err, OSError) and err.errno == errno.ENOSPC or _disk_full(path, err):
        cause = "No space left on device"
    elif isinstance(err, OSError):
        cause = err.strerror or str(err)
    else:
        cause = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
    return InputError(f"{path}: cannot write ({cause})")


def os_error_message(err: OSError) -> str:
    """One line for an operating-system error no check foresaw (a name too long, a full disk): the
    path(s) it names and the system's reason.

    >>> os_error_message(OSError(errno.ENAMETOOLONG, "File name too long", "/x/yyy"))
    '/x/yyy: File name too long'
    """
    cause = "No space left on device" if err.errno == errno.ENOSPC else (err.strerror or str(err) or type(err).__name__)
    paths = [str(p) for p in (err.filename, err.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {cause}" if paths else cause


def _disk_full(path: str | os.PathLike, err: BaseException) -> bool:
    """A full disk as other writers report it: Rust's safetensors ("No space left on device (os error
    28)"), C++'s torch.save ("basic_ios::clear: iostream error") or NumPy ("16384 requested and 6640
    written"), the last two with the disk then full."""
    if isinstance(err, OSError) and err.errno is not None:
        return False
    text = str(err)
    if "No space left on device" in text or "os error 28" in text:
        return True
    if not any(sign in text for sign in ("iostream error", "write failed", "requested and")):
        return False
    folder = next((p for p in [Path(path), *Path(path).parents] if p.is_dir()), Path("."))
    return shutil.disk_usage(folder).free < (1 << 20)


@contextlib.contextmanager
def _write_errors(path: Path) -> Iterator[None]:
    """Turn the operating system's write failures (and a C++ writer's full disk) into ``InputError``."""
    try:
        yield
    except InputError:
        raise
    except OSError as err:
        raise write_error(path, err) from None
    except Exception as err:  # noqa: BLE001 (only a full disk is turned into one line; the rest propagates)
        if _disk_full(path, err):
            raise write_error(path, err) from None
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    A failure of the operating system (a file in the way, no permission, a full disk) is an
    ``InputError`` naming ``path``; ``path`` itself is then unchanged and no temporary file is left.
    """
    path = Path(path)
    make_dirs(path.parent)
    if path.is_dir():
        raise InputError(f"{path}: is a folder, cannot write a file there")
    with _write_errors(path):
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
        os.close(fd)
    try:
        with _write_errors(path):
            yield Path(tmp)
            os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes files private; follow the umask instead
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory next to ``path``; it replaces ``path`` if the block succeeds.

    A folder written this way (a checkpoint) is complete or absent; operating-system failures are
    ``InputError`` as in :func:`atomic_path`.
    """
    path = Path(path)
    make_dirs(path.parent)
    with _write_errors(path):
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent))
    try:
        with _write_errors(path):
            yield tmp
            os.chmod(tmp, 0o777 & ~current_umask())
            _swap_in(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(tmp: Path, path: Path) -> None:
    """Put the folder ``tmp`` at ``path``, parking an old ``path`` until the new one is in place."""
    if not path.exists():
        os.replace(tmp, path)
        return
    old = path.with_name(old_name(path.name))
    shutil.rmtree(old, ignore_errors=True)
    os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def current_umask() -> int:
    """The process umask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str, newline: str = "\n") -> None:
    """Write ``text`` atomically; ``newline`` is what each "\\n" becomes on disk."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline=newline) as fh:
        fh.write(text)


def json_safe(obj: object) -> object:
    """``obj`` with every NaN or infinite float replaced by None (``null``): strict JSON.

    >>> json_safe({"auc": float("nan"), "acc": [1.0, float("inf")]})
    {'auc': None, 'acc': [1.0, None]}
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: json_safe(v) for key, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.floating | np.integer):
        return json_safe(obj.item())
    return obj


def write_json(path: str | os.PathLike, obj: object) -> None:
    """Write ``obj`` as indented, strict JSON (atomically): NaN and infinities become ``null``."""
    write_text(path, json_dumps(obj, indent=2) + "\n")


def json_dumps(obj: object, indent: int | None = None) -> str:
    """Strict JSON text of ``obj`` (NaN and infinities as ``null``; other objects as strings)."""
    return json.dumps(json_safe(obj), indent=indent, sort_keys=False, default=str, allow_nan=False)


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
    try:
        old = path.read_text(encoding="utf-8") if path.exists() else ""
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text at byte {err.start}; cannot append a line to it (move it "
                         "away)") from None
    write_text(path, old + line + "\n")


def write_run_args(output_dir: str | os.PathLike, args: dict, name: str = "run_args.json") -> None:
    """Record a run's resolved arguments, with the package version, next to its outputs."""
    from .. import __version__

    write_json(Path(output_dir) / name, {"m6abert_version": __version__, **args})


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes (hex), read in blocks."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from None
    return h.hexdigest()


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """``np.save`` atomically (the file name is kept exactly, no ``.npy`` appended)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)


def load_npy(path: str | os.PathLike) -> np.ndarray:
    """Load a NumPy array written by :func:`save_npy` (never unpickles objects)."""
    if Path(path).is_dir():
        raise InputError(f"{path}: is a folder, expected a NumPy array file (.npy)")
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (ValueError, EOFError) as err:
        raise InputError(f"{path}: not a NumPy array file ({err})") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from None
    if not isinstance(arr, np.ndarray):  # np.load opens a .npz archive whatever the file is called
        arr.close()
        raise InputError(f"{path}: a .npz archive of arrays, expected one .npy array (np.save, not np.savez)")
    return arr


GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: str | os.PathLike) -> bool:
    """Whether a file starts as gzip (and bgzip) files do, whatever its name."""
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == GZIP_MAGIC
    except OSError:
        return False


def read_text_file(path: str | os.PathLike, what: str) -> str:
    """The whole text of a UTF-8 file (BOM dropped; gzip or bgzip compressed ones are read through); a
    folder, missing, unreadable, binary, non-UTF-8 or blank file is an ``InputError`` naming ``what``
    the file should be."""
    import gzip
    import zlib

    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a {what}")
    try:
        data = path.read_bytes()
        if data[:2] == GZIP_MAGIC:
            data = gzip.decompress(data)
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except (EOFError, gzip.BadGzipFile, zlib.error):
        raise InputError(f"{path}: a damaged or truncated gzip file, expected a {what}") from None
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


def read_columns(path: str | os.PathLike, what: str = "table") -> dict[str, list[str]]:
    """A tab-separated table with a header line (as :func:`write_predictions_tsv` writes it), by column."""
    lines = [ln for ln in read_text_file(path, what).splitlines() if ln]
    names = lines[0].split("\t")
    rows = [ln.split("\t") for ln in lines[1:]]
    bad = next((i for i, r in enumerate(rows, 2) if len(r) != len(names)), None)
    if bad is not None:
        raise InputError(f"{path}: line {bad}: expected {len(names)} tab-separated columns, found {len(rows[bad - 2])}")
    return {name: [r[j] for r in rows] for j, name in enumerate(names)}


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
            # no creation date: the same figure gives the same bytes
            metadata = {"CreationDate": None} if fmt == "pdf" else {"Software": None} if fmt == "png" else None
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight", metadata=metadata)
        written.append(target)
    return written
