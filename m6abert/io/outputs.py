"""A run's outputs, replaced as a set: staged, swapped in, and an earlier run's extra files removed.

A command that writes several files (get_input.py's splits, a prediction's arrays and tables, the
motif files of find_motifs.py) must never leave a folder that mixes its new files with an earlier
run's, nor keep an earlier run's file that this run no longer writes (an old ``test.tsv`` next to
a new ``train.tsv`` that holds its rows). :func:`write_output_set` writes every file into a staging
folder inside the output folder, then moves the earlier run's files of this command aside, moves
the new ones in and only then deletes the old ones; on an error part-way everything is put back.
Only the names the command owns (glob patterns) are ever removed: a user's other files stay.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..utils import InputError, log
from .files import is_leftover, temp_prefix

Writer = Callable[[Path], None]  # writes one output at the path (or into the folder) it is given
MAX_NAMES_LOGGED = 10


@dataclass(frozen=True)
class OutputReport:
    """What :func:`write_output_set` did.

    Attributes
    ----------
    written: tuple[Path, ...]
        The files of the new set, at their final paths, in the order they were written.
    removed: tuple[Path, ...]
        Files of an earlier run (names the command owns) that the new set does not have, now deleted.
    """

    written: tuple[Path, ...]
    removed: tuple[Path, ...]


def matches_owned(patterns: Iterable[str], name: str) -> bool:
    """Whether the relative path ``name`` matches one of the glob ``patterns``, part by part.

    ``*`` never crosses a ``/`` and a pattern matches the whole path (not a suffix of it).

    >>> matches_owned(["train.tsv", "fold_*/dev.tsv"], "fold_3/dev.tsv")
    True
    >>> matches_owned(["train.tsv"], "fold_3/train.tsv")
    False
    """
    parts = PurePosixPath(name).parts
    for pattern in patterns:
        pat = PurePosixPath(pattern).parts
        if len(pat) == len(parts) and all(fnmatch.fnmatchcase(p, q) for p, q in zip(parts, pat, strict=True)):
            return True
    return False


def write_output_set(
    out_dir: str | os.PathLike,
    files: Mapping[str, Writer] | Writer,
    owned: Iterable[str],
    what: str = "outputs",
) -> OutputReport:
    """Write a run's outputs into ``out_dir`` as one set, replacing an earlier run's set.

    Every output is first written into a staging folder inside ``out_dir``
    (``.outputs.m6abert-*.tmp``). Then the files of ``out_dir`` that match ``owned`` (an earlier
    run's outputs of this command) are moved into a parked folder (``.replaced.m6abert-*.tmp``),
    the new files are moved into place and the parked folder is deleted. An earlier file the new
    set does not have is thus removed (one log line names them, and folders left empty by it go
    too); any other file of ``out_dir`` is never touched. If a writer or a move fails, the staged
    files are deleted and the parked ones put back: ``out_dir`` keeps the earlier set, whole.

    Call it after every input has been checked: it is the run's only write.

    Parameters
    ----------
    out_dir: str or PathLike
        The output folder (created with its parents if missing).
    files: mapping of str to callable, or callable
        ``{relative path: writer}``: each writer is called with the staging path of its file
        (its parent folder exists) and writes the file there, e.g. ``lambda p: io.save_npy(p, a)``.
        A relative path may hold folders (``"fold_0/train.tsv"``). Or one writer that is called
        with the staging folder and writes any number of files into it (motif files whose names
        depend on the results); every file it leaves there is part of the set.
    owned: iterable of str
        Glob patterns, relative to ``out_dir``, of every name this command writes
        (``"fold_*/train.tsv"``; ``*`` does not cross ``/``). Every new file must match one; the
        earlier files that match one are replaced or removed.
    what: str
        What the set is, for the log line and error messages. Default is "outputs".

    Returns
    -------
    OutputReport
        The files written and the earlier files removed.

    Raises
    ------
    InputError
        ``out_dir`` is a file, or a file cannot be written or moved (the earlier set is kept).
    ValueError
        A new file's name is not relative, is a toolkit leftover name, or matches no ``owned``
        pattern (a programming error).

    Examples
    --------
    >>> import tempfile
    >>> from m6abert import io
    >>> out = Path(tempfile.mkdtemp())
    >>> owned = ["train.tsv", "dev.tsv", "test.tsv", "run_args.json"]
    >>> first = io.write_output_set(out, {"train.tsv": lambda p: io.write_text(p, "a\\n"),
    ...                                   "test.tsv": lambda p: io.write_text(p, "b\\n")}, owned)
    >>> report = io.write_output_set(out, {"train.tsv": lambda p: io.write_text(p, "c\\n"),
    ...                                    "dev.tsv": lambda p: io.write_text(p, "d\\n")}, owned)
    >>> sorted(p.name for p in out.iterdir()), [p.name for p in report.removed]
    (['dev.tsv', 'train.tsv'], ['test.tsv'])
    """
    out = Path(out_dir)
    owned = tuple(owned)
    if isinstance(files, Mapping):
        for name in files:
            _check_name(name, owned)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; cannot write {what} there")
    created = _make_dirs(out, what)
    stage = None
    try:
        stage = Path(tempfile.mkdtemp(prefix=temp_prefix("outputs"), suffix=".tmp", dir=out))
        new = _stage(stage, files, owned)
        existing = _owned_files(out, owned)
        _swap(out, stage, new, existing, what)
    except BaseException as err:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        _remove_dirs(created)
        if isinstance(err, OSError):
            raise InputError(f"{out}: cannot write the {what} ({err.strerror or err}); the earlier files "
                             "are unchanged") from None
        raise
    shutil.rmtree(stage, ignore_errors=True)
    new_names = set(new)
    old = [n for n in existing if n not in new_names]
    for name in old:
        _prune_empty(out, (out / name).parent)
    _log_removed(out, old, what)
    return OutputReport(tuple(out / n for n in new), tuple(out / n for n in old))


def _check_name(name: str, owned: tuple[str, ...]) -> None:
    """A new file's relative name must be plain, relative and owned by the command."""
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or any(p in ("", ".", "..") or is_leftover(p) for p in parts):
        raise ValueError(f"output name {name!r} must be a plain relative path")
    if not matches_owned(owned, name):
        raise ValueError(f"output name {name!r} matches none of the owned patterns {list(owned)}")


def _make_dirs(folder: Path, what: str) -> list[Path]:
    """Create ``folder`` and missing parents; the folders created, outermost first."""
    missing = []
    for p in (folder, *folder.parents):
        if p.exists() or p.is_symlink():
            break
        missing.append(p)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        _remove_dirs(missing[::-1])  # the parents made before the failure (a name too long at the end)
        raise InputError(f"{folder}: cannot create the folder for {what} ({err.strerror})") from None
    return missing[::-1]


def _remove_dirs(created: list[Path]) -> None:
    """Remove the folders :func:`_make_dirs` created, innermost first, if they are empty."""
    for p in reversed(created):
        try:
            p.rmdir()
        except OSError:
            continue


def _stage(stage: Path, files: Mapping[str, Writer] | Writer, owned: tuple[str, ...]) -> list[str]:
    """Run the writers into ``stage``; the relative names of the files written."""
    if isinstance(files, Mapping):
        for name, writer in files.items():
            (stage / name).parent.mkdir(parents=True, exist_ok=True)
            _call(writer, stage / name, stage, name)
            if not (stage / name).is_file():
                raise ValueError(f"the writer of {name!r} wrote no file")
        return list(files)
    _call(files, stage, stage, ".")
    names = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if not p.is_dir())
    for name in names:
        _check_name(name, owned)
    return names


