"""Overlapping k-mers and DNABERT's k-mer vocabulary.

This module owns the mapping between nucleotide sequences, k-mer sentences and token ids. The
vocabulary is DNABERT's: the five special tokens followed by every k-mer in
``itertools.product("ATCG", repeat=k)`` order, so checkpoints of DNABERT and of the original
m6A-BERT load unchanged. Encoding whole data sets is vectorised with NumPy.

>>> seq2kmer("ACGUAC", 3)
'ACG CGT GTA TAC'
>>> kmer2seq("ACG CGT GTA TAC")
'ACGTAC'
>>> vocab(3)[:7]
['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'AAA', 'AAT']
>>> encode("CATN", 3).tolist()
[38, 1]
"""

from __future__ import annotations

import itertools
import re
from typing import NamedTuple

import numpy as np

from .constants import BASES

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(5)
KMER_SIZES = (3, 4, 5, 6)

# the one base table: byte -> digit in BASES order; -1 for anything that is not A/C/G/T/U (either case)
_DIGIT = np.full(256, -1, dtype=np.int64)
for _i, _b in enumerate(BASES):
    _DIGIT[ord(_b)] = _DIGIT[ord(_b.lower())] = _i
_DIGIT[ord("U")] = _DIGIT[ord("u")] = BASES.index("T")
_DIGIT8 = _DIGIT.astype(np.int8)  # the same table, one byte per digit


def base_digits(text: str) -> np.ndarray:
    """Digits of the bases of ``text`` in :data:`~m6abert.constants.BASES` order (U as T), -1 for others.

    >>> base_digits("ATCGUn").tolist()
    [0, 1, 2, 3, 1, -1]
    """
    return _DIGIT[np.frombuffer(text.encode("latin-1", "replace"), dtype=np.uint8)]


def check_k(k: int) -> int:
    """Return ``k`` if DNABERT has a vocabulary for it, else raise ``ValueError``."""
    if k not in KMER_SIZES:
        raise ValueError(f"k-mer length must be one of 3, 4, 5, 6, not {k}")
    return k


def vocab(k: int) -> list[str]:
    """DNABERT's vocabulary for ``k``: 5 special tokens then the 4**k k-mers.

    Parameters
    ----------
    k: int
        k-mer length, 3..6.

    Returns
    -------
    tokens: list[str], length 5 + 4**k
        Token ``i`` has id ``i``.
    """
    check_k(k)
    return SPECIAL_TOKENS + ["".join(p) for p in itertools.product(BASES, repeat=k)]


def k_from_vocab_size(size: int) -> int:
    """Invert ``len(vocab(k))``; raise ``ValueError`` for a size no k gives."""
    for k in KMER_SIZES:
        if size == 5 + 4**k:
            return k
    raise ValueError(f"vocabulary size {size} is not DNABERT's for any k in 3..6")


def normalise(seq: str) -> str:
    """Upper-case and read RNA: ``U`` becomes ``T``."""
    return seq.upper().replace("U", "T")


def seq2kmer(seq: str, k: int) -> str:
    """Cut ``seq`` into its ``len(seq)-k+1`` overlapping k-mers, joined by single spaces.

    The sequence is upper-cased and ``U`` read as ``T``; other letters are kept (they become
    ``[UNK]`` when encoded).
    """
    seq = normalise(seq)
    return " ".join(seq[i : i + k] for i in range(len(seq) - k + 1))


def kmer2seq(kmers: str | list[str]) -> str:
    """Rebuild a sequence from overlapping k-mers: the first base of each plus the last k-mer."""
    if isinstance(kmers, str):
        kmers = kmers.split()
    if not kmers:
        return ""
    return "".join(km[0] for km in kmers[:-1]) + kmers[-1]


