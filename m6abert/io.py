"""Every file format of the toolkit is read and written here, and nowhere else.

FASTA input, the ``seq<TAB>label`` TSVs (CRLF, as the original wrote them), line-by-line
pretraining corpora, JSON run records, NumPy arrays and Hugging Face checkpoint folders.
Writers are atomic: data goes to a temporary name in the target directory and is renamed into
place, so an interrupted run never leaves a half-written file that looks complete.
Readers validate and raise :class:`~m6abert.utils.InputError` naming the file, record and problem.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .utils import InputError

ALLOWED_LETTERS = frozenset("ACGTUN")


class FastaRecord(NamedTuple):
    """One FASTA record: the first word of its header and its upper-cased sequence."""

    id: str
    seq: str


# ---------------------------------------------------------------------------- atomic writing
@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files private; follow the umask instead
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
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
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
    from . import __version__

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


# ---------------------------------------------------------------------------- text input
def _read_text(path: Path, what: str) -> str:
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


def read_fasta(path: str | os.PathLike) -> list[FastaRecord]:
    """Read and validate a FASTA file.

    Sequences may span lines; they are upper-cased (``U`` is kept here, and read as ``T`` when
    k-merised). Every letter must be one of ACGTUN.

    Parameters
    ----------
    path: str or PathLike
        The FASTA file.

    Returns
    -------
    records: list[FastaRecord]
        In file order.

    Raises
    ------
    InputError
        Missing, empty, binary or non-FASTA file; a record without sequence; an illegal letter.
    """
    path = Path(path)
    text = _read_text(path, "FASTA file")
    records: list[FastaRecord] = []
    header: str | None = None
    chunks: list[str] = []

    def close(lineno: int) -> None:
        records.append(_fasta_record(path, header, chunks, lineno, len(records) + 1))

    start = 0
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith(">"):
            if header is not None:
                close(start)
            header, chunks, start = line[1:].strip(), [], lineno
        elif header is None:
            raise InputError(f"{path}: line {lineno}: not FASTA (expected a '>' header line first)")
        else:
            chunks.append("".join(line.split()))
    if header is None:
        raise InputError(f"{path}: no FASTA records")
    close(start)
    return records


class LabelledTsv(NamedTuple):
    """A ``seq<TAB>label`` file: k-mer sentences and labels (None when the file has no labels)."""

    sentences: list[str]
    labels: np.ndarray | None  # (n,) int64 in {0, 1}


def read_tsv(path: str | os.PathLike, require_labels: bool = True) -> LabelledTsv:
    """Read a ``seq<TAB>label`` TSV as get_input.py writes it.

    The first row is a header unless its label column is a number (or, in a one-column file, it
    looks like k-mers): a header-less file keeps its first example, unlike the original, which
    always dropped row 0; a bad label number is reported.

    Parameters
    ----------
    path: str or PathLike
        The TSV (LF or CRLF line endings).
    require_labels: bool
        If False, a one-column file (sequences only) is accepted and ``labels`` is None.
        Default is True.

    Raises
    ------
    InputError
        Missing or empty file, rows without the ``seq<TAB>label`` shape, labels outside {0, 1}.
    """
    path = Path(path)
    text = _read_text(path, "TSV file")
    rows = [line.split("\t") for line in text.splitlines()]
    first = rows[0]
    if len(first) == 2:
        header = not first[1].strip().lstrip("+-").isdigit()
    else:  # one column: a header has letters that no k-mer sentence has
        header = bool(re.search(r"[^ACGTNacgtn \r]", first[0]))
    if header:
        rows = rows[1:]
    while rows and rows[-1] == [""]:
        rows.pop()
    if not rows:
        raise InputError(f"{path}: no data rows after the header")
    ncol = len(rows[0])
    if ncol != 2 and not (ncol == 1 and not require_labels):
        raise InputError(f"{path}: row 1: expected 2 tab-separated columns (seq, label), found {ncol}")
    sentences, labels = [], []
    for i, row in enumerate(rows, 1):
        if len(row) != ncol:
            raise InputError(f"{path}: row {i}: expected {ncol} tab-separated columns, found {len(row)}")
        if not row[0].strip():
            raise InputError(f"{path}: row {i}: empty sequence")
        sentences.append(row[0].strip())
        if ncol == 2:
            lab = row[1].strip()
            if lab not in ("0", "1"):
                raise InputError(f"{path}: row {i}: label {lab!r} is not 0 or 1")
            labels.append(int(lab))
    return LabelledTsv(sentences, np.asarray(labels, dtype=np.int64) if ncol == 2 else None)


def tsv_text(sentences: list[str], labels: list[int] | np.ndarray) -> str:
    """The exact bytes of the original's TSVs (as text): header, ``seq\\tlabel`` rows, CRLF."""
    lines = ["seq\tlabel"] + [f"{s}\t{int(y)}" for s, y in zip(sentences, labels, strict=True)]
    return "\r\n".join(lines) + "\r\n"


