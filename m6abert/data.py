"""Data sets of k-mer ids: validators, datasets, the collator and the loaders of every input kind.

This module owns what the model reads, whatever the file it came from:

* one ragged id store (:class:`~m6abert.kmer.Encoded`) for TSVs, FASTA records, in-memory
  sequences and pretraining corpora;
* one set of validators: k-mer length, letters, rows that do not fit the model;
* one dataset (:class:`KmerDataset`, ``[CLS] k-mers [SEP]`` rows with optional labels) and one
  collator (:class:`Collator`, padding and the attention mask, or the original's unmasked
  padding with ``dnabert_compat``);
* the loaders: :func:`dataset_from_seqs` (strings), :func:`load_tsv_dataset`,
  :func:`load_corpus` (streamed pretraining corpora; FASTA to score is streamed by
  :mod:`m6abert.commands.predict_fasta`) and
  :func:`read_labelled_scores` (a TSV or FASTA with its score array, for motifs);
* who the rows are (ids, sites, coordinates): :func:`tsv_record_rows`, :func:`read_fasta_rows`.

Files are read through :mod:`m6abert.io`; the splitting of get_input.py is :mod:`m6abert.splits`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from . import io, kmer
from .constants import KMER_LETTERS, MAX_POSITIONS
from .kmer import CLS_ID, KMER_SIZES, PAD_ID, SEP_ID, UNK_ID, Encoded
from .utils import InputError, log


# ---------------------------------------------------------------------------- validators
def check_records_k(records: Sequence[io.FastaRecord], k: int, path: str) -> None:
    """Raise for the first record shorter than ``k`` (it would give no k-mer)."""
    short = next((r for r in records if len(r.seq) < k), None)
    if short is not None:
        raise InputError(f"{path}: record {short.id}: sequence of {len(short.seq)} nt is shorter than k={k}")


def check_data_k(sentences: Sequence[str], k: int, path: str) -> None:
    """Raise if the k-mers of a TSV are not of the model's length ``k`` (the first 20 rows tell)."""
    for i, s in enumerate(sentences[:20], 1):
        sk = kmer.sentence_k(s)
        if sk != k:
            raise InputError(f"{path}: row {i}: k-mers of length {sk}, but the model is for k={k}")


_ILLEGAL = re.compile(f"[^{KMER_LETTERS} ]")
_ILLEGAL_ANY_CASE = re.compile(f"[^{KMER_LETTERS}{KMER_LETTERS.lower()}\\s]")


def check_kmer_letters(sentences: Sequence[str], path: str, numbers: Sequence[int] | None = None,
                       unit: str = "row", any_case: bool = False) -> None:
    """Raise on a k-mer letter other than A, C, G, T, N (N k-mers are read as [UNK]).

    ``numbers`` are the 1-based numbers of the sentences in their file (default 1, 2, ...);
    ``any_case`` also allows lower case (pretraining corpora read it as [UNK], as DNABERT).
    """
    bad = _ILLEGAL_ANY_CASE if any_case else _ILLEGAL
    for i, s in enumerate(sentences):
        m = bad.search(s)
        if m:
            n = numbers[i] if numbers is not None else i + 1
            raise InputError(f"{path}: {unit} {n}: illegal letter {m.group(0)!r} in the k-mers "
                             f"(allowed: {', '.join(KMER_LETTERS)})")


def check_kmer_rows(sentences: Sequence[str], path: str) -> None:
    """Raise on illegal letters or on k-mers of different lengths in one row.

    Either would make :func:`~m6abert.kmer.kmer2seq` rebuild a wrong sequence without a word.
    """
    check_kmer_letters(sentences, path)
    for i, s in enumerate(sentences, 1):
        lengths = [len(t) for t in s.split()]
        if len(set(lengths)) > 1:
            other = next(n for n in lengths if n != lengths[0])
            raise InputError(f"{path}: row {i}: k-mers of length {lengths[0]} and {other} in one row "
                             "(a damaged k-mer sentence)")


