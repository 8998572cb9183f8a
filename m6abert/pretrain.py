"""Masked-LM pretraining of a k-mer BERT (run_pretrain.py): DNABERT's recipe on current transformers.

This module owns the pretraining corpus (k-mer sentences or FASTA records, tokenised vectorised
into one flat int32 id array plus row offsets), DNABERT's k-mer span masking as a seeded
collator, the perplexity evaluation and ``run(args)``. The loop is :func:`m6abert.train.train`.

Deliberate differences from DNABERT's ``examples/run_pretrain.py``:

* padding is masked out of attention (``--dnabert_compat`` passes no attention mask, as DNABERT);
* the masks of batch ``i`` come from a generator seeded with ``(seed, stream, i)``, so evaluation
  is deterministic and a resumed run masks exactly as an uninterrupted one (DNABERT drew from the
  global RNG, so its eval perplexity was stochastic);
* a sentence longer than ``--block_size`` is refused rather than truncated, and so is a letter other
  than A, C, G, T, N in either case (DNABERT read such k-mers as [UNK] without a word);
* without ``--mlm_probability`` the span-centre probability depends on k so that about 15 % of
  the tokens are masked (:func:`default_mlm_probability`); DNABERT's default was 0.15 for every k.

>>> {k: default_mlm_probability(k) for k in (3, 4, 5, 6)}
{3: 0.0527, 4: 0.0398, 5: 0.032, 6: 0.0267}
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from . import io, kmer
from .data import check_lengths
from .kmer import CLS_ID, KMER_SIZES, MASK_ID, PAD_ID, SEP_ID, UNK_ID
from .options import tokenizer_k
from .utils import InputError, log, set_seed

# offsets added to a span centre (DNABERT's MASK_LIST): with the centre, k contiguous tokens
MASK_LIST = {3: (-1, 1), 4: (-1, 1, 2), 5: (-2, -1, 1, 2), 6: (-2, -1, 1, 2, 3)}
TARGET_MASKED_FRACTION = 0.15
IGNORE_INDEX = -100
EVAL_STREAM = 0  # masking stream of evaluation; training uses 1 + rank
RESULT_FILES = ("eval_results.txt", "eval_results.jsonl", "all_results.json")

# a letter refused in a k-mer corpus (lower case and N are read as [UNK], as DNABERT did)
_ILLEGAL_LETTER = re.compile(r"[^ACGTNacgtn\s]")

def default_mlm_probability(k: int) -> float:
    """The span-centre probability that masks about 15 % of the tokens for ``k``.

    A token is masked when any of the k centres whose span covers it is drawn, so the masked
    fraction away from the sequence ends is ``1 - (1 - p)**k``; solved for 0.15 and rounded to
    four decimals. DNABERT's README uses 0.025 for k=6 (14.0 %).
    """
    return round(1.0 - (1.0 - TARGET_MASKED_FRACTION) ** (1.0 / k), 4)


# ---------------------------------------------------------------------------- masking
class Masked(NamedTuple):
    """A masked batch."""

    input_ids: torch.Tensor  # (B, L) ids with [MASK], random or kept tokens at masked positions
    labels: torch.Tensor  # (B, L) original ids at masked positions, -100 elsewhere
    masked: torch.Tensor  # (B, L) bool, the masked positions


def maskable_positions(input_ids: torch.Tensor) -> torch.Tensor:
    """(B, L) bool: positions that may be masked, i.e. every token but [CLS], [SEP] and [PAD]."""
    return (input_ids != CLS_ID) & (input_ids != SEP_ID) & (input_ids != PAD_ID)


def expand_centres(centres: torch.Tensor, maskable: torch.Tensor, k: int) -> torch.Tensor:
    """Grow span centres into DNABERT's k-token spans.

    Every centre ``c`` also marks ``c + d`` for ``d`` in ``MASK_LIST[k]`` when ``1 <= c + d <= end``,
    ``end`` being the row's last maskable position (its last real k-mer); overlapping spans merge.

    Parameters
    ----------
    centres: torch.Tensor, shape=(B, L), bool
        Drawn span centres (only on maskable positions).
    maskable: torch.Tensor, shape=(B, L), bool
        From :func:`maskable_positions`.
    k: int
        k-mer length, 3..6.

    Returns
    -------
    torch.Tensor, shape=(B, L), bool
    """
    width = centres.shape[1]
    pos = torch.arange(width)
    last = (width - 1) - maskable.flip(1).int().argmax(1)  # B; last maskable position
    end = torch.where(maskable.any(1), last, -1)
    masked = centres.clone()
    for d in MASK_LIST[k]:  # a loop over the k-1 offsets; everything else is vectorised
        shifted = torch.zeros_like(centres)
        if d > 0:
            shifted[:, d:] = centres[:, : width - d]
        else:
            shifted[:, :d] = centres[:, -d:]
        masked |= shifted
    inside = (pos[None, :] >= 1) & (pos[None, :] <= end[:, None])  # B, L
    return masked & inside & maskable


def mask_tokens(
    input_ids: torch.Tensor,
    k: int,
    mlm_probability: float,
    vocab_size: int,
    generator: torch.Generator | None = None,
) -> Masked:
    """DNABERT's k-mer span masking (``mask_tokens`` of its run_pretrain.py), vectorised.

    Span centres are drawn with ``mlm_probability`` on every token but [CLS]/[SEP]/[PAD] and grown
    into k-token spans (:func:`expand_centres`). Each masked token independently becomes [MASK]
    with probability 0.8, else a random id over the whole vocabulary (special tokens included)
    with probability 0.5, else stays. The random draws are made in DNABERT's order and shapes, so
    with the same generator state the masks equal DNABERT's bit for bit.

    Parameters
    ----------
    input_ids: torch.Tensor, shape=(B, L), int64
        ``[CLS] k-mers [SEP]`` rows right-padded with [PAD]; not modified.
    k: int
        k-mer length, 3..6.
    mlm_probability: float
        Probability of a span centre.
    vocab_size: int
        Random replacements are drawn from ``0 .. vocab_size - 1``.
    generator: torch.Generator or None
        Source of randomness; None uses torch's global generator (as DNABERT). Default is None.

    Returns
    -------
    Masked
    """
    shape = input_ids.shape
    maskable = maskable_positions(input_ids)
    probability = torch.full(shape, mlm_probability)
    probability.masked_fill_(~maskable, 0.0)
    centres = torch.bernoulli(probability, generator=generator).bool()
    masked = expand_centres(centres, maskable, k)
    labels = input_ids.masked_fill(~masked, IGNORE_INDEX)
    inputs = input_ids.clone()
    replaced = torch.bernoulli(torch.full(shape, 0.8), generator=generator).bool() & masked
    inputs[replaced] = MASK_ID
    randomised = torch.bernoulli(torch.full(shape, 0.5), generator=generator).bool() & masked & ~replaced
    random_words = torch.randint(vocab_size, shape, dtype=torch.long, generator=generator)
    inputs[randomised] = random_words[randomised]
    return Masked(inputs, labels, masked)


class SpanMaskingCollator:
    """Pad ``[CLS] k-mers [SEP]`` rows into a batch and mask it with DNABERT's k-mer spans.

    Batch number ``i`` (``batches_done`` counts them) is masked with a fresh generator seeded with
    ``(seed, stream, i)``: the masks depend only on the batch's position in the run, so a run
    resumed at batch ``i`` (``batches_done = i``) masks as the uninterrupted run did, and a new
    collator evaluates with the same masks every time. Pass ``generator`` to draw from it instead.

    Parameters
    ----------
    k: int
        k-mer length, 3..6.
    vocab_size: int
        5 + 4**k (random replacements are drawn over it).
    mlm_probability: float or None
        Span-centre probability; None means :func:`default_mlm_probability`. Default is None.
    seed, stream: int
        Seed the per-batch generators (training uses ``stream = 1 + rank``, evaluation 0).
    dnabert_compat: bool
        Pass no ``attention_mask`` (DNABERT attended to padding while pretraining). Default is False.
    generator: torch.Generator or None
        Draw every batch's masks from this generator instead. Default is None.

    A call returns ``input_ids`` (B, L), ``labels`` (B, L) and, unless ``dnabert_compat``,
    ``attention_mask`` (B, L).
    """

    def __init__(self, k: int, vocab_size: int, mlm_probability: float | None = None, seed: int = 42,
                 stream: int = 0, dnabert_compat: bool = False, generator: torch.Generator | None = None):
        self.k, self.vocab_size = k, vocab_size
        self.mlm_probability = default_mlm_probability(k) if mlm_probability is None else mlm_probability
        self.seed, self.stream, self.dnabert_compat, self.generator = seed, stream, dnabert_compat, generator
        self.batches_done = 0

    def generator_for(self, batch: int) -> torch.Generator:
        """The generator of batch number ``batch``."""
        state = np.random.SeedSequence([self.seed, self.stream, batch]).generate_state(1, np.uint64)[0]
        return torch.Generator().manual_seed(int(state))

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        lengths = [len(it["input_ids"]) for it in items]
        ids = torch.full((len(items), max(lengths)), PAD_ID, dtype=torch.long)  # B, L
        for row, (it, n) in enumerate(zip(items, lengths, strict=True)):
            ids[row, :n] = torch.from_numpy(np.asarray(it["input_ids"], dtype=np.int64))
        g = self.generator if self.generator is not None else self.generator_for(self.batches_done)
        self.batches_done += 1
        m = mask_tokens(ids, self.k, self.mlm_probability, self.vocab_size, g)
        batch = {"input_ids": m.input_ids, "labels": m.labels}
        if not self.dnabert_compat:
            batch["attention_mask"] = (torch.arange(ids.shape[1])[None, :] < torch.tensor(lengths)[:, None]).long()
        return batch


# ---------------------------------------------------------------------------- corpus
class Corpus(NamedTuple):
    """A tokenised corpus: k-mer ids of all rows in one flat array, without [CLS]/[SEP]."""

    ids: np.ndarray  # (total_kmers,) int32
    offsets: np.ndarray  # (n + 1,) int64; row i is ids[offsets[i]:offsets[i + 1]]
    sources: np.ndarray  # (n,) int64; the file line (corpus) or record number (FASTA) of each row
    unit: str  # "line" or "record"
    k: int
    n_unknown: int  # k-mers read as [UNK]

    def row(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def __len__(self) -> int:
        return len(self.offsets) - 1


class PretrainDataset(torch.utils.data.Dataset):
    """Rows of a :class:`Corpus` as ``{"input_ids": [CLS] k-mers [SEP]}``, int64 arrays."""

    def __init__(self, corpus: Corpus):
        self.corpus = corpus

    def __len__(self) -> int:
        return len(self.corpus)

    def __getitem__(self, i: int) -> dict:
        row = self.corpus.row(i)
        ids = np.empty(len(row) + 2, dtype=np.int64)
        ids[0], ids[1:-1], ids[-1] = CLS_ID, row, SEP_ID
        return {"input_ids": ids}


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
        for row in np.unique(np.searchsorted(np.cumsum(counts), unknown, side="right")):
            bad = _ILLEGAL_LETTER.search(lines[row])
            if bad:
                raise InputError(f"{path}: line {numbers[row]}: illegal letter {bad.group(0)!r} in the k-mers "
                                 "(allowed: A, C, G, T, N)")
    return encoded


def _numbered_records(path: Path):
    """FASTA records in chunks, with their 1-based record numbers."""
    done = 0
    for records in io.iter_fasta_chunks(path):
        yield records, np.arange(done + 1, done + len(records) + 1)
        done += len(records)


def load_corpus(path: str | Path, k: int | None = None, fasta: bool = False,
                chunk_bytes: int = io.CORPUS_CHUNK_BYTES) -> Corpus:
    """Tokenise a line-by-line corpus of k-mer sentences (or a FASTA file), chunk by chunk.

    Ids go into one preallocated int32 array (at most one k-mer per k + 1 bytes of a corpus, one
    per byte of a FASTA), so peak memory is the ids plus one chunk of text.

    Parameters
    ----------
    path: str or Path
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
    Corpus

    Raises
    ------
    InputError
        An unreadable or empty file, k-mers of another length than ``k``, a record shorter than k.
    """
    path = Path(path)
    if fasta and k is None:
        raise InputError(f"{path}: a FASTA corpus needs k: give --tokenizer_name dna3..dna6 or a checkpoint")
    ids: np.ndarray | None = None
    pos, counts, sources, n_unknown = 0, [], [], 0
    chunks = _numbered_records(path) if fasta else io.iter_corpus_chunks(path, chunk_bytes)
    for chunk, numbers in chunks:
        if fasta:
            check_lengths(chunk, k, str(path))
            enc = kmer.encode_many([r.seq for r in chunk], k)
            chunk_ids, chunk_counts = enc.ids.astype(np.int32), np.diff(enc.offsets)
        else:
            first_k = kmer.sentence_k(chunk[0])
            if k is None:
                if first_k not in KMER_SIZES:
                    raise InputError(f"{path}: line {numbers[0]}: k-mers of length {first_k}; DNABERT has vocabularies for k = 3..6")
                k = first_k
            elif first_k != k:
                raise InputError(f"{path}: line {numbers[0]}: k-mers of length {first_k}, but the model is for k={k}")
            chunk_ids, chunk_counts = _encode_lines(chunk, numbers, k, path)
        if ids is None:
            size = path.stat().st_size
            ids = np.empty(size + 1 if fasta else (size + 1) // (k + 1) + 1, dtype=np.int32)
        if pos + len(chunk_ids) > len(ids):  # cannot happen for valid text; grow to be safe
            ids = np.concatenate([ids[:pos], np.empty(pos + len(chunk_ids), dtype=np.int32)])
        ids[pos : pos + len(chunk_ids)] = chunk_ids
        pos += len(chunk_ids)
        n_unknown += int((chunk_ids == UNK_ID).sum())
        counts.append(chunk_counts)
        sources.append(numbers)
        del chunk, chunk_ids  # before the next chunk is read
    ids.resize(pos, refcheck=False)  # give back the unused tail
    offsets = np.zeros(sum(map(len, counts)) + 1, dtype=np.int64)
    np.cumsum(np.concatenate(counts), out=offsets[1:])
    if n_unknown:
        log.warning("%s: %d of %d k-mers are not in the dna%d vocabulary and are read as [UNK]",
                    path, n_unknown, pos, k)
    return Corpus(ids, offsets, np.concatenate(sources), "record" if fasta else "line", k, n_unknown)


def check_block_size(corpus: Corpus, block_size: int, path: str | Path) -> None:
    """Raise if a row does not fit ``block_size`` tokens with [CLS]/[SEP] (DNABERT truncated silently)."""
    lengths = np.diff(corpus.offsets) + 2
    too_long = lengths > block_size
    if too_long.any():
        i = int(too_long.argmax())
        raise InputError(f"{path}: {corpus.unit} {corpus.sources[i]}: {lengths[i]} tokens with [CLS]/[SEP] "
                         f"exceed --block_size {block_size} (split long sequences)")


# ---------------------------------------------------------------------------- evaluation
class EvalResult(NamedTuple):
    perplexity: float  # exp(mean of the batch losses), as DNABERT
    loss: float  # mean of the batch losses (each the mean over its masked tokens)
    masked_accuracy: float  # argmax prediction == original token, over all masked tokens
    n_masked: int


def evaluate(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    collate: SpanMaskingCollator,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    verbose: bool = True,
) -> EvalResult:
    """Masked-LM loss, perplexity and masked-token accuracy of ``model`` on ``dataset``.

    Batches are taken in order and masked by ``collate``; a fresh collator gives the same masks
    every time, so repeated evaluation of one model gives one perplexity. Batches without any
    masked token (possible for very short rows) are skipped; with none at all the result is NaN.

    Parameters
    ----------
    model: torch.nn.Module
        A ``BertForMaskedLM``.
    dataset: torch.utils.data.Dataset
        Items ``{"input_ids": [CLS] k-mers [SEP]}`` (:class:`PretrainDataset`).
    collate: SpanMaskingCollator
        Pads and masks each batch.
    batch_size: int
        Default is 8.
    device: str or torch.device
        Default is "cpu".
    verbose: bool
        Show a progress bar. Default is True.

    Returns
    -------
    EvalResult
    """
    model.eval().to(device)
    losses, correct, total = [], 0, 0
    with torch.inference_mode():
        for start in tqdm(range(0, len(dataset), batch_size), desc="eval", disable=not verbose, leave=False):
            batch = collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
            selected = batch["labels"] != IGNORE_INDEX  # B, L
            if not selected.any():
                continue
            out = model(**{key: v.to(device) for key, v in batch.items()})
            losses.append(out.loss.item())
            predicted = out.logits.argmax(-1).cpu()  # B, L
            correct += int((predicted[selected] == batch["labels"][selected]).sum())
            total += int(selected.sum())
    if not total:  # never fail a long training run at an evaluation
        log.warning("the evaluation corpus gave no masked token: perplexity is undefined (NaN)")
        return EvalResult(math.nan, math.nan, math.nan, 0)
    loss = float(np.mean(losses))
    perplexity = math.exp(loss) if loss < 700 else float("inf")
    return EvalResult(perplexity, loss, correct / total, total)


def eval_results_line(result: EvalResult) -> str:
    """One ``eval_results.txt`` line: the perplexity alone, as DNABERT wrote it (``str(float(ppl))``)."""
    return str(float(result.perplexity))


# ---------------------------------------------------------------------------- run_pretrain.py
def _checkpoint_k(path: str | Path) -> int:
    cfg = io.read_json(Path(path) / "config.json", "checkpoint config.json")
    try:
        return kmer.k_from_vocab_size(int(cfg["vocab_size"]))
    except (KeyError, ValueError, TypeError):
        raise InputError(f"{path}/config.json: vocab_size is missing or not DNABERT's (69/261/1029/4101)") from None


def _load_corpora(args: argparse.Namespace, k: int | None, do_train: bool, need_eval: bool):
    """(train corpus or None, eval corpus or None, k), every file checked against one k."""
    train_c = eval_c = None
    if do_train:
        fasta = args.train_fasta is not None
        train_c = load_corpus(args.train_fasta if fasta else args.train_data_file, k, fasta=fasta)
        k = train_c.k
    if need_eval:
        fasta = args.eval_fasta is not None
        eval_c = load_corpus(args.eval_fasta if fasta else args.eval_data_file, k, fasta=fasta)
        k = eval_c.k
    return train_c, eval_c, k


def run(args: argparse.Namespace) -> dict:
    """run_pretrain.py: pretrain (or evaluate) a ``BertForMaskedLM`` on k-mer sentences.

    Writes to ``--output_dir``: ``checkpoint-{step}/`` every ``--save_steps``, ``eval_results.txt``
    (one perplexity per evaluation, DNABERT's format), ``eval_results.jsonl`` (perplexity, loss,
    masked accuracy, learning rate per evaluation), the final model (usable as
    ``--model_name_or_path`` of run_finetune_degradation.py), ``all_results.json`` and
    ``pretrain_args.json``. Everything is checked before the first file is written.

    Returns
    -------
    dict
        The content of ``all_results.json``.
    """
    from .train import (
        TrainArgs,
        barrier,
        clear_run_dir,
        read_resume_state,
        resume_point,
        schedule,
        setup_distributed,
        train,
    )

    dist = setup_distributed(args.local_rank, args.no_cuda)
    set_seed(args.seed)
    if args.fp16 and dist.device.type != "cuda":
        raise InputError("--fp16 needs a CUDA device; use --bf16 on CPU")
    out = Path(args.output_dir)
    do_train = args.do_train or not args.do_eval
    resume = resume_point(out, args.should_continue, args.overwrite_output_dir, do_train)
    model_path = resume or args.model_name_or_path or (None if do_train else out)
    if model_path is not None and args.config_name and resume is None:
        raise InputError("--config_name is for a new model; a checkpoint (--model_name_or_path) carries its own config")
    tk = tokenizer_k(args)
    ck = _checkpoint_k(model_path) if model_path is not None else None
    if tk is not None and ck is not None and tk != ck:
        raise InputError(f"--tokenizer_name dna{tk} does not match {model_path} (k={ck})")
    need_eval = args.do_eval or (do_train and args.evaluate_during_training)
    train_c, eval_c, k = _load_corpora(args, tk or ck, do_train, need_eval)
    corpora = [(c, name) for c, name in ((train_c, args.train_fasta or args.train_data_file),
                                         (eval_c, args.eval_fasta or args.eval_data_file)) if c is not None]
    for corpus, name in corpora:  # again below if the model has fewer positions
        check_block_size(corpus, args.block_size if args.block_size > 0 else 512, name)

    from .model import build_config, load_model, new_model  # transformers is slow to import: after the checks

    if model_path is not None:
        model, _ = load_model(str(model_path), "mlm")
    else:
        model = new_model(build_config(args.config_name or "bert-base", k), "mlm")
    max_len = model.config.max_position_embeddings
    block_size = min(512, max_len) if args.block_size <= 0 else args.block_size
    if block_size > max_len:
        raise InputError(f"--block_size {block_size} exceeds the model's {max_len} positions")
    for corpus, name in corpora:
        check_block_size(corpus, block_size, name)
    p = default_mlm_probability(k) if args.mlm_probability is None else args.mlm_probability
    vocab_size = model.config.vocab_size
    eval_ds = PretrainDataset(eval_c) if eval_c is not None else None
    resumed = read_resume_state(resume) if resume is not None and do_train else None  # checked before writing
    if do_train:  # impossible batch/accumulation settings fail before anything is written
        schedule(TrainArgs.from_namespace(args), len(PretrainDataset(train_c)), dist)

    def run_eval(m: torch.nn.Module, step: int) -> tuple[dict, str]:
        collate = SpanMaskingCollator(k, vocab_size, p, args.seed, EVAL_STREAM, args.dnabert_compat)
        res = evaluate(m, eval_ds, collate, args.per_gpu_eval_batch_size, dist.device)
        log.info("eval at step %d: perplexity = %s, masked accuracy = %.4f", step, res.perplexity, res.masked_accuracy)
        return {"perplexity": res.perplexity, "loss": res.loss, "masked_accuracy": res.masked_accuracy,
                "n_masked": res.n_masked}, eval_results_line(res)

    barrier(dist)  # every rank has checked the output folder: nothing is written before this point
    results: dict = {"k": k, "mlm_probability": p, "block_size": block_size}
    if dist.is_main:
        if do_train and out.is_dir():
            clear_run_dir(out, fresh=resume is None, result_files=RESULT_FILES)
        out.mkdir(parents=True, exist_ok=True)
        resolved = {**vars(args), "k": k, "mlm_probability": p, "block_size": block_size,
                    "do_train": do_train, "resumed_from": str(resume) if resume else None}
        io.write_run_args(out, resolved, "pretrain_args.json" if do_train else "pretrain_eval_args.json")
    barrier(dist)
    if do_train:
        train_ds = PretrainDataset(train_c)
        collate = SpanMaskingCollator(k, vocab_size, p, args.seed, 1 + dist.rank, args.dnabert_compat)
        log.info("pretraining: k=%d, %d sentences, %d k-mers, span-centre probability %s, block size %d",
                 k, len(train_ds), len(train_c.ids), p, block_size)
        res = train(model, train_ds, collate, TrainArgs.from_namespace(args), out, k,
                    evaluate=run_eval if eval_ds is not None else None, resume_from=resumed, dist=dist,
                    stats=lambda b: {"tokens": int((b["input_ids"] != PAD_ID).sum())})
        results.update(global_step=res.global_step, train_loss=res.average_loss)
        if res.ranks_in_sync is not None:
            results.update(world_size=dist.world_size, ddp_weights_identical=res.ranks_in_sync)
        if dist.is_main:
            io.save_model_files(out, model, k)
        barrier(dist)
    if args.do_eval and dist.is_main:
        metrics, line = run_eval(model, -1)
        io.append_line(out / "eval_results.txt", line)
        results.update({f"eval_{key}": v for key, v in metrics.items()})
        log.info("***** Eval results *****")
        for key in sorted(metrics):
            log.info("  %s = %s", key, metrics[key])
    if dist.is_main:
        if not do_train and (out / "all_results.json").exists():  # keep the training's record
            results = {**io.read_json(out / "all_results.json"), **results}
        io.write_json(out / "all_results.json", results)
    return results