def write_tsv(path: str | os.PathLike, sentences: list[str], labels: list[int] | np.ndarray) -> None:
    """Write a ``seq<TAB>label`` TSV exactly as the original's ``csv.writer`` did (CRLF)."""
    write_text(path, tsv_text(sentences, labels), newline="")


def read_lines(path: str | os.PathLike, what: str = "corpus") -> list[str]:
    """Non-empty lines of a text file (a line-by-line pretraining corpus)."""
    path = Path(path)
    lines = [ln.strip() for ln in _read_text(path, what).splitlines()]
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


# ---------------------------------------------------------------------------- checkpoints
TOKENIZER_CONFIG = {
    "do_lower_case": False,
    "model_max_length": 512,
    "max_len": 512,  # read by the original DNATokenizer
    "tokenizer_class": "BertTokenizer",
}
SPECIAL_TOKENS_MAP = {
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}
WEIGHTS_SAFE, WEIGHTS_BIN = "model.safetensors", "pytorch_model.bin"


class Checkpoint(NamedTuple):
    """What a checkpoint folder holds, read without building a model."""

    path: Path
    config: dict  # config.json
    state_dict: dict  # name -> tensor
    k: int  # from vocab.txt (or config vocab_size when vocab.txt is absent)
    original_format: bool  # weights came from an original DNABERT/m6A-BERT pytorch_model.bin


def write_tokenizer_files(folder: str | os.PathLike, k: int) -> None:
    """Write DNABERT's ``vocab.txt`` for ``k`` and a tokenizer config that transformers loads as-is.

    ``AutoTokenizer.from_pretrained(folder)`` then gives exactly the ids of :mod:`m6abert.kmer`
    for space-separated k-mers (``do_lower_case`` is false: a true value maps every k-mer to [UNK]).
    """
    from .kmer import vocab

    folder = Path(folder)
    write_text(folder / "vocab.txt", "\n".join(vocab(k)) + "\n")
    write_json(folder / "tokenizer_config.json", TOKENIZER_CONFIG)
    write_json(folder / "special_tokens_map.json", SPECIAL_TOKENS_MAP)


def save_checkpoint(
    folder: str | os.PathLike, model, k: int, state: dict | None = None, extra_json: dict | None = None
) -> None:
    """Save a Hugging Face checkpoint folder atomically: complete or absent.

    Parameters
    ----------
    folder: str or PathLike
        Target folder (replaced if it exists).
    model: transformers.PreTrainedModel
        Saved with ``save_pretrained`` as ``config.json`` + ``model.safetensors``.
    k: int
        k-mer length, for ``vocab.txt`` and the tokenizer files.
    state: dict or None
        Training state: ``{file name: object}`` saved with ``torch.save`` (tensors, numbers,
        strings, lists and dicts only, so it loads with ``weights_only=True``). Default is None.
    extra_json: dict or None
        ``{file name: JSON object}`` written too (e.g. ``trainer_state.json``). Default is None.
    """
    import torch

    _quiet_transformers()
    with atomic_dir(folder) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        write_tokenizer_files(tmp, k)
        for name, obj in (state or {}).items():
            torch.save(obj, tmp / name)
        for name, obj in (extra_json or {}).items():
            write_json(tmp / name, obj)


