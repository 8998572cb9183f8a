"""``run_pretrain.py`` from files to files: corpora read and checked, a model new or continued,
masked-LM pretraining (:func:`m6abert.pretrain.pretrain`) or evaluation, checkpoints, results and
resumes checked against what determines the model; settings in :class:`PretrainSettings`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch

from .. import io, kmer
from ..constants import MAX_POSITIONS
from ..data import KmerDataset, check_block_size, load_corpus
from ..fingerprint import RUN_SETTINGS, check_resume, settings_record
from ..io.checkpoints import model_identity
from ..kmer import Encoded
from ..masking import default_mlm_probability
from ..pretrain import mlm_evaluator, pretrain
from ..train import Dist, TrainArgs, barrier, check_optimizer, locked_run_dir, setup_distributed
from ..utils import InputError, check_fp16, check_model_k, log, set_seed

# what a fresh run (--overwrite_output_dir) removes besides the toolkit's checkpoints
RESULT_FILES = (RUN_SETTINGS, "eval_results.txt", "eval_results.jsonl", "all_results.json", "pretrain_args.json",
                "pretrain_eval_args.json", "config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json",
                "special_tokens_map.json", "tokenizer.json")


@dataclass(frozen=True)
class PretrainSettings:
    """Everything run_pretrain.py does besides optimisation (:class:`~m6abert.train.TrainArgs`).

    Field names are the script's flags; ``k`` is ``--tokenizer_name dnaK``'s k (None if not given),
    ``block_size`` -1 means the model's positions (at most 512), ``run_args`` the resolved
    arguments recorded in ``pretrain_args.json``.
    """

    output_dir: str
    train: TrainArgs = field(default_factory=TrainArgs)
    train_data_file: str | None = None
    train_fasta: str | None = None
    eval_data_file: str | None = None
    eval_fasta: str | None = None
    model_name_or_path: str | None = None
    config_name: str | None = None
    k: int | None = None
    do_train: bool = False
    do_eval: bool = False
    mlm_probability: float | None = None
    block_size: int = -1
    per_gpu_eval_batch_size: int = 4
    should_continue: bool = False
    overwrite_output_dir: bool = False
    dnabert_compat: bool = False
    run_args: dict = field(default_factory=dict)

    @property
    def training(self) -> bool:
        """Train unless only ``do_eval`` is asked for."""
        return self.do_train or not self.do_eval


def _checkpoint_k(path: str | Path) -> int:
    cfg = io.read_config(Path(path) / "config.json", "checkpoint config.json")
    try:
        return kmer.k_from_vocab_size(int(cfg["vocab_size"]))
    except (KeyError, ValueError, TypeError):
        raise InputError(f"{path}/config.json: vocab_size is missing or not DNABERT's (69/261/1029/4101)") from None


def _load_corpora(s: PretrainSettings, k: int | None) -> tuple[Encoded | None, Encoded | None, int]:
    """(train corpus or None, eval corpus or None, k), every file checked against one k."""
    train_c = eval_c = None
    if s.training:
        train_c = load_corpus(s.train_fasta or s.train_data_file, k, fasta=s.train_fasta is not None)
        k = train_c.k
    if s.do_eval or (s.training and s.train.evaluate_during_training):
        eval_c = load_corpus(s.eval_fasta or s.eval_data_file, k, fasta=s.eval_fasta is not None)
        k = eval_c.k
    return train_c, eval_c, k


class Prepared(NamedTuple):
    """A pretraining run with every input read and checked, before anything is written."""

    model: torch.nn.Module
    k: int
    resume: Path | None
    resumed: io.TrainingState | None
    train_corpus: Encoded | None
    eval_corpus: Encoded | None
    block_size: int


# settings that say where results go and what is evaluated, not what the model becomes
NOT_MODEL_SETTINGS = ("output_dir", "train_data_file", "train_fasta", "eval_data_file", "eval_fasta",
                      "model_name_or_path", "config_name", "k", "do_eval", "per_gpu_eval_batch_size", "should_continue",
                      "overwrite_output_dir")


def run_fingerprint(s: PretrainSettings, k: int) -> dict:
    """What determines the pretrained model (:func:`~m6abert.fingerprint.settings_record`): the settings, k,
    the starting model by identity, a config file by content and the training corpus by SHA-256."""
    corpus = s.train_fasta or s.train_data_file
    return {**settings_record(s, NOT_MODEL_SETTINGS, s.model_name_or_path, s.config_name,
                              {"train corpus": Path(corpus)} if corpus else {}), "k": k}


def _model_path(s: PretrainSettings, resume: Path | None) -> str | Path | None:
    """The checkpoint to start from (resumed, given, or the output folder for evaluation), or None."""
    model_path = resume or s.model_name_or_path or (None if s.training else s.output_dir)
    if model_path is not None and s.config_name and resume is None:
        raise InputError("--config_name is for a new model; a checkpoint (--model_name_or_path) carries its own config")
    return model_path


def _prepare(s: PretrainSettings, dist: Dist) -> Prepared:
    """Read and check the output folder, corpora, model, block size, resume state and schedule."""
    # transformers is slow to import: after the checks
    from ..model import build_config, load_model, new_model

    resume = io.resume_point(Path(s.output_dir), s.should_continue, s.overwrite_output_dir, s.training)
    model_path = _model_path(s, resume)
    ck = _checkpoint_k(model_path) if model_path is not None else None
    check_model_k(f"--tokenizer_name dna{s.k}", s.k, ck, str(model_path))
    train_c, eval_c, k = _load_corpora(s, s.k or ck)
    corpora = [(c, name) for c, name in ((train_c, s.train_fasta or s.train_data_file),
                                         (eval_c, s.eval_fasta or s.eval_data_file)) if c is not None]
    for corpus, name in corpora:  # again below if the model has fewer positions
        check_block_size(corpus, s.block_size if s.block_size > 0 else MAX_POSITIONS, name)
    if model_path is not None:
        model, _ = load_model(str(model_path), "mlm")
    else:
        model = new_model(build_config(s.config_name or "bert-base", k), "mlm")
    max_len = model.config.max_position_embeddings
    block_size = min(MAX_POSITIONS, max_len) if s.block_size <= 0 else s.block_size
    if block_size > max_len:
        raise InputError(f"--block_size {block_size} exceeds the model's {max_len} positions")
    for corpus, name in corpora:
        check_block_size(corpus, block_size, name)
    resumed = io.read_training_state(resume) if resume is not None and s.training else None
    if resumed is not None:
        check_resume(s.output_dir, run_fingerprint(s, k), "pretraining")
    if s.training:  # impossible schedules and optimiser settings fail before anything is written
        sched = check_optimizer(model, s.train, len(train_c), dist)
        io.foreign_checkpoints(s.output_dir, sched.t_total)
    return Prepared(model, k, resume, resumed, train_c, eval_c, block_size)


def run_pretrain(s: PretrainSettings, dist: Dist | None = None) -> dict:
    """run_pretrain.py: pretrain (or evaluate) a ``BertForMaskedLM`` on k-mer sentences.

    Writes to ``output_dir``: ``checkpoint-{step}/`` every ``save_steps``, ``eval_results.txt``
    (one perplexity per evaluation, DNABERT's format), ``eval_results.jsonl`` (perplexity, loss,
    masked accuracy, learning rate per evaluation), the final model (usable as
    ``--model_name_or_path`` of run_finetune_degradation.py), ``all_results.json`` and
    ``pretrain_args.json``. Everything is checked before the first file is written; then rank 0
    locks the output folder (:func:`m6abert.io.lock_run_dir`) for as long as the run writes there.

    Returns
    -------
    dict
        The content of ``all_results.json``.
    """
    dist = dist or setup_distributed()
    set_seed(s.train.seed)
    check_fp16(s.train.fp16, dist.device.type)
    pr = _prepare(s, dist)
    barrier(dist)  # every rank has checked the output folder: nothing is written before this point
    with locked_run_dir(s.output_dir, dist):  # rank 0 holds the folder's lock while the run writes
        return _run(s, pr, dist)


def _run(s: PretrainSettings, pr: Prepared, dist: Dist) -> dict:
    """The writing part of :func:`run_pretrain`, with the output folder locked."""
    out = Path(s.output_dir)
    p = default_mlm_probability(pr.k) if s.mlm_probability is None else s.mlm_probability
    results: dict = {"k": pr.k, "mlm_probability": p, "block_size": pr.block_size}
    if dist.is_main:
        if s.training and out.is_dir():
            io.clear_run_dir(out, fresh=pr.resume is None, result_files=RESULT_FILES)
        out.mkdir(parents=True, exist_ok=True)
        resolved = {**s.run_args, "k": pr.k, "mlm_probability": p, "block_size": pr.block_size,
                    "do_train": s.training, "resumed_from": str(pr.resume) if pr.resume else None,
                    "base_model_identity": model_identity(s.model_name_or_path) if s.model_name_or_path else None}
        io.write_run_args(out, resolved, "pretrain_args.json" if s.training else "pretrain_eval_args.json")
        if s.training:
            io.write_json(out / RUN_SETTINGS, run_fingerprint(s, pr.k))
    barrier(dist)
    if s.training:
        results.update(pretrain(pr.model, pr.k, pr.train_corpus, s.train, out, pr.eval_corpus, p, pr.block_size,
                                s.dnabert_compat, s.per_gpu_eval_batch_size, pr.resumed, dist))
    if s.do_eval and dist.is_main:
        metrics, line = mlm_evaluator(pr.k, pr.model.config.vocab_size, p, s.train.seed, s.dnabert_compat,
                                       KmerDataset(pr.eval_corpus, None, pr.block_size),
                                       s.per_gpu_eval_batch_size, dist.device, s.train.precision)(pr.model, -1)
        io.append_line(out / "eval_results.txt", line)
        results.update({f"eval_{key}": v for key, v in metrics.items()})
        log.info("***** Eval results *****")
        for key in sorted(metrics):
            log.info("  %s = %s", key, metrics[key])
    if dist.is_main:
        if not s.training and (out / "all_results.json").exists():  # keep the training's record
            results = {**io.read_json(out / "all_results.json"), **results}
        results["model_identity"] = model_identity(out)  # the model these results are of
        io.write_json(out / "all_results.json", results)
    return results
