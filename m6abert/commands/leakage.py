"""``m6abert-leakage`` from files to files: the leakage report (``leakage.json``) of an existing split
folder (train/dev/test TSVs or ``fold_{i}/``): windows sharing an exact stretch across its parts."""

from __future__ import annotations

from pathlib import Path

from .. import io
from ..groups import check_k as check_overlap
from ..groups import leakage
from ..kmer import kmer2seq
from ..leakage import LEAKAGE_K
from ..utils import InputError


def split_dir_leakage(data_dir: str | Path, k: int = LEAKAGE_K) -> dict:
    """The :func:`m6abert.groups.leakage` report of a folder that get_input.py (or anything else)
    wrote: the parts are ``fold_{i}/dev.tsv`` when there are folds, else ``train``/``dev``/``test.tsv``;
    windows are rebuilt from their k-mers and named ``{file}:{row}`` (1-based data rows).

    Raises
    ------
    InputError
        No split files in the folder, or a TSV that cannot be read.
    """
    check_overlap(k)
    data = Path(data_dir)
    folds = sorted((p for p in data.glob("fold_*/dev.tsv") if p.parent.name[5:].isdigit()),
                   key=lambda p: int(p.parent.name[5:]))
    files = folds or [data / f"{name}.tsv" for name in ("train", "dev", "test") if (data / f"{name}.tsv").is_file()]
    if not files:
        raise InputError(f"{data}: no train.tsv, dev.tsv, test.tsv or fold_*/dev.tsv to check")
    ids, seqs, labels, parts = [], [], [], []
    for path in files:
        tsv = io.read_tsv(path)
        name = f"{path.parent.name}/{path.name}" if folds else path.name
        ids += [f"{name}:{row}" for row in range(1, len(tsv.sentences) + 1)]
        seqs += [kmer2seq(s) for s in tsv.sentences]
        labels += tsv.labels.tolist()
        parts += [path.parent.name if folds else path.stem] * len(tsv.sentences)
    return {"split": str(data.resolve().name), "files": [str(p.relative_to(data)) for p in files],
            **leakage(seqs, labels, parts, k, ids=ids)}