def _call(writer: Writer, path: Path, stage: Path, name: str) -> None:
    """Call one writer; its ``OSError`` or ``InputError`` names the final path, not the staging one."""
    try:
        writer(path)
    except InputError as err:
        if str(stage) not in str(err):
            raise
        raise InputError(str(err).replace(str(stage), str(stage.parent))) from None
    except OSError as err:
        final = stage.parent if name == "." else stage.parent / name
        raise InputError(f"{final}: cannot write ({err.strerror or err}); the earlier files are unchanged") from None


def _owned_files(out: Path, owned: tuple[str, ...]) -> list[str]:
    """Relative names of the files (or links) of ``out`` that an ``owned`` pattern matches."""
    found = set()
    for pattern in owned:
        for p in out.glob(pattern):
            rel = p.relative_to(out).as_posix()
            if (p.is_symlink() or not p.is_dir()) and not any(is_leftover(q) for q in PurePosixPath(rel).parts):
                found.add(rel)
    return sorted(found)


def _swap(out: Path, stage: Path, new: list[str], existing: list[str], what: str) -> None:
    """Park the earlier owned files, move the new ones in, delete the parked; undo all on error."""
    parked_dir = Path(tempfile.mkdtemp(prefix=temp_prefix("replaced"), suffix=".tmp", dir=out))
    parked, moved_in, made = [], [], []
    try:
        for name in existing:
            (parked_dir / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(out / name, parked_dir / name)
            parked.append(name)
        for name in new:
            made += _make_dirs((out / name).parent, what)
            os.replace(stage / name, out / name)
            moved_in.append(name)
    except BaseException:
        _undo(out, stage, parked_dir, parked, moved_in, made)
        raise
    shutil.rmtree(parked_dir, ignore_errors=True)


def _undo(out: Path, stage: Path, parked_dir: Path, parked: list[str], moved_in: list[str], made: list[Path]) -> None:
    """Put the earlier set back as it was (best effort: every step is tried)."""
    for name in reversed(moved_in):
        try:
            os.replace(out / name, stage / name)
        except OSError:
            pass
    _remove_dirs(made)
    for name in reversed(parked):
        try:
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(parked_dir / name, out / name)
        except OSError:
            log.error("%s: could not restore %s; it is kept in %s", out, name, parked_dir)
            return
    shutil.rmtree(parked_dir, ignore_errors=True)


def _prune_empty(out: Path, folder: Path) -> None:
    """Remove ``folder`` and its parents below ``out`` while they are empty (``fold_7/``)."""
    while folder != out and out in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _log_removed(out: Path, old: list[str], what: str) -> None:
    """One log line naming the earlier files that the new set replaced by nothing."""
    if not old:
        return
    names = ", ".join(old[:MAX_NAMES_LOGGED]) + (f" and {len(old) - MAX_NAMES_LOGGED} more"
                                                 if len(old) > MAX_NAMES_LOGGED else "")
    log.info("%s: removed %d earlier file%s not in the new %s: %s",
             out, len(old), "" if len(old) == 1 else "s", what, names)