def check_length(encoded: Encoded, limit: int, path: str | os.PathLike, flag: str = "--max_seq_length",
                 hint: str = "") -> None:
    """Raise if a row does not fit ``limit`` tokens with [CLS]/[SEP]; rows are never truncated silently."""
    lengths = np.diff(encoded.offsets) + 2
    too_long = lengths > limit
    if too_long.any():
        i = int(too_long.argmax())
        raise InputError(f"{path}: {encoded.unit} {encoded.source(i)}: {lengths[i]} tokens with [CLS]/[SEP] "
                         f"exceed {flag} {limit}{hint}")


def check_block_size(corpus: Encoded, block_size: int, path: str | os.PathLike) -> None:
    """:func:`check_length` for a pretraining corpus (DNABERT truncated long rows silently)."""
    check_length(corpus, block_size, path, "--block_size", " (split long sequences)")


# ---------------------------------------------------------------------------- dataset and collator
def with_specials(ids: np.ndarray, max_seq_length: int) -> np.ndarray:
    """``[CLS] ids [SEP]``, the k-mers truncated from the end to fit ``max_seq_length`` (as DNABERT)."""
    body = ids[: max(max_seq_length - 2, 0)]
    return np.concatenate([[CLS_ID], body, [SEP_ID]]).astype(np.int64)


class KmerDataset(torch.utils.data.Dataset):
    """Rows of an :class:`~m6abert.kmer.Encoded` store as ``[CLS] ids [SEP]`` with optional labels."""

    def __init__(self, encoded: Encoded, labels: np.ndarray | None = None, max_seq_length: int = MAX_POSITIONS):
        self.encoded, self.labels, self.max_seq_length = encoded, labels, max_seq_length

    def __len__(self) -> int:
        return len(self.encoded)

    def lengths(self) -> np.ndarray:
        """Tokens of every item (``[CLS]`` and ``[SEP]`` included, after truncation), without building them."""
        return np.minimum(np.diff(self.encoded.offsets), max(self.max_seq_length - 2, 0)) + 2

    def __getitem__(self, i: int) -> dict:
        item = {"input_ids": with_specials(self.encoded.row(i), self.max_seq_length)}
        if self.labels is not None:
            item["labels"] = int(self.labels[i])
        return item


class Collator:
    """Pad a list of dataset items into a batch.

    With ``dnabert_compat`` every batch is padded to ``max_seq_length`` and ``attention_mask`` is
    the fork's additive mask, shape (B, 1, 1, L), +1 on real tokens and 0 on padding. Otherwise
    batches are padded to their longest row and ``attention_mask`` is the usual (B, L) 0/1 mask.
    """

    def __init__(self, max_seq_length: int = MAX_POSITIONS, dnabert_compat: bool = False):
        self.max_seq_length, self.dnabert_compat = max_seq_length, dnabert_compat

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        lengths = [len(it["input_ids"]) for it in items]
        width = self.max_seq_length if self.dnabert_compat else max(lengths)
        ids = torch.full((len(items), width), PAD_ID, dtype=torch.long)  # B, L
        mask = torch.zeros((len(items), width), dtype=torch.long)  # B, L
        for row, (it, n) in enumerate(zip(items, lengths, strict=True)):
            ids[row, :n] = torch.from_numpy(np.asarray(it["input_ids"], dtype=np.int64))
            mask[row, :n] = 1
        batch = {"input_ids": ids, "attention_mask": compat_mask(mask) if self.dnabert_compat else mask}
        if "labels" in items[0]:
            batch["labels"] = torch.tensor([it["labels"] for it in items], dtype=torch.long)
        return batch


def compat_mask(mask: torch.Tensor) -> torch.Tensor:
    """The original fork's additive attention mask: (B, L) 0/1 -> (B, 1, 1, L) float, +1 real / 0 pad."""
    return mask[:, None, None, :].float()