def _quiet_transformers() -> None:
    """No "Writing model shards" progress bar for every checkpoint."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def load_torch_file(path: str | os.PathLike, what: str = "file"):
    """``torch.load`` with ``weights_only=True``: tensors and plain containers, never arbitrary objects."""
    import pickle
    import warnings

    import torch

    path = Path(path)
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of files it then refuses
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except pickle.UnpicklingError as err:
        raise InputError(
            f"{path}: refusing to load {what}: it holds objects other than tensors ({_unpickling_reason(err)})"
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError) as err:
        raise InputError(f"{path}: corrupt {what} ({str(err).splitlines()[0][:160]})") from None


def _unpickling_reason(err: Exception) -> str:
    """The line of torch's weights-only refusal that says what the pickle holds, without its advice."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    detail = [ln.split("WeightsUnpickler error:", 1)[1].strip() if "WeightsUnpickler error:" in ln else ln
              for ln in lines[1:] if not ln.startswith("Check the documentation")]
    reason = " ".join(d for d in detail if d)
    return (reason or (lines[0] if lines else "unsafe pickle"))[:160]


def read_checkpoint(folder: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint folder written by this toolkit, DNABERT or the original m6A-BERT.

    ``model.safetensors`` is preferred; an original ``pytorch_model.bin`` is read with
    ``torch.load(weights_only=True)``, so a pickle that would run code is refused. Files such as
    ``training_args.bin`` are never opened.

    Raises
    ------
    InputError
        Missing folder, missing or corrupt ``config.json``, missing, corrupt or unsafe weights, a
        ``vocab.txt`` that is not DNABERT's.
    """
    from .kmer import k_from_vocab_size, vocab

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: checkpoint folder not found")
    config = read_json(folder / "config.json", "checkpoint config.json")
    k = None
    if (folder / "vocab.txt").exists():
        tokens = [t.rstrip("\r") for t in (folder / "vocab.txt").read_text(encoding="utf-8").split("\n")]
        while tokens and not tokens[-1]:
            tokens.pop()
        try:
            k = k_from_vocab_size(len(tokens))
        except ValueError:
            raise InputError(f"{folder / 'vocab.txt'}: {len(tokens)} tokens is not a DNABERT vocabulary") from None
        if tokens != vocab(k):
            raise InputError(f"{folder / 'vocab.txt'}: token order differs from DNABERT's dna{k} vocabulary")
    try:
        vsize = int(config["vocab_size"])
        k_cfg = k_from_vocab_size(vsize)
    except (KeyError, ValueError, TypeError):
        raise InputError(f"{folder / 'config.json'}: vocab_size is missing or not DNABERT's (69/261/1029/4101)") from None
    if k is not None and k != k_cfg:
        raise InputError(f"{folder}: vocab.txt is for k={k} but config.json vocab_size is for k={k_cfg}")
    if (folder / WEIGHTS_SAFE).exists():
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(folder / WEIGHTS_SAFE)
        except (SafetensorError, OSError, RuntimeError) as err:
            raise InputError(f"{folder / WEIGHTS_SAFE}: corrupt weights ({str(err)[:160]})") from None
        original = False
    elif (folder / WEIGHTS_BIN).exists():
        state = load_torch_file(folder / WEIGHTS_BIN, "checkpoint weights")
        if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
            raise InputError(f"{folder / WEIGHTS_BIN}: not a state dict of tensors")
        original = True
    else:
        raise InputError(f"{folder}: no {WEIGHTS_SAFE} or {WEIGHTS_BIN} in the checkpoint folder")
    return Checkpoint(folder, config, state, k_cfg, original)


def save_model_files(folder: str | os.PathLike, model, k: int) -> None:
    """Save the final model into an existing run folder, file by file atomically.

    Unlike :func:`save_checkpoint` the folder itself is kept (it holds the run's checkpoints).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _quiet_transformers()
    tmp = Path(tempfile.mkdtemp(prefix=".final.", suffix=".tmp", dir=folder))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        write_tokenizer_files(tmp, k)
        for f in tmp.iterdir():
            os.chmod(f, 0o666 & ~_umask())
            os.replace(f, folder / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------- motifs
SCORE_FILE_STEMS = {"attn": "atten", "attr": "attributions"}


def load_score_matrix(path: str | os.PathLike, what: str = "score array") -> np.ndarray:
    """Load per-nucleotide scores (``atten_*.npy``, ``attributions_*.npy``) as float64 (n, W).

    Raises
    ------
    InputError
        Missing file, not a NumPy array, not 2-D or not numeric.
    """
    if Path(path).is_dir():
        raise InputError(f"{path}: is a directory, expected a {what} (.npy)")
    arr = load_npy(path)
    if arr.ndim != 2:
        raise InputError(f"{path}: expected a 2-D {what} (sequences x positions), found shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(f"{path}: {what} has dtype {arr.dtype}, expected numbers")
    return arr.astype(np.float64, copy=False)


class LabelledScores(NamedTuple):
    """Sequences, labels and score rows of one or more data sets, row-aligned."""

    seqs: list[str]
    labels: np.ndarray  # (n,) int64
    scores: np.ndarray  # (n, W) float64


def read_labelled_scores(
    data_dir: str | os.PathLike, npy_dir: str | os.PathLike, data_name: str, vis_task: str
) -> LabelledScores:
    """Read ``{name}.tsv`` with its ``{atten|attributions}_{name}.npy`` and check they belong together.

    Sequences are rebuilt from the k-mer sentences. ``data_name="all"`` reads train, dev and
    test and concatenates them in that order (TSV rows and score rows alike).

    Parameters
    ----------
    data_dir, npy_dir: str or PathLike
        Folders of the TSVs and of the score arrays.
    data_name: str
        TSV stem (``train``, ``dev``, ``test``) or ``all``.
    vis_task: str
        ``attn`` (``atten_*.npy``) or ``attr`` (``attributions_*.npy``).

    Raises
    ------
    InputError
        A missing or malformed file, a row-count mismatch, scores narrower than the
        sequences, or score widths that differ between the sets of "all".
    """
    from .kmer import kmer2seq
    from .utils import log

    if vis_task not in SCORE_FILE_STEMS:
        raise InputError(f"vis_task must be 'attn' or 'attr', not {vis_task!r}")
    parts = []
    for name in ("train", "dev", "test") if data_name == "all" else (data_name,):
        tsv_path = Path(data_dir) / f"{name}.tsv"
        npy_path = Path(npy_dir) / f"{SCORE_FILE_STEMS[vis_task]}_{name}.npy"
        scores = load_score_matrix(npy_path)
        table = read_tsv(tsv_path)
        _check_kmer_sentences(table.sentences, tsv_path)
        seqs = [kmer2seq(s) for s in table.sentences]
        if scores.shape[0] != len(seqs):
            raise InputError(f"{npy_path}: {scores.shape[0]} score rows, but {tsv_path} has {len(seqs)} sequences")
        longest = max(len(s) for s in seqs)
        if scores.shape[1] < longest:
            raise InputError(
                f"{npy_path}: scores are {scores.shape[1]} positions wide, "
                f"shorter than the {longest}-nt sequences of {tsv_path}"
            )
        parts.append((seqs, table.labels, scores))
    widths = sorted({p[2].shape[1] for p in parts})
    if len(widths) > 1:
        raise InputError(f"{npy_dir}: score widths differ between train, dev and test ({widths})")
    scores = np.concatenate([p[2] for p in parts])
    n_bad = int((~np.isfinite(scores)).any(axis=1).sum())
    if n_bad:
        log.warning("%s: %d score rows hold NaN or infinite values; they give no motif candidates", npy_dir, n_bad)
    return LabelledScores([s for p in parts for s in p[0]], np.concatenate([p[1] for p in parts]), scores)


def _check_kmer_sentences(sentences: list[str], path: Path) -> None:
    """Raise on letters other than A, C, G, T, N, or k-mers of different lengths in one row.

    Either would make :func:`~m6abert.kmer.kmer2seq` rebuild a wrong sequence without a word.
    """
    import re

    illegal = re.compile(r"[^ACGTN ]")
    for i, s in enumerate(sentences, 1):
        bad = illegal.search(s)
        if bad:
            raise InputError(f"{path}: row {i}: illegal letter {bad.group(0)!r} in the k-mers (allowed: A, C, G, T, N)")
        lengths = {len(t) for t in s.split()}
        if len(lengths) > 1:
            first = len(s.split(maxsplit=1)[0])
            other = next(n for n in map(len, s.split()) if n != first)
            raise InputError(f"{path}: row {i}: k-mers of length {first} and {other} in one row (a damaged k-mer sentence)")


def write_motif_outputs(
    save_dir: str | os.PathLike,
    motifs: list,
    site_index: int = 250,
    prefix: str = "",
    set_name: str | None = None,
) -> list[Path]:
    """Write motif search results: one text file per motif, a TSV summary and a JSON record.

    Files (``S = "_" + set_name`` or nothing):

    * ``[set_name/]{prefix}motif_{MOTIF}_{N}.txt``: the N window sequences, one per line ("\\n"),
      as the original wrote them;
    * ``{prefix}motifs{S}.tsv``: columns motif, consensus (the windows' conserved core), instances,
      p_value, p_adjusted, positions
      (instance starts relative to the m6A site, ``start - site_index``, comma-separated);
    * ``{prefix}motifs{S}.json``: ``{"site_index": ..., "motifs": {MOTIF: {...}}}`` with every
      field of each motif (replaces the original's pickle).

    Parameters
    ----------
    save_dir: str or PathLike
        Output folder (created).
    motifs: list[m6abert.motifs.Motif]
        In the order to report them.
    site_index: int
        Sequence index of the m6A site. Default is 250.
    prefix: str
        Prepended to every file name. Default is "".
    set_name: str or None
        ``pos``/``neg``: motif files go to ``save_dir/set_name/`` and the tables are named
        ``motifs_{set_name}``. Default is None.

    Returns
    -------
    list[Path]
        The files written.
    """
    save = Path(save_dir)
    motif_dir = save / set_name if set_name else save
    tag = f"_{set_name}" if set_name else ""
    written: list[Path] = []
    from .motifs import consensus

    rows = ["motif\tconsensus\tinstances\tp_value\tp_adjusted\tpositions"]
    record: dict[str, dict] = {}
    for m in motifs:
        path = motif_dir / f"{prefix}motif_{m.motif}_{m.n_instances}.txt"
        write_text(path, "".join(s + "\n" for s in m.seqs))
        written.append(path)
        positions = [int(start) - site_index for start, _ in m.regions]
        rows.append(
            f"{m.motif}\t{consensus(m.seqs)}\t{m.n_instances}\t{float(m.p_value):.6g}\t{float(m.p_adjusted):.6g}\t"
            + ",".join(map(str, positions))
        )
        record[m.motif] = {
            "consensus": consensus(m.seqs),
            "n_instances": int(m.n_instances),
            "p_value": float(m.p_value),
            "p_adjusted": float(m.p_adjusted),
            "seq_idx": [int(i) for i in m.seq_idx],
            "regions": [[int(s), int(e)] for s, e in m.regions],
            "positions": positions,
            "windows": [[int(s), int(e)] for s, e in m.windows],
            "seqs": list(m.seqs),
        }
    table, js = save / f"{prefix}motifs{tag}.tsv", save / f"{prefix}motifs{tag}.json"
    write_text(table, "\n".join(rows) + "\n")
    write_json(js, {"site_index": site_index, "motifs": record})
    return [*written, table, js]


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


# ---------------------------------------------------------------------------- pretraining corpus
CORPUS_CHUNK_BYTES = 1 << 24  # about 16 MiB of text per chunk of a streamed file


class CorpusChunk(NamedTuple):
    """Consecutive non-empty lines of a line-by-line corpus (stripped) and where they are."""

    lines: list[str]
    line_numbers: np.ndarray  # (n,) int64, 1-based line numbers in the file


def _line_blocks(path: Path, what: str, chunk_bytes: int) -> Iterator[tuple[int, list[str]]]:
    """Blocks of about ``chunk_bytes`` of lines as ``(number of the first line, lines)``.

    Checks what :func:`_read_text` checks (a folder, a missing file, NUL bytes, UTF-8) without
    holding the whole file in memory.
    """
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a {what}")
    try:
        fh = open(path, encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read {what} ({err.strerror})") from None
    lineno = 0
    with fh:
        while True:
            try:
                block = fh.readlines(chunk_bytes)
            except UnicodeDecodeError:
                raise InputError(f"{path}: not UTF-8 text after line {lineno}, expected a {what}") from None
            except OSError as err:
                raise InputError(f"{path}: cannot read {what} ({err.strerror})") from None
            if not block:
                return
            if any("\0" in line for line in block):
                raise InputError(f"{path}: binary file, expected a {what}")
            n = len(block)  # the consumer may shrink the list in place
            yield lineno + 1, block
            lineno += n


def iter_corpus_chunks(
    path: str | os.PathLike, chunk_bytes: int = CORPUS_CHUNK_BYTES, what: str = "corpus"
) -> Iterator[CorpusChunk]:
    """Stream a line-by-line pretraining corpus (one k-mer sentence per line) in chunks.

    The same lines as :func:`read_lines` (non-empty, stripped), but about ``chunk_bytes`` of
    text at a time, so a corpus of millions of lines is tokenised chunk by chunk without a
    Python string per line for the whole file.

    Parameters
    ----------
    path: str or PathLike
        The corpus (``get_input.py --task pretrain`` writes ``pre/{k}.txt``; LF or CRLF).
    chunk_bytes: int
        Approximate characters of text per chunk. Default is 16 MiB.
    what: str
        What the file is, for error messages. Default is "corpus".

    Yields
    ------
    CorpusChunk
        ``lines`` and their 1-based ``line_numbers``, shape=(n,).

    Raises
    ------
    InputError
        Missing, unreadable, binary, non-UTF-8 or empty (no non-blank line) file.
    """
    path = Path(path)
    empty = True
    for first, block in _line_blocks(path, what, chunk_bytes):
        numbers, kept = [], 0
        for lineno, line in enumerate(block, first):  # strip in place: one copy of the text
            line = line.strip()
            if line:
                block[kept] = line
                kept += 1
                numbers.append(lineno)
        del block[kept:]
        if kept:
            empty = False
            yield CorpusChunk(block, np.asarray(numbers, dtype=np.int64))
    if empty:
        raise InputError(f"{path}: empty {what}")


def _fasta_record(path: Path, header: str, chunks: list[str], lineno: int, number: int) -> FastaRecord:
    """Validate one record as :func:`read_fasta` does (``number`` is its 1-based position)."""
    seq = "".join(chunks).upper()
    rid = header.split()[0] if header.split() else f"#{number}"
    if not seq:
        raise InputError(f"{path}: record {rid} (line {lineno}): empty sequence")
    bad = set(seq) - ALLOWED_LETTERS
    if bad:
        letter = min(bad, key=seq.index)
        raise InputError(
            f"{path}: record {rid}: illegal letter {letter!r} at position {seq.index(letter) + 1}"
            " (allowed: A, C, G, T, U, N)"
        )
    return FastaRecord(rid, seq)


def iter_fasta_chunks(path: str | os.PathLike, chunk_records: int = 10_000) -> Iterator[list[FastaRecord]]:
    """Stream a FASTA file as lists of at most ``chunk_records`` records, in file order.

    The records and checks of :func:`read_fasta`, in bounded memory (pretraining FASTAs are large).

    Raises
    ------
    InputError
        Missing, empty, binary or non-FASTA file; a record without sequence; an illegal letter.
    """
    path = Path(path)
    batch: list[FastaRecord] = []
    header: str | None = None
    chunks: list[str] = []
    start = number = 0
    for first, block in _line_blocks(path, "FASTA file", CORPUS_CHUNK_BYTES):
        for lineno, line in enumerate(block, first):
            line = line.strip()
            if not line:
                continue
            if line.startswith(">"):
                if header is not None:
                    number += 1
                    batch.append(_fasta_record(path, header, chunks, start, number))
                    if len(batch) >= chunk_records:
                        yield batch
                        batch = []
                header, chunks, start = line[1:].strip(), [], lineno
            elif header is None:
                raise InputError(f"{path}: line {lineno}: not FASTA (expected a '>' header line first)")
            else:
                chunks.append("".join(line.split()))
    if header is None:
        raise InputError(f"{path}: empty FASTA file")
    batch.append(_fasta_record(path, header, chunks, start, number + 1))
    yield batch
