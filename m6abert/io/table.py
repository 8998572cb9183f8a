"""The files of the comparison table (reproduce_table.py): model folders, tables, the run folder.

Every writer is atomic (complete or absent). :func:`write_table_tsv` writes floats with 9
significant digits, so float32 probabilities read back exactly.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from .checkpoints import follow_umask, quiet_transformers
from .files import atomic_dir, write_text


def save_model_folder(folder: str | os.PathLike, model) -> None:
    """A ``PreTrainedModel`` as a Hugging Face folder (``config.json`` + ``model.safetensors``),
    atomically and without tokenizer files (for models that do not read k-mers)."""
    with quiet_transformers(), atomic_dir(folder) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        follow_umask(tmp)


def _cell(v: object) -> str:
    if isinstance(v, float | np.floating):
        return "nan" if not np.isfinite(v) else f"{float(v):.9g}"
    return str(v)


def write_table_tsv(path: str | os.PathLike, columns: dict[str, list]) -> None:
    """Equal-length columns as a tab-separated table with a header line (LF endings).

    >>> import tempfile; d = tempfile.mkdtemp()
    >>> write_table_tsv(f"{d}/t.tsv", {"id": ["a"], "p": [np.float32(0.1)]})
    >>> open(f"{d}/t.tsv").read()
    'id\\tp\\na\\t0.100000001\\n'
    """
    names = list(columns)
    lengths = {len(columns[c]) for c in names}
    if len(lengths) > 1:
        raise ValueError(f"columns of unequal lengths: { {c: len(columns[c]) for c in names} }")
    rows = ["\t".join(names)] + ["\t".join(_cell(columns[c][i]) for c in names) for i in range(lengths.pop())]
    write_text(path, "\n".join(rows) + "\n")


def clear_table_dir(out: str | os.PathLike, owned: tuple[str, ...]) -> list[str]:
    """Remove the entries named in ``owned`` (files or folders) from ``out``; return their names.

    Anything else in ``out`` (a user's own file) and the run lock stay.
    """
    out, removed = Path(out), []
    for name in owned:
        p = out / name
        if not os.path.lexists(p):
            continue
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        removed.append(name)
    return removed
