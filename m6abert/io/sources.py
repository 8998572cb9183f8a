"""Where labelled site windows come from: a *source* of records, never a folder of fixed file names.

The library reads positives and negatives through :class:`LabelledSources`, a pair of sources. A
source is anything with the four members of :class:`Source` (a name for messages, the records and
their declared sites, a digest for resumed runs, a record for run files); :class:`FastaSource`, a
FASTA file (gzip or bgzip compressed too, read by content), is the one built in. Another kind of
input (m6A sites as BED plus a genome FASTA, cut into windows) is one more class here and its flag
in ``m6abert/cli/`` (docs/architecture.md, "Add an input source").

What a source's records mean is checked where they are used, the same for every kind: a ``site=N``
naming an A of its record (:func:`m6abert.splits.read_windows`), unique ids, k-mer lengths.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable

from ..utils import InputError
from .files import file_sha256
from .sequences import FastaRecord, read_fasta

PAPER_FILES = ("pos.fa", "neg.fa")  # the paper's layout of a data folder: positives, negatives


@runtime_checkable
class Source(Protocol):
    """What the library needs of an input of labelled site windows (one class: positives or negatives).

    ``name``
        How messages name the input (a FASTA source: its path), e.g. ``"data/pos.fa: record p3: ..."``.
    ``read()``
        ``(records, declared)``: the records in their input order (:class:`FastaRecord`, ids unique
        within the source, sequences upper-cased, letters of ACGTUN) and the 0-based index of the m6A
        site of every record whose input names one, by record id (a FASTA header's ``site=N``). A
        record without one has its site placed by the rule of :mod:`m6abert.sites`. A bad input is
        an :class:`~m6abert.utils.InputError` of one line starting with ``name``.
    ``sha256()``
        A hex digest that changes whenever ``read()`` would (a FASTA source: its file's bytes); a
        resumed run is checked against it.
    ``describe()``
        A JSON-able dict for run records: ``{"kind": ..., ...}`` (a FASTA source: ``{"kind": "fasta",
        "path": ...}``).
    """

    @property
    def name(self) -> str: ...

    def read(self) -> tuple[list[FastaRecord], dict[str, int]]: ...

    def sha256(self) -> str: ...

    def describe(self) -> dict: ...


class FastaSource(NamedTuple):
    """A FASTA file of site windows, one record per site (a header's ``site=N`` names its index)."""

    path: Path

    @property
    def name(self) -> str:
        return str(self.path)

    def read(self) -> tuple[list[FastaRecord], dict[str, int]]:
        """The records in file order and the ``site=N`` of their headers (:func:`read_fasta`)."""
        declared: dict[str, int] = {}
        records = read_fasta(self.path, declared)
        return records, declared

    def sha256(self) -> str:
        return file_sha256(self.path)

    def describe(self) -> dict:
        return {"kind": "fasta", "path": str(self.path)}


def fasta_source(path: str | os.PathLike) -> FastaSource:
    """A :class:`FastaSource` of an existing file (checked now, so a flag is refused before work starts).

    Raises
    ------
    InputError
        ``PATH: FASTA file not found`` or ``PATH: is a directory, expected a FASTA file`` (as the
        reader says it).
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a FASTA file")
    if not path.is_file():
        raise InputError(f"{path}: FASTA file not found")
    return FastaSource(path)


class LabelledSources(NamedTuple):
    """The positives (label 1: degraded) and negatives (label 0) of a data set."""

    pos: Source
    neg: Source

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> LabelledSources:
        """The paper's layout: ``folder/pos.fa`` and ``folder/neg.fa`` (each checked to exist)."""
        return cls.from_args(folder)

    @classmethod
    def from_args(cls, data_dir: str | os.PathLike | None, pos_fasta: str | os.PathLike | None = None,
                  neg_fasta: str | os.PathLike | None = None) -> LabelledSources:
        """``--pos_fasta`` / ``--neg_fasta`` where given, else ``data_dir/pos.fa`` / ``data_dir/neg.fa``.

        Raises
        ------
        InputError
            A file that does not exist or is a folder (one line naming its path), or neither a file
            nor ``data_dir`` for a class.
        """
        paths = []
        for given, default, flag in zip((pos_fasta, neg_fasta), PAPER_FILES, ("--pos_fasta", "--neg_fasta"), strict=True):
            if given is None and data_dir is None:
                raise InputError(f"no {default}: give {flag} FILE or a data folder that holds {default}")
            paths.append(given if given is not None else Path(data_dir) / default)
        return cls(*(fasta_source(p) for p in paths))

    def describe(self) -> dict:
        """``{"pos": ..., "neg": ...}``: each source's :meth:`Source.describe`, for run records."""
        return {"pos": self.pos.describe(), "neg": self.neg.describe()}
