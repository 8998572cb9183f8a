"""The comparison table's model slots: a name, the label of its row, and the function that trains it
on the other folds and scores one fold.

A fold runner is called as ``runner(job)`` with a :class:`FoldJob` and returns ``(logits, extra)``:
logits (or log-probabilities) of shape ``(n, 2)`` for the held-out fold's windows in order, and a
JSON-able dict recorded with the fold. The built-in slots name their runners by dotted path, so this
module imports nothing heavy (the command line reads the names from it); :func:`register` adds a
model, e.g. from a notebook or a test:

>>> sorted(model_names())[:2]
['bert_scratch', 'cnn_lstm']
>>> label("kmer_lr")
'k-mer frequency LR'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from .utils import InputError


class FoldJob(NamedTuple):
    """What a fold runner gets: the run's settings (:class:`m6abert.commands.table.TableSettings`), its output
    folder, its plan (:class:`m6abert.commands.table.Plan`: folds, locus groups), the protocol, the fold
    held out, and the process's device set-up."""

    settings: Any
    out: Path
    plan: Any
    protocol: str
    fold: int
    dist: Any

    def train_dev(self) -> tuple[list, list[int], list[str], list[int]]:
        """(train records, train labels, held-out sequences, held-out labels): train = the other folds."""
        train_recs, train_labels = [], []
        for j, (recs, labels) in enumerate(self.plan.folds[self.protocol]):
            if j != self.fold:
                train_recs += recs
                train_labels += labels
        recs, labels = self.plan.folds[self.protocol][self.fold]
        return train_recs, train_labels, [r.seq for r in recs], labels


class Slot(NamedTuple):
    label: str
    runner: str | Callable[[FoldJob], tuple[Any, dict]]  # a callable, or "module:function"


SLOTS: dict[str, Slot] = {
    "m6a_bert_deg": Slot("m6A-BERT-Deg", "m6abert.commands.table_folds:pretrained_bert_fold"),
    "bert_scratch": Slot("BERT-Deg, no pretraining", "m6abert.commands.table_folds:scratch_bert_fold"),
    "cnn_lstm": Slot("CNN+LSTM-Deg", "m6abert.commands.table_folds:cnn_fold"),
    "kmer_lr": Slot("k-mer frequency LR", "m6abert.commands.table_folds:kmer_lr_fold"),
    "gc_lr": Slot("GC-content LR", "m6abert.commands.table_folds:gc_lr_fold"),
}


def model_names() -> tuple[str, ...]:
    """Every model the table can train, built-in ones first, in table order."""
    return tuple(SLOTS)


def register(name: str, label: str, runner: Callable[[FoldJob], tuple[Any, dict]]) -> None:
    """Add a model to the table (``--models NAME``); a name taken is refused."""
    if name in SLOTS:
        raise ValueError(f"a model named {name!r} is already in the table")
    SLOTS[name] = Slot(label, runner)


def _slot(name: str) -> Slot:
    if name not in SLOTS:
        raise InputError(f"--models: unknown model {name!r} (choose from {', '.join(SLOTS)})")
    return SLOTS[name]


def label(name: str) -> str:
    """The row label of model ``name``."""
    return _slot(name).label


def runner(name: str) -> Callable[[FoldJob], tuple[Any, dict]]:
    """The fold runner of model ``name`` (a dotted path is imported here)."""
    run = _slot(name).runner
    if isinstance(run, str):
        module, function = run.split(":")
        run = getattr(importlib.import_module(module), function)
    return run
