"""Hugging Face checkpoint folders: written atomically, read without unpickling objects.

Every file of a saved folder follows the umask (``save_pretrained`` alone leaves
``model.safetensors`` private); every file read is checked first: a folder, a symlink loop or a
file that is not UTF-8 where text is expected is an ``InputError`` naming it. A folder holds
DNABERT's ``vocab.txt`` (what this toolkit and the original read) and a ``tokenizer.json`` with
which ``AutoTokenizer`` cuts raw sequences into k-mers; an exported classifier also a model card.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from ..utils import InputError
from .files import atomic_dir, current_umask, read_text_file, temp_prefix, write_json, write_text

# ---------------------------------------------------------------------------- checkpoints
TOKENIZER_CONFIG = {
    "do_lower_case": False,
    "model_max_length": 512,
    "max_len": 512,  # read by the original DNATokenizer
    # loads tokenizer.json as it is (a BertTokenizer would rebuild its own pipeline and read a raw sequence
    # as one [UNK]); transformers 4 and 5 know the name, no trust_remote_code
    "tokenizer_class": "PreTrainedTokenizerFast",
    "model_input_names": ["input_ids", "token_type_ids", "attention_mask"],
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
    """Write DNABERT's ``vocab.txt`` for ``k``, and a ``tokenizer.json`` with its config for transformers.

    This toolkit, DNABERT and the original m6A-BERT read ``vocab.txt`` only.
    ``AutoTokenizer.from_pretrained(folder)`` loads ``tokenizer.json`` (:func:`kmer_tokenizer_json`):
    space-separated k-mers and raw sequences both get exactly the ids of :mod:`m6abert.kmer`.
    """
    from ..kmer import vocab

    folder = Path(folder)
    write_text(folder / "vocab.txt", "\n".join(vocab(k)) + "\n")
    write_text(folder / "tokenizer.json", kmer_tokenizer_json(k))
    write_json(folder / "tokenizer_config.json", TOKENIZER_CONFIG)
    write_json(folder / "special_tokens_map.json", SPECIAL_TOKENS_MAP)


def kmer_tokenizer_json(k: int) -> str:
    """A Hugging Face ``tokenizers`` pipeline that cuts a raw sequence into its overlapping k-mers.

    Its normaliser rewrites the text with regex replacements only (built-in, so transformers loads it
    without ``trust_remote_code``): lower case, U as T, any other letter as N; a word shorter than k
    becomes ``[UNK]``. Then k rounds of five zero-width replacements, one per letter X: round 0 opens a
    slot (``|X``) before every letter that starts k letters of its word, round r appends X to the slot
    before a letter whose r-th next letter is X (slots are upper case, so the look-ahead skips them).
    Last, the lower-case letters are deleted and the slots become words. A space-separated k-mer
    is a word of exactly k letters and comes out unchanged, so k-mer sentences tokenise as before;
    whitespace separates sequences. The words are looked up in DNABERT's vocabulary (a k-mer with
    an N is ``[UNK]``, as :func:`m6abert.kmer.encode` has it) and framed by [CLS] ... [SEP].

    >>> from tokenizers import Tokenizer
    >>> tok = Tokenizer.from_str(kmer_tokenizer_json(3))
    >>> tok.encode("acguAC").tokens, tok.encode("ACG CGT GTA TAC").tokens == tok.encode("ACGTAC").tokens
    (['[CLS]', 'ACG', 'CGT', 'GTA', 'TAC', '[SEP]'], True)
    """
    from tokenizers import AddedToken, Regex, Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel

    from ..kmer import SPECIAL_TOKENS, check_k, vocab

    check_k(k)
    ids = {token: i for i, token in enumerate(vocab(k))}
    tok = Tokenizer(WordLevel(ids, unk_token="[UNK]"))
    rep = normalizers.Replace
    steps = [normalizers.Lowercase(), rep("u", "t"), rep(Regex(r"[^acgt\s]"), "n"),
             rep(Regex(f"(?<![acgtn])[acgtn]{{1,{k - 1}}}(?![acgtn])"), " [UNK] ")]
    for r in range(k):
        for x in "acgtn":
            if r == 0:  # x starts k letters of its word (slots opened before them are skipped)
                pattern, content = f"(?={x}(?:\\|?[ACGTN]*[acgtn]){{{k - 1}}})", "|" + x.upper()
            else:  # after a slot, before a letter whose r-th next letter is x
                pattern, content = f"(?<=[ACGTN])(?=(?:[acgtn]\\|?[ACGTN]*){{{r}}}{x})", x.upper()
            steps.append(rep(Regex(pattern), content))
    steps += [rep(Regex("[acgtn]"), ""), rep("|", " ")]
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    cls, sep = SPECIAL_TOKENS_MAP["cls_token"], SPECIAL_TOKENS_MAP["sep_token"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1",
        special_tokens=[(cls, ids[cls]), (sep, ids[sep])])
    return tok.to_str()


def save_checkpoint(
    folder: str | os.PathLike, model, k: int | None, state: dict | None = None, extra_json: dict | None = None
) -> None:
    """Save a Hugging Face checkpoint folder atomically: complete or absent.

    Parameters
    ----------
    folder: str or PathLike
        Target folder (replaced if it exists).
    model: transformers.PreTrainedModel
        Saved with ``save_pretrained`` as ``config.json`` + ``model.safetensors``.
    k: int or None
        k-mer length, for ``vocab.txt`` and the tokenizer files; None for a model that reads no
        k-mers (the CNN+LSTM): no tokenizer files.
    state: dict or None
        Training state: ``{file name: object}`` saved with ``torch.save`` (tensors, numbers,
        strings, lists and dicts only, so it loads with ``weights_only=True``). Default is None.
    extra_json: dict or None
        ``{file name: JSON object}`` written too (e.g. ``trainer_state.json``). Default is None.
    """
    import torch

    with quiet_transformers(), atomic_dir(folder) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        if k is not None:
            write_tokenizer_files(tmp, k)
        for name, obj in (state or {}).items():
            torch.save(obj, tmp / name)
        for name, obj in (extra_json or {}).items():
            write_json(tmp / name, obj)
        follow_umask(tmp)


def follow_umask(folder: str | os.PathLike) -> None:
    """Give every file below ``folder`` the mode the umask gives new files (``0o666 & ~umask``).

    ``save_pretrained`` writes ``model.safetensors`` as 0600 whatever the umask; a group-shared
    project folder needs it readable like the other files.
    """
    file_mode, dir_mode = 0o666 & ~current_umask(), 0o777 & ~current_umask()
    for root, dirs, files in os.walk(folder):
        for name in files:
            os.chmod(os.path.join(root, name), file_mode)
        for name in dirs:
            os.chmod(os.path.join(root, name), dir_mode)


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """No "Writing model shards" progress bar while a model is saved; the caller's setting is restored."""
    from transformers.utils import logging as hf_logging

    was_disabled = hf_logging.is_progress_bar_enabled() is False
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if not was_disabled:
            hf_logging.enable_progress_bar()


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


