"""Masked-LM pretraining of a k-mer BERT (run_pretrain.py): DNABERT's recipe on current transformers.

This module owns the perplexity evaluation (the k-mer span masking is :mod:`m6abert.masking`) and
:func:`pretrain` (a masked-LM model on an in-memory corpus); run_pretrain.py from files to files is
:func:`m6abert.commands.pretrain.run_pretrain` (settings in its ``PretrainSettings``). The corpus loader is
:func:`m6abert.data.load_corpus`; the loop is :func:`m6abert.train.train`.

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

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from . import io
from .constants import MAX_POSITIONS
from .data import KmerDataset
from .inference import autocast, run_batches
from .kmer import PAD_ID, Encoded
from .masking import (  # noqa: F401 (re-exported: pretrain's public names as before)
    IGNORE_INDEX,
    MASK_LIST,
    TARGET_MASKED_FRACTION,
    Masked,
    SpanMaskingCollator,
    default_mlm_probability,
    expand_centres,
    mask_tokens,
    maskable_positions,
)
from .train import Dist, TrainArgs, barrier, setup_distributed, train
from .utils import log

# offsets added to a span centre (DNABERT's MASK_LIST): with the centre, k contiguous tokens
EVAL_STREAM = 0  # masking stream of evaluation; training uses 1 + rank


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
        Items ``{"input_ids": [CLS] k-mers [SEP]}`` (:class:`~m6abert.data.KmerDataset` of a corpus).
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
    def step(m: torch.nn.Module, batch: dict) -> tuple[float, int, int] | None:
        selected = batch["labels"] != IGNORE_INDEX  # B, L
        if not selected.any():
            return None
        out = m(**batch)
        correct = int((out.logits.argmax(-1)[selected] == batch["labels"][selected]).sum())
        return out.loss.item(), correct, int(selected.sum())

    done = [r for r in run_batches(model, dataset, collate, step, batch_size, device, "eval", verbose) if r]
    losses = [r[0] for r in done]
    correct, total = sum(r[1] for r in done), sum(r[2] for r in done)
    if not total:  # never fail a long training run at an evaluation
        log.warning("the evaluation corpus gave no masked token: perplexity is undefined (NaN)")
        return EvalResult(math.nan, math.nan, math.nan, 0)
    loss = float(np.mean(losses))
    perplexity = math.exp(loss) if loss < 700 else float("inf")
    return EvalResult(perplexity, loss, correct / total, total)


def eval_results_line(result: EvalResult) -> str:
    """One ``eval_results.txt`` line: the perplexity alone, as DNABERT wrote it (``str(float(ppl))``)."""
    return str(float(result.perplexity))


# ---------------------------------------------------------------------------- pretraining
def mlm_evaluator(k: int, vocab_size: int, p: float, seed: int, dnabert_compat: bool, eval_ds: KmerDataset,
                   batch_size: int, device, precision: str | None = None):
    """``evaluate(model, step) -> (metrics, eval_results.txt line)`` with the fixed evaluation masks,
    autocast to ``precision`` as training is."""

    def run_eval(m: torch.nn.Module, step: int) -> tuple[dict, str]:
        collate = SpanMaskingCollator(k, vocab_size, p, seed, EVAL_STREAM, dnabert_compat)
        with autocast(device, precision):
            res = evaluate(m, eval_ds, collate, batch_size, device)
        log.info("eval at step %d: perplexity = %s, masked accuracy = %.4f", step, res.perplexity, res.masked_accuracy)
        return {"perplexity": res.perplexity, "loss": res.loss, "masked_accuracy": res.masked_accuracy,
                "n_masked": res.n_masked}, eval_results_line(res)

    return run_eval


def pretrain(
    model: torch.nn.Module,
    k: int,
    train_corpus: Encoded,
    train_args: TrainArgs,
    output_dir: str | Path,
    eval_corpus: Encoded | None = None,
    mlm_probability: float | None = None,
    block_size: int = MAX_POSITIONS,
    dnabert_compat: bool = False,
    eval_batch_size: int = 4,
    resume: io.TrainingState | None = None,
    dist: Dist | None = None,
) -> dict:
    """Masked-LM training of ``model`` (a ``BertForMaskedLM``) on a tokenised corpus.

    Writes ``checkpoint-{step}/``, ``eval_results.txt`` (one perplexity per evaluation, DNABERT's
    format), ``eval_results.jsonl`` and the final model into ``output_dir``.

    Parameters
    ----------
    mlm_probability: float or None
        Span-centre probability; None gives :func:`default_mlm_probability`. Default is None.
    resume: TrainingState or None
        The checkpoint state to continue from exactly (its weights already in ``model``).

    Returns
    -------
    dict
        ``global_step``, ``train_loss`` (and DDP agreement).
    """
    dist = dist or setup_distributed()
    p = default_mlm_probability(k) if mlm_probability is None else mlm_probability
    vocab_size = model.config.vocab_size
    run_eval = None
    if eval_corpus is not None:
        run_eval = mlm_evaluator(k, vocab_size, p, train_args.seed, dnabert_compat,
                                  KmerDataset(eval_corpus, None, block_size), eval_batch_size, dist.device, train_args.precision)
    train_ds = KmerDataset(train_corpus, None, block_size)
    collate = SpanMaskingCollator(k, vocab_size, p, train_args.seed, 1 + dist.rank, dnabert_compat)
    log.info("pretraining: k=%d, %d sentences, %d k-mers, span-centre probability %s, block size %d",
             k, len(train_ds), len(train_corpus.ids), p, block_size)
    from .model import training_attention

    with training_attention(model, dist.device):
        res = train(model, train_ds, collate, train_args, output_dir, k, evaluate=run_eval, resume_from=resume,
                    dist=dist, stats=lambda b: {"tokens": int((b["input_ids"] != PAD_ID).sum())})
    results = dict(global_step=res.global_step, train_loss=res.average_loss)
    if res.ranks_in_sync is not None:
        results.update(world_size=dist.world_size, ddp_weights_identical=res.ranks_in_sync)
    if dist.is_main:
        io.save_model_files(output_dir, model, k)
    barrier(dist)
    return results


# ---------------------------------------------------------------------------- run_pretrain.py