class Encoded(NamedTuple):
    """The one ragged id store: a data set (TSV, FASTA or pretraining corpus) as one flat id
    array plus row offsets, and where each row came from."""

    ids: np.ndarray  # (total_kmers,) int64 (int32 for corpora) token ids, rows concatenated
    offsets: np.ndarray  # (n_rows + 1,) int64; row i is ids[offsets[i]:offsets[i+1]]
    n_unknown: int  # k-mers that became [UNK]
    sources: np.ndarray | None = None  # (n_rows,) int64, 1-based line/record/row number in the file
    unit: str = "row"  # what ``sources`` counts: "row" (TSV), "line" (corpus) or "record" (FASTA)
    k: int | None = None

    def row(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def source(self, i: int) -> int:
        """The 1-based number of row ``i`` in its file."""
        return int(self.sources[i]) if self.sources is not None else i + 1

    def __len__(self) -> int:
        return len(self.offsets) - 1


def encode_many(seqs: list[str], k: int) -> Encoded:
    """Encode many sequences to k-mer ids at once, without a Python loop per k-mer.

    The ids of every window of the concatenated sequences are built in ``k`` passes over one byte
    of digits per nucleotide, then the windows that lie inside one sequence are kept: about 13
    bytes of memory per nucleotide at the peak (the ids are int64).

    Parameters
    ----------
    seqs: list[str]
        Nucleotide sequences (any case; ``U`` read as ``T``). A k-mer containing any other letter
        becomes ``[UNK]``; a sequence shorter than ``k`` gives no k-mers.
    k: int
        k-mer length, 3..6.

    Returns
    -------
    Encoded
        ``ids`` (total_kmers,), ``offsets`` (n + 1,) and the number of ``[UNK]`` k-mers.
    """
    check_k(k)
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    n_kmers = np.maximum(lengths - k + 1, 0)
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(n_kmers, out=offsets[1:])
    if offsets[-1] == 0:
        return Encoded(np.zeros(0, dtype=np.int64), offsets, 0)
    digits = _DIGIT8[np.frombuffer("".join(seqs).encode("latin-1", "replace"), dtype=np.uint8)]  # total_nt
    m = len(digits) - k + 1  # windows of the concatenation, some across two sequences
    ids = np.zeros(m, dtype=np.int32)
    bad = np.zeros(m, dtype=bool)
    for j in range(k):
        part = digits[j : j + m]
        ids <<= 2
        ids += part
        bad |= part < 0
    del digits
    inside = _window_starts(lengths, n_kmers, m)  # m, bool
    ids, bad = ids[inside], bad[inside]
    out = ids.astype(np.int64)
    del ids
    out += 5
    out[bad] = UNK_ID
    return Encoded(out, offsets, int(bad.sum()))


def _window_starts(lengths: np.ndarray, n_kmers: np.ndarray, m: int) -> np.ndarray:
    """Which of the ``m`` windows of the concatenated sequences start a k-mer inside one sequence."""
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])[n_kmers > 0]
    ends = starts + n_kmers[n_kmers > 0]  # one past each sequence's last k-mer start; never another's start
    marks = np.zeros(m + 1, dtype=np.int8)
    marks[starts] = 1
    marks[ends] = -1
    return np.cumsum(marks[:m], dtype=np.int8) > 0


def encode(seq: str, k: int) -> np.ndarray:
    """Encode one sequence; shape (len(seq)-k+1,), int64."""
    return encode_many([seq], k).ids


# the base table for whole-token lookup: only upper-case A, T, C, G; 4 for any other ([UNK])
_STRICT_DIGIT = np.where(_DIGIT >= 0, _DIGIT, 4).astype(np.uint8)
for _b in "atcgUu":
    _STRICT_DIGIT[ord(_b)] = 4


