"""BERT models for k-mer sequences: configs, new models, loading old and new checkpoints.

Models are transformers' ``BertForSequenceClassification`` and ``BertForMaskedLM``. Checkpoints
written by the original m6A-BERT / DNABERT (a fork of transformers 2.5) load unchanged: their extra
config keys are dropped, their ``pytorch_model.bin`` is read with ``weights_only=True``.

How batches are padded and masked (and the original's unmasked padding, ``dnabert_compat``) is
:mod:`m6abert.data`'s :class:`~m6abert.data.Collator`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification, PreTrainedModel

from . import io
from .constants import MAX_POSITIONS
from .kmer import PAD_ID, check_k
from .utils import InputError, log

# name -> (layers, hidden, heads, intermediate)
PRESETS = {
    "bert-base": (12, 768, 12, 3072),  # the paper's (DNABERT's bert-config-K)
    "mini": (4, 256, 4, 1024),
    "tiny": (2, 64, 2, 256),
}
# keys of a BertConfig worth carrying; the fork's extras (split, rnn*, eos_token_ids, ...) are dropped
BERT_KEYS = (
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
    "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
    "type_vocab_size", "initializer_range", "layer_norm_eps", "pad_token_id", "classifier_dropout",
)


def build_config(config_name: str, k: int, **overrides) -> BertConfig:
    """A ``BertConfig`` for k-mer inputs from a preset name or a ``config.json`` path.

    Parameters
    ----------
    config_name: str
        ``"bert-base"`` (12 x 768 x 12, the paper's), ``"mini"`` (4 x 256 x 4), ``"tiny"``
        (2 x 64 x 2), or a path to a ``config.json``.
    k: int
        k-mer length; sets ``vocab_size`` to 5 + 4**k.
    overrides:
        Further ``BertConfig`` fields (e.g. ``hidden_dropout_prob``).
    """
    check_k(k)
    if config_name in PRESETS:
        layers, hidden, heads, inter = PRESETS[config_name]
        base = dict(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads,
                    intermediate_size=inter, max_position_embeddings=MAX_POSITIONS, type_vocab_size=2)
    else:
        base = {key: v for key, v in io.read_json(config_name, "--config_name config.json").items()
                if key in BERT_KEYS}
    base.update(vocab_size=5 + 4**k, pad_token_id=PAD_ID, **overrides)
    try:
        return BertConfig(**base)
    except (TypeError, ValueError) as err:
        raise InputError(f"{config_name}: not a usable BERT config ({err})") from None


def _config_from_checkpoint(ckpt: io.Checkpoint, **overrides) -> BertConfig:
    cfg = {key: v for key, v in ckpt.config.items() if key in BERT_KEYS}
    cfg.update(overrides)
    try:
        return BertConfig(**cfg)
    except (TypeError, ValueError) as err:
        raise InputError(f"{ckpt.path / 'config.json'}: not a usable BERT config ({err})") from None


class LoadedModel(NamedTuple):
    model: PreTrainedModel
    k: int


def load_model(
    path: str,
    task: str = "classification",
    attn_implementation: str = "sdpa",
    fine_tuned: bool = False,
    **config_overrides,
) -> LoadedModel:
    """Load a model from a checkpoint folder of this toolkit, DNABERT or the original m6A-BERT.

    Parameters
    ----------
    path: str
        Checkpoint folder (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``).
    task: str
        ``"classification"`` (2-label ``BertForSequenceClassification``; a fresh classifier head
        when the checkpoint has none, as DNABERT's fine-tuning did) or ``"mlm"``
        (``BertForMaskedLM``). Default is "classification".
    attn_implementation: str
        ``"sdpa"`` (fast) or ``"eager"`` (needed to return attention weights). Default is "sdpa".
    fine_tuned: bool
        Require a trained classifier head (prediction and interpretation): a pretrained-only
        checkpoint would silently score with a random head. Default is False.
    config_overrides:
        ``BertConfig`` fields to override (e.g. ``hidden_dropout_prob``).

    Notes
    -----
    An original MLM checkpoint's output bias was added twice by the transformers 2.5 fork, so
    loading one for ``"mlm"`` doubles ``cls.predictions.bias`` to reproduce its MLM logits.
    """
    ckpt = io.read_checkpoint(path)
    if fine_tuned and "classifier.weight" not in ckpt.state_dict:
        raise InputError(f"{path}: no classifier head in this checkpoint; give a fine-tuned model "
                         "(an output_dir or checkpoint-N of run_finetune_degradation.py)")
    if task == "classification":
        config = _config_from_checkpoint(ckpt, num_labels=2, **config_overrides)
        model_cls = BertForSequenceClassification
    elif task == "mlm":
        config = _config_from_checkpoint(ckpt, **config_overrides)
        model_cls = BertForMaskedLM
    else:
        raise ValueError(f"unknown task {task!r}")
    config._attn_implementation = attn_implementation
    try:
        model = model_cls(config)
    except (ValueError, TypeError) as err:
        raise InputError(f"{path}: config.json is not a usable BERT config ({str(err).splitlines()[0][:160]})") from None
    state = dict(ckpt.state_dict)
    if task == "mlm" and "cls.predictions.decoder.bias" not in state and "cls.predictions.bias" in state:
        state["cls.predictions.decoder.bias"] = state["cls.predictions.bias"]
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:
        raise InputError(f"{path}: weights do not fit the config ({str(err).splitlines()[1].strip()[:160]})") from None
    if task == "mlm":
        model.tie_weights()
    missing = [m for m in result.missing_keys if not m.startswith(("classifier.", "bert.pooler.", "cls."))]
    if missing:
        raise InputError(f"{path}: checkpoint lacks {len(missing)} encoder weights (first: {missing[0]})")
    # weights the model has no place for: only the other task's head may be left over
    unexpected = [u for u in result.unexpected_keys
                  if not u.startswith(("classifier.", "bert.pooler.", "cls.")) and not u.endswith("position_ids")]
    if unexpected:
        raise InputError(f"{path}: {len(unexpected)} weights do not fit config.json (first: {unexpected[0]}); "
                         "config and weights disagree")
    if result.missing_keys:
        log.info("newly initialised from %s: %s", path, ", ".join(sorted({m.rsplit('.', 1)[0] for m in result.missing_keys})))
    if task == "mlm" and is_dnabert_fork(ckpt):
        with torch.no_grad():
            model.cls.predictions.bias.mul_(2.0)
        log.info("original-format MLM checkpoint: cls.predictions.bias doubled (transformers 2.5 added it twice)")
    return LoadedModel(model, ckpt.k)


def is_dnabert_fork(ckpt: io.Checkpoint) -> bool:
    """Whether a checkpoint was written by the transformers 2.5 fork of DNABERT / m6A-BERT.

    Its ``pytorch_model.bin`` comes with a ``config.json`` that has no ``transformers_version`` or
    carries the fork's own keys (``split``, ``rnn``, ``eos_token_ids``).
    """
    cfg = ckpt.config
    return ckpt.original_format and (
        "transformers_version" not in cfg or any(key in cfg for key in ("split", "rnn", "eos_token_ids"))
    )


def new_model(config: BertConfig, task: str = "classification", attn_implementation: str = "sdpa"):
    """A randomly initialised model of ``config`` (``task`` as in :func:`load_model`)."""
    config._attn_implementation = attn_implementation
    if task == "classification":
        config.num_labels = 2
        return BertForSequenceClassification(config)
    return BertForMaskedLM(config)