def real_token_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, L) bool of real tokens from either mask form of :class:`Collator`."""
    if attention_mask.dim() == 4:
        return attention_mask[:, 0, 0, :] > 0
    return attention_mask > 0


def kmer_counts(real: torch.Tensor) -> np.ndarray:
    """Number of k-mer tokens per row of a real-token mask that includes [CLS] and [SEP]."""
    return (real.sum(dim=1) - 2).cpu().numpy()


# ---------------------------------------------------------------------------- labelled data sets
class LabelledData(NamedTuple):
    dataset: KmerDataset
    labels: np.ndarray | None  # (N,) int64, or None without labels
    names: list[str]  # row numbers (TSV, from 0) or record ids (FASTA)


def dataset_from_seqs(seqs: Sequence[str], k: int, labels: Sequence[int] | np.ndarray | None = None,
                      max_seq_length: int = MAX_POSITIONS, names: Sequence[str] | None = None,
                      path: str = "sequences") -> LabelledData:
    """Nucleotide sequences (any case, ``U`` read as ``T``) as a data set for a model of ``k``.

    >>> dataset_from_seqs(["ACGTAC"], 3).dataset[0]["input_ids"].tolist()
    [2, 16, 50, 57, 23, 3]
    """
    records = [io.FastaRecord(n, s) for n, s in zip(names or [f"#{i + 1}" for i in range(len(seqs))], seqs,
                                                    strict=True)]
    check_records_k(records, k, path)
    long = next((i for i, r in enumerate(records) if len(r.seq) - k + 3 > max_seq_length), None)
    if long is not None:  # refused from its length: a record of millions of nt is never k-merised
        raise InputError(f"{path}: row {long + 1}: {len(records[long].seq) - k + 3} tokens with [CLS]/[SEP] exceed "
                         f"--max_seq_length {max_seq_length}")
    enc = kmer.encode_many([r.seq for r in records], k)
    if enc.n_unknown:
        log.warning("%s: %d k-mers contain N and are read as [UNK]", path, enc.n_unknown)
    y = None if labels is None else np.asarray(labels, dtype=np.int64)
    return LabelledData(KmerDataset(enc, y, max_seq_length), y, [r.id for r in records])


def load_tsv_dataset(path: str | os.PathLike, k: int, max_seq_length: int,
                     require_labels: bool = True) -> LabelledData:
    """A TSV split as a data set, checked against the model's k and ``max_seq_length``."""
    tsv = io.read_tsv(path, require_labels=require_labels)
    check_data_k(tsv.sentences, k, str(path))
    check_kmer_letters(tsv.sentences, str(path))
    enc = kmer.encode_kmer_sentences(tsv.sentences, k)
    if enc.n_unknown:
        log.warning("%s: %d k-mers are not in the dna%d vocabulary and are read as [UNK]", path, enc.n_unknown, k)
    check_length(enc, max_seq_length, str(path))
    return LabelledData(KmerDataset(enc, tsv.labels, max_seq_length), tsv.labels,
                        [str(i) for i in range(len(tsv.sentences))])


def concat_labelled(parts: Sequence[LabelledData], where: str, names: Sequence[str]) -> LabelledData:
    """Several labelled data sets as one (``visualize_all.py --data_name all``); all or none labelled."""
    has = {p.labels is not None for p in parts}
    if len(has) > 1:
        raise InputError(f"{where}: some of {', '.join(n + '.tsv' for n in names)} have labels and some not")
    labels = np.concatenate([p.labels for p in parts]) if has == {True} else None
    dataset = parts[0].dataset if len(parts) == 1 else torch.utils.data.ConcatDataset([p.dataset for p in parts])
    return LabelledData(dataset, labels, [n for p in parts for n in p.names])