def encode_regular(lines: list[str], k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Ids (int32) and k-mers per line when every line is k-letter tokens joined by single spaces.

    Decodes the chunk as one byte matrix of shape (tokens, k + 1); None if the layout differs.
    """
    lengths = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
    if ((lengths + 1) % (k + 1)).any():
        return None
    try:
        raw = " ".join([*lines, ""]).encode("ascii")  # a separator after every token
    except UnicodeEncodeError:
        return None
    tokens = np.frombuffer(raw, dtype=np.uint8).reshape(-1, k + 1)  # n_tokens, k+1
    if not (tokens[:, k] == ord(" ")).all():
        return None
    digits = _STRICT_DIGIT[tokens[:, :k]]  # n_tokens, k; 0..3, or 4 for any other byte
    ids = digits[:, 0].astype(np.int32)
    invalid = digits[:, 0].copy()
    for j in range(1, k):
        ids <<= 2
        ids += digits[:, j]
        invalid |= digits[:, j]
    ids += 5
    bad = invalid > 3  # n_tokens
    if bad.any():
        if (tokens[bad, :k] == ord(" ")).any():  # a space inside a token: not the regular layout
            return None
        ids[bad] = UNK_ID
    return ids, (lengths + 1) // (k + 1)


_KMER_TOKEN = re.compile(r"\S+")


def encode_kmer_sentences(sentences: list[str], k: int) -> Encoded:
    """Encode space-separated k-mer sentences (the TSV format) to ids.

    Tokens are looked up whole, as DNABERT's tokenizer does: anything that is not an upper-case
    ACGT k-mer of length ``k`` becomes ``[UNK]``. Sentences of k-letter tokens joined by single
    spaces (what get_input.py writes) are decoded in one vectorised pass.
    """
    fast = encode_regular(sentences, k)
    if fast is not None:
        ids, counts = fast
        offsets = np.zeros(len(sentences) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        ids = ids.astype(np.int64)
        return Encoded(ids, offsets, int((ids == UNK_ID).sum()))
    table = {tok: i for i, tok in enumerate(vocab(k))}
    rows = [s.split() for s in sentences]
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=offsets[1:])
    ids = np.fromiter(
        (table.get(t, UNK_ID) for r in rows for t in r), dtype=np.int64, count=int(offsets[-1])
    )
    return Encoded(ids, offsets, int((ids == UNK_ID).sum()))


def sentence_k(sentence: str) -> int | None:
    """The k-mer length of a k-mer sentence (length of its first token), or None if empty."""
    m = _KMER_TOKEN.search(sentence)
    return len(m.group(0)) if m else None


# ---------------------------------------------------------------------------- k-mer scores -> nucleotides
def kmer_to_nucleotide(token_scores: np.ndarray, k: int, valid: np.ndarray | None = None) -> np.ndarray:
    """Spread k-mer scores to nucleotides: each base gets the mean score of the k-mers covering it.

    Token ``j`` covers nucleotides ``j .. j+k-1``. With ``valid`` only the valid entries count
    (sum and count); without it every entry counts, as the original did for its ``[SEP]`` and
    padding entries. Bases no entry covers get 0.

    Parameters
    ----------
    token_scores: np.ndarray, shape=(N, T)
        One score per k-mer position.
    k: int
        k-mer length.
    valid: np.ndarray or None, shape=(N, T), bool
        Which entries are real k-mers. Default is None (all entries count).

    Returns
    -------
    np.ndarray, shape=(N, T+k-1), float64

    >>> kmer_to_nucleotide(np.array([[1.0, 3.0, 0.0]]), 2).tolist()
    [[1.0, 2.0, 1.5, 0.0]]
    >>> kmer_to_nucleotide(np.array([[1.0, 3.0, 0.0]]), 2, np.array([[True, True, False]])).tolist()
    [[1.0, 2.0, 3.0, 0.0]]
    """
    scores = np.asarray(token_scores, dtype=np.float64)
    n, t = scores.shape
    weight = np.ones((n, t)) if valid is None else np.asarray(valid, dtype=np.float64)
    sums = np.zeros((n, t + k - 1))
    counts = np.zeros((n, t + k - 1))
    for off in reversed(range(k)):  # adds the covering k-mers left to right, as the original's loop
        sums[:, off : off + t] += scores * weight
        counts[:, off : off + t] += weight
    return np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)


def l2_normalise(scores: np.ndarray) -> np.ndarray:
    """Divide each row by its L2 norm; an all-zero row stays zero (the original gave NaN)."""
    norm = np.linalg.norm(scores, axis=1, keepdims=True)  # N, 1
    return np.divide(scores, norm, out=np.zeros_like(scores, dtype=np.float64), where=norm > 0)