def read_config(path: str | os.PathLike, what: str) -> dict:
    """A JSON object from a UTF-8 file; a missing, unreadable (folder, symlink loop), binary,
    non-UTF-8, empty or malformed file, or one that holds no object, is an ``InputError``."""
    path = Path(path)
    text = read_text_file(path, what)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: {what} is not valid JSON ({err})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}: {what} must hold a JSON object")
    return obj


def _present(path: Path, what: str) -> bool:
    """Whether ``path`` is there (a broken or looping symlink counts, and is refused as unreadable)."""
    if not os.path.lexists(path):
        return False
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a {what}")
    try:
        os.stat(path)
    except OSError as err:
        raise InputError(f"{path}: cannot read {what} ({err.strerror})") from None
    return True


def _read_vocab_k(path: Path) -> int:
    """k of a DNABERT ``vocab.txt``, which must hold exactly DNABERT's tokens in DNABERT's order."""
    from ..kmer import k_from_vocab_size, vocab

    tokens = [t.rstrip("\r") for t in read_text_file(path, "k-mer vocabulary").split("\n")]
    while tokens and not tokens[-1]:
        tokens.pop()
    try:
        k = k_from_vocab_size(len(tokens))
    except ValueError:
        raise InputError(f"{path}: {len(tokens)} tokens is not a DNABERT vocabulary") from None
    if tokens != vocab(k):
        raise InputError(f"{path}: token order differs from DNABERT's dna{k} vocabulary")
    return k


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
    from ..kmer import k_from_vocab_size

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: checkpoint folder not found")
    config = read_config(folder / "config.json", "checkpoint config.json")
    k = _read_vocab_k(folder / "vocab.txt") if _present(folder / "vocab.txt", "k-mer vocabulary") else None
    try:
        vsize = int(config["vocab_size"])
        k_cfg = k_from_vocab_size(vsize)
    except (KeyError, ValueError, TypeError):
        raise InputError(f"{folder / 'config.json'}: vocab_size is missing or not DNABERT's (69/261/1029/4101)") from None
    if k is not None and k != k_cfg:
        raise InputError(f"{folder}: vocab.txt is for k={k} but config.json vocab_size is for k={k_cfg}")
    if _present(folder / WEIGHTS_SAFE, "weights file"):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(folder / WEIGHTS_SAFE)
        except (SafetensorError, OSError, RuntimeError) as err:
            raise InputError(f"{folder / WEIGHTS_SAFE}: corrupt weights ({str(err)[:160]})") from None
        original = False
    elif _present(folder / WEIGHTS_BIN, "weights file"):
        state = load_torch_file(folder / WEIGHTS_BIN, "checkpoint weights")
        if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
            raise InputError(f"{folder / WEIGHTS_BIN}: not a state dict of tensors")
        original = True
    else:
        raise InputError(f"{folder}: no {WEIGHTS_SAFE} or {WEIGHTS_BIN} in the checkpoint folder")
    return Checkpoint(folder, config, state, k_cfg, original)