# ---------------------------------------------------------------------------- pretraining corpora
def _encode_lines(lines: list[str], numbers: np.ndarray, k: int, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Ids (int32) and k-mers per line of a chunk of k-mer sentences, tokens looked up whole.

    A k-mer outside the vocabulary is [UNK] (as DNABERT: lower case, N); a letter other than
    A, C, G, T, N (either case) is refused.
    """
    encoded = kmer.encode_regular(lines, k)
    if encoded is None:
        for line, n in zip(lines, numbers, strict=True):  # irregular spacing: check every token
            for tok in line.split():
                if len(tok) != k:
                    raise InputError(f"{path}: line {n}: k-mer {tok[:12]!r} of length {len(tok)}, but the model is for k={k}")
        enc = kmer.encode_kmer_sentences(lines, k)
        encoded = enc.ids.astype(np.int32), np.diff(enc.offsets)
    ids, counts = encoded
    unknown = np.flatnonzero(ids == UNK_ID)
    if len(unknown):  # only the lines with an [UNK] can hold an illegal letter
        rows = np.unique(np.searchsorted(np.cumsum(counts), unknown, side="right"))
        check_kmer_letters([lines[r] for r in rows], str(path), numbers[rows], "line", any_case=True)
    return encoded


def _corpus_chunk_k(chunk: list[str], numbers: np.ndarray, k: int | None, path: Path) -> int:
    """The k of a corpus chunk's first line, checked against ``k`` (None: the first chunk sets it)."""
    first_k = kmer.sentence_k(chunk[0])
    if k is None:
        if first_k not in KMER_SIZES:
            raise InputError(f"{path}: line {numbers[0]}: k-mers of length {first_k}; DNABERT has vocabularies for k = 3..6")
        return first_k
    if first_k != k:
        raise InputError(f"{path}: line {numbers[0]}: k-mers of length {first_k}, but the model is for k={k}")
    return k


def _corpus_chunks(path: Path, k: int | None, fasta: bool, chunk_bytes: int):
    """``(ids int32, k-mers per row, source numbers, k)`` for each chunk of a corpus or FASTA file."""
    if fasta:
        done = 0
        for records in io.iter_fasta_chunks(path):
            check_records_k(records, k, str(path))
            enc = kmer.encode_many([r.seq for r in records], k)
            yield enc.ids.astype(np.int32), np.diff(enc.offsets), np.arange(done + 1, done + len(records) + 1), k
            done += len(records)
        return
    for chunk, numbers in io.iter_corpus_chunks(path, chunk_bytes):
        k = _corpus_chunk_k(chunk, numbers, k, path)
        ids, counts = _encode_lines(chunk, numbers, k, path)
        del chunk  # before the next chunk is read
        yield ids, counts, numbers, k


def load_corpus(path: str | os.PathLike, k: int | None = None, fasta: bool = False,
                chunk_bytes: int = io.CORPUS_CHUNK_BYTES) -> Encoded:
    """Tokenise a line-by-line corpus of k-mer sentences (or a FASTA file), chunk by chunk.

    Ids go into one preallocated int32 array (at most one k-mer per k + 1 bytes of a corpus, one
    per byte of a FASTA), so peak memory is the ids plus one chunk of text.

    Parameters
    ----------
    path: str or PathLike
        A corpus as ``get_input.py --task pretrain`` writes it, or a FASTA file with ``fasta``.
    k: int or None
        k-mer length; None reads it from the corpus' first k-mer (required for FASTA).
        Default is None.
    fasta: bool
        ``path`` is a FASTA file: each record is k-merised (``U`` read as ``T``). Default is False.
    chunk_bytes: int
        Text per chunk. Default is 16 MiB.

    Returns
    -------
    Encoded
        int32 ids, with ``sources`` (file line or record number of each row), ``unit`` ("line" or
        "record") and ``k``.

    Raises
    ------
    InputError
        An unreadable or empty file, k-mers of another length than ``k``, a record shorter than k.
    """
    path = Path(path)
    if fasta and k is None:
        raise InputError(f"{path}: a FASTA corpus needs k: give --tokenizer_name dna3..dna6 or a checkpoint")
    ids: np.ndarray | None = None
    pos, counts, sources = 0, [], []
    for chunk_ids, chunk_counts, numbers, chunk_k in _corpus_chunks(path, k, fasta, chunk_bytes):
        k = chunk_k
        if ids is None:
            size = path.stat().st_size
            ids = np.empty(size + 1 if fasta else (size + 1) // (k + 1) + 1, dtype=np.int32)
        if pos + len(chunk_ids) > len(ids):  # cannot happen for valid text; grow to be safe
            ids = np.concatenate([ids[:pos], np.empty(pos + len(chunk_ids), dtype=np.int32)])
        ids[pos : pos + len(chunk_ids)] = chunk_ids
        pos += len(chunk_ids)
        counts.append(chunk_counts)
        sources.append(numbers)
    ids.resize(pos, refcheck=False)  # give back the unused tail
    offsets = np.zeros(sum(map(len, counts)) + 1, dtype=np.int64)
    np.cumsum(np.concatenate(counts), out=offsets[1:])
    n_unknown = int((ids == UNK_ID).sum())
    if n_unknown:
        log.warning("%s: %d of %d k-mers are not in the dna%d vocabulary and are read as [UNK]",
                    path, n_unknown, pos, k)
    return Encoded(ids, offsets, n_unknown, np.concatenate(sources), "record" if fasta else "line", k)


# ---------------------------------------------------------------------------- scores with their sequences
class LabelledScores(NamedTuple):
    """Sequences, labels and score rows of one or more data sets, row-aligned, with the rows' record ids
    and (a FASTA's) each window's site index."""

    seqs: list[str]
    labels: np.ndarray  # (n,) int64
    scores: np.ndarray  # (n, W) float64
    ids: list[str] | None = None
    sites: list[int | None] | None = None  # None: every window's site is the caller's site index


def _scored_part(data_dir: Path, tsv_names: tuple[str, ...], npy_path: Path, several: bool) -> LabelledScores:
    """One score array with the TSVs it belongs to, checked against each other."""
    scores = io.load_score_matrix(npy_path)
    tables = [(data_dir / f"{name}.tsv", io.read_tsv(data_dir / f"{name}.tsv")) for name in tsv_names]
    check_score_sources(npy_path, [path for path, _ in tables])
    for tsv_path, table in tables:
        check_kmer_rows(table.sentences, str(tsv_path))
    tsv_path = tables[0][0] if len(tables) == 1 else data_dir / "{train,dev,test}.tsv"
    seqs = [kmer.kmer2seq(s) for _, table in tables for s in table.sentences]
    _check_scores_fit(scores, seqs, npy_path, tsv_path)
    rows = tsv_record_rows([(path, len(t.sentences), t.labels) for path, t in tables], several)
    return LabelledScores(seqs, np.concatenate([table.labels for _, table in tables]), scores, rows.ids)


def _check_scores_fit(scores: np.ndarray, seqs: list[str], npy_path: Path, tsv_path: Path) -> None:
    """Refuse a score array without one row per sequence or narrower than the longest sequence."""
    if scores.shape[0] != len(seqs):
        raise InputError(f"{npy_path}: {scores.shape[0]} score rows, but {tsv_path} has {len(seqs)} sequences")
    longest = max(len(s) for s in seqs)
    if scores.shape[1] < longest:
        raise InputError(f"{npy_path}: scores are {scores.shape[1]} positions wide, "
                         f"shorter than the {longest}-nt sequences of {tsv_path}")


def _fasta_scored(fasta: Path, npy_path: Path) -> LabelledScores:
    """A FASTA's records (labelled by ``label=`` headers) with the score array visualize_all.py --fasta wrote."""
    rows = read_fasta_rows(fasta)
    if rows.labels is None:
        raise InputError(f"{fasta}: no label=1 / label=0 in its headers: motifs and profiles compare the label-1 "
                         "records with the label-0 ones")
    scores = io.load_score_matrix(npy_path)
    check_score_sources(npy_path, [fasta])
    seqs = [kmer.normalise(s) for s in rows.seqs]
    _check_scores_fit(scores, seqs, npy_path, fasta)
    return LabelledScores(seqs, rows.labels, scores, rows.ids, rows.sites)


def check_score_sources(npy_path: Path, tsvs: list[Path]) -> None:
    """Raise if ``npy_path`` was computed from other TSVs than ``tsvs`` (same row count or not).

    visualize_all.py records the SHA-256 of the TSVs it scored in ``{array}.json``; arrays from
    elsewhere (the original's) have none and are only checked by shape, with a warning.
    """
    meta_path = npy_path.with_name(npy_path.name + ".json")
    if not meta_path.exists():
        log.warning("%s: no %s beside it: cannot check that the scores belong to %s", npy_path, meta_path.name,
                    ", ".join(p.name for p in tsvs))
        return
    recorded = [src.get("sha256") for src in io.read_json(meta_path, "score metadata").get("sources", [])]
    if len(recorded) != len(tsvs):
        raise InputError(f"{npy_path}: computed from {len(recorded)} TSV(s) ({meta_path.name}), "
                         f"but {len(tsvs)} are read here")
    for tsv, sha in zip(tsvs, recorded, strict=True):
        if io.file_sha256(tsv) != sha:
            raise InputError(f"{npy_path}: computed from another {tsv.name} (SHA-256 recorded in {meta_path.name} "
                             f"differs from {tsv}'s); re-run visualize_all.py on these data")


def read_labelled_scores(data_dir: str | os.PathLike | None, npy_dir: str | os.PathLike, data_name: str,
                         vis_task: str, fasta: str | os.PathLike | None = None) -> LabelledScores:
    """Read ``{name}.tsv`` with its ``{atten|attributions}_{name}.npy`` and check they belong together.

    Sequences are rebuilt from the k-mer sentences. ``data_name="all"`` reads ``{stem}_all.npy``
    (visualize_all.py --data_name all) if present, else the per-set arrays; it reads train, dev and
    test and concatenates them in that order (TSV rows and score rows alike). The rows' ids are those
    of ``records.tsv`` (:func:`tsv_record_rows`). With ``fasta`` (the FASTA that ``visualize_all.py
    --fasta`` scored as ``data_name``) its records are read instead, labelled by their headers'
    ``label=1`` / ``label=0``, with their ids and sites (:func:`read_fasta_rows`).

    Parameters
    ----------
    data_dir, npy_dir: str or PathLike
        Folders of the TSVs (None with ``fasta``) and of the score arrays.
    data_name: str
        TSV stem (``train``, ``dev``, ``test``) or ``all``.
    vis_task: str
        A score method's kind (:data:`m6abert.score_methods.METHODS`): ``attn`` (``atten_*.npy``),
        ``attr`` (``attributions_*.npy``), ``ism`` (``ism_summary_*.npy``), ...

    Raises
    ------
    InputError
        A missing or malformed file, a row-count mismatch, scores narrower than the
        sequences, or score widths that differ between the sets of "all".
    """
    from .score_methods import method

    stem, npy = method(vis_task).stem, Path(npy_dir)
    if fasta is not None:
        return _finite_warned(_fasta_scored(Path(fasta), npy / f"{stem}_{data_name}.npy"), npy_dir)
    data = Path(data_dir)
    names = ("train", "dev", "test") if data_name == "all" else (data_name,)
    if data_name == "all" and (npy / f"{stem}_all.npy").exists():
        groups = [(names, npy / f"{stem}_all.npy")]  # one array over train, dev, test in that order
    else:
        groups = [((name,), npy / f"{stem}_{name}.npy") for name in names]
    parts = [_scored_part(data, tsv_names, npy_path, len(names) > 1) for tsv_names, npy_path in groups]
    widths = sorted({p.scores.shape[1] for p in parts})
    if len(widths) > 1:
        raise InputError(f"{npy_dir}: score widths differ between train, dev and test ({widths})")
    scores = np.concatenate([p.scores for p in parts])
    seqs, labels = [s for p in parts for s in p.seqs], np.concatenate([p.labels for p in parts])
    return _finite_warned(LabelledScores(seqs, labels, scores, [i for p in parts for i in p.ids]), npy_dir)


def _finite_warned(data: LabelledScores, npy_dir: str | os.PathLike) -> LabelledScores:
    if n_bad := int((~np.isfinite(data.scores)).any(axis=1).sum()):
        log.warning("%s: %d score rows hold NaN or infinite values; they give no motif candidates", npy_dir, n_bad)
    return data


# ---------------------------------------------------------------------------- who the rows are
def tsv_record_rows(tables: Sequence[tuple[Path, int, np.ndarray | None]], several: bool = False) -> io.RecordRows:
    """Who the rows of TSVs are (``tables``: each TSV's path, rows and labels, in row order): the rows of
    ``records.tsv`` beside them (:func:`m6abert.io.part_records`, checked against them), else each row's
    number as its id (``name:row`` with ``several``, as ``--data_name all`` reads three TSVs)."""
    ids, sites, coords = [], [], []
    for path, n, labels in tables:
        rec = io.part_records(path, n, labels)
        if rec is None:
            names = [f"{Path(path).stem}:{i}" if several else str(i) for i in range(n)]
            rec = io.RecordRows(names, [None] * n, [None] * n)
        ids, sites, coords = ids + rec.ids, sites + rec.sites, coords + rec.coords
    labelled = [labels for _, _, labels in tables]
    y = np.concatenate(labelled) if labelled and all(x is not None for x in labelled) else None
    return io.RecordRows(ids, sites, coords, y)


def read_fasta_rows(path: str | os.PathLike) -> io.RecordRows:
    """The records of a FASTA to score (``visualize_all.py --fasta``), with their sequences: ids (unique),
    labels from ``label=0`` / ``label=1`` header words (all records or none), each window's site by
    :mod:`m6abert.sites` (a ``site=N`` header checked to name an A) and coordinates from the headers."""
    from . import sites as site_rule

    declared, coords, labels = {}, {}, {}
    records = io.read_fasta(path, declared, coords, labels)
    io.check_unique_ids((path, records))
    if labels and len(labels) < len(records):
        first = next(r.id for r in records if r.id not in labels)
        raise InputError(f"{path}: record {first} has no label= in its header, unlike record {next(iter(labels))}; "
                         "label every record (label=1: degraded, label=0: not) or none")
    sites = [site_rule.site_of(r.seq, site_rule.check_declared(r.id, r.seq, declared.get(r.id), path)).index
             for r in records]
    return io.RecordRows([r.id for r in records], sites,
                         [io.placed_coords(coords.get(r.id), len(r.seq), i) for r, i in zip(records, sites, strict=True)],
                         np.asarray([labels[r.id] for r in records], np.int64) if labels else None,
                         [r.seq for r in records])


def fasta_dataset(rows: io.RecordRows, k: int, max_seq_length: int, labelled: bool, path: str) -> LabelledData:
    """A FASTA's records (:func:`read_fasta_rows`) as a data set named by row number; ``labelled``: the rows
    carry labels, those of the headers or, for an unlabelled FASTA, 1 (degraded: the target of attributions)."""
    labels = rows.labels if rows.labels is not None or not labelled else np.ones(len(rows.ids), np.int64)
    data = dataset_from_seqs(rows.seqs, k, labels, max_seq_length, rows.ids, path)
    return data._replace(names=[str(i) for i in range(len(rows.ids))])