def model_identity(folder: str | os.PathLike) -> str:
    """The identity of a checkpoint's model: the SHA-256 (hex) of its ``config.json`` bytes and of its
    weights file's bytes (``model.safetensors``, else ``pytorch_model.bin``, as :func:`read_checkpoint`
    prefers them), each preceded by its name and size.

    Recorded in every output computed with a model (shards, score records, run JSONs), so that
    results of different models are never mixed: a path says nothing once a model is retrained in
    place or copied. The weights are streamed in blocks (a BERT-base file hashes in about a second).
    """
    import hashlib

    folder = Path(folder)
    weights = folder / (WEIGHTS_SAFE if os.path.lexists(folder / WEIGHTS_SAFE) else WEIGHTS_BIN)
    h = hashlib.sha256()
    for path in (folder / "config.json", weights):
        try:
            with open(path, "rb") as fh:
                h.update(f"{path.name}\0{os.fstat(fh.fileno()).st_size}\0".encode())
                for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    h.update(block)
        except OSError as err:
            raise InputError(f"{path}: cannot read the model file ({err.strerror or err})") from None
    return h.hexdigest()


def save_model_files(folder: str | os.PathLike, model, k: int) -> None:
    """Save the final model into an existing run folder, file by file atomically.

    Unlike :func:`save_checkpoint` the folder itself is kept (it holds the run's checkpoints).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix("final"), suffix=".tmp", dir=folder))
    try:
        with quiet_transformers():
            model.save_pretrained(tmp, safe_serialization=True)
        write_tokenizer_files(tmp, k)
        follow_umask(tmp)
        for f in tmp.iterdir():
            os.replace(f, folder / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


CARD_METRICS = ("auc", "acc", "f1", "mcc", "precision", "recall", "aupr", "loss")


def write_model_card(folder: str | os.PathLike, card: dict) -> None:
    """Write ``README.md``, the Hugging Face model card of an exported classifier.

    ``card`` holds ``k``, ``version`` (m6abert's), ``base_model``, ``labels`` (class names by id),
    ``data`` (``[(split, path, rows)]``), ``exported`` (``{"step", "checkpoint", "selected_by"}``),
    ``global_step`` and ``metrics`` (``{column title: {metric: value} or None}``).
    """
    k, folder = card["k"], Path(folder)
    ex = card["exported"]
    where = f" ({ex['checkpoint']})" if ex.get("checkpoint") else ""
    columns = {title: m for title, m in card["metrics"].items() if m}
    lines = ["---", "library_name: transformers", "pipeline_tag: text-classification",
             "tags:", "- m6abert", "- dnabert", "- m6A", "- mRNA-degradation", "---", "",
             f"# m6A-BERT-Deg: mRNA degradation classifier (k = {k})", "",
             f"A BERT over overlapping {k}-mers of mRNA windows around m6A sites, fine-tuned with m6abert "
             f"{card['version']}.", "",
             f"- Base model: `{card['base_model']}`",
             "- Labels: " + ", ".join(f"{i} = {name}" for i, name in enumerate(card["labels"])),
             f"- Exported: step {ex['step']} of {card['global_step']}, {ex['selected_by']}{where}", "",
             "## Data", "", "| split | file | rows |", "|---|---|---|"]
    lines += [f"| {split} | `{path}` | {rows} |" for split, path, rows in card["data"]]
    lines += ["", "## Metrics", ""]
    if columns:
        lines += ["| metric | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        lines += [f"| {key} | " + " | ".join(_card_number(m.get(key)) for m in columns.values()) + " |"
                  for key in CARD_METRICS if any(key in m for m in columns.values())]
    else:
        lines.append("No dev metrics were computed (no --evaluate_during_training or --do_eval).")
    lines += ["", "## How to load", "", "```python",
              "from transformers import AutoModelForSequenceClassification, AutoTokenizer", "",
              f'tokenizer = AutoTokenizer.from_pretrained("{folder}")',
              f'model = AutoModelForSequenceClassification.from_pretrained("{folder}").eval()',
              f'batch = tokenizer(["GGACUACGUA..."], return_tensors="pt")  # cut into overlapping {k}-mers',
              'p_degraded = model(**batch).logits.softmax(-1)[:, 1]', "```", "",
              f"The tokenizer takes a raw sequence (U read as T; other letters than A/C/G/T/U give `[UNK]` "
              f"{k}-mers) or its {k}-mers separated by spaces (`m6abert.kmer.seq2kmer(seq, {k})`); give one "
              "sequence per string (whitespace would split it). The model reads up to 510 k-mers: pass "
              "`truncation=True` for longer sequences. m6abert's commands load this folder as "
              "`--model_name_or_path`.", ""]
    write_text(folder / "README.md", "\n".join(lines))


def _card_number(value: object) -> str:
    return "n/a" if not isinstance(value, int | float) or value != value else f"{value:.4f}"


class TrainingState(NamedTuple):
    """The loop state a ``checkpoint-{step}`` folder holds besides the weights."""

    path: Path
    state: dict  # trainer_state.json
    optimizer: dict  # optimizer.pt
    scheduler: dict  # scheduler.pt
    rng: dict  # rng_state.pth


def read_training_state(checkpoint: str | os.PathLike) -> TrainingState:
    """Read (and so check) a checkpoint's loop state; called before a resumed run writes anything.

    The ``.pt``/``.pth`` files are loaded with ``weights_only=True``: one whose pickle would run
    code is refused with an ``InputError``.
    """
    ck = Path(checkpoint)
    state = read_config(ck / "trainer_state.json", "trainer state")
    if not isinstance(state.get("global_step"), int):
        raise InputError(f"{ck / 'trainer_state.json'}: no global_step; not a checkpoint of this toolkit")
    return TrainingState(ck, state, load_torch_file(ck / "optimizer.pt", "optimizer state"),
                         load_torch_file(ck / "scheduler.pt", "scheduler state"),
                         load_torch_file(ck / "rng_state.pth", "RNG state"))
