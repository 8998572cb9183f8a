"""BERT models for k-mer sequences: configs, new models, loading old and new checkpoints.

Models are transformers' ``BertForSequenceClassification`` and ``BertForMaskedLM``. Checkpoints
written by the original m6A-BERT / DNABERT (a fork of transformers 2.5) load unchanged: their extra
config keys are dropped, their ``pytorch_model.bin`` is read with ``weights_only=True``.

A checkpoint's ``config.json`` is checked before anything is built: its types and ranges, and its
sizes against the shapes of the weights it comes with, so a hostile or damaged config cannot make
the loader allocate more than the weights hold; weights holding NaN or infinite values are refused.

How batches are padded and masked (and the original's unmasked padding, ``dnabert_compat``) is
:mod:`m6abert.data`'s :class:`~m6abert.data.Collator`.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterator
from typing import NamedTuple

import torch
from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification, PreTrainedModel

from . import io
from .constants import MAX_POSITIONS
from .io.checkpoints import read_config
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
SIZE_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
             "max_position_embeddings", "type_vocab_size")  # whole numbers >= 1
PROBABILITY_KEYS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout")
MAX_NEW_PARAMETERS = 10**10  # a new model from a config.json larger than this is a mistake (40 GB in float32)
LAYER_RE = re.compile(r"^(?:bert\.)?encoder\.layer\.(\d+)\.")
# the classifier's classes, as config.json names them (id2label/label2id) for pipelines and AutoModel users
LABELS = ("not_degraded", "degraded")


# ---------------------------------------------------------------------------- config checks
def _show(value: object) -> str:
    """A config value as JSON writes it (``"64"``, ``64.0``, ``true``, ``null``)."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _whole(value: object, key: str, where: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{where}: {key} must be a whole number, not {_show(value)}")
    if value < low:
        raise InputError(f"{where}: {key} must be at least {low}, not {value}")
    return value


def _number(value: object, key: str, where: object) -> float:
    try:
        number = None if isinstance(value, bool) or not isinstance(value, int | float) else float(value)
    except OverflowError:  # an integer beyond float range
        number = None
    if number is None or not math.isfinite(number):
        raise InputError(f"{where}: {key} must be a finite number, not {_show(value)[:40]}")
    return number


def check_config_values(cfg: dict, where: object) -> dict:
    """Check the types and ranges of a config dict's BERT keys; return it ready for ``BertConfig``.

    Parameters
    ----------
    cfg: dict
        Keys of :data:`BERT_KEYS` (as read from a ``config.json``); absent keys are not checked.
    where: str or PathLike
        The file, for the messages.

    Returns
    -------
    dict
        ``cfg`` with ``initializer_range`` and ``layer_norm_eps`` as floats (``BertConfig`` refuses
        an int there).

    Raises
    ------
    InputError
        A size that is not a whole number >= 1, a ``pad_token_id`` below 0, a dropout outside
        [0, 1], a non-positive ``layer_norm_eps``, a negative ``initializer_range``, a non-finite
        number, an activation transformers does not know.
    """
    from transformers.activations import ACT2FN

    out = dict(cfg)
    for key in SIZE_KEYS:
        if key in cfg:
            _whole(cfg[key], key, where, 1)
    if cfg.get("pad_token_id") is not None:
        _whole(cfg["pad_token_id"], "pad_token_id", where, 0)
    for key in PROBABILITY_KEYS:
        if key in cfg and not (key == "classifier_dropout" and cfg[key] is None):
            if not 0 <= _number(cfg[key], key, where) <= 1:
                raise InputError(f"{where}: {key} must be between 0 and 1, not {_show(cfg[key])}")
    if "initializer_range" in cfg:
        out["initializer_range"] = _number(cfg["initializer_range"], "initializer_range", where)
        if out["initializer_range"] < 0:
            raise InputError(f"{where}: initializer_range must be at least 0, not {_show(cfg['initializer_range'])}")
    if "layer_norm_eps" in cfg:
        out["layer_norm_eps"] = _number(cfg["layer_norm_eps"], "layer_norm_eps", where)
        if out["layer_norm_eps"] <= 0:
            raise InputError(f"{where}: layer_norm_eps must be above 0, not {_show(cfg['layer_norm_eps'])}")
    act = cfg.get("hidden_act", "gelu")
    if not isinstance(act, str) or act not in ACT2FN:
        raise InputError(f"{where}: hidden_act {_show(act)} is not an activation transformers knows "
                         "(e.g. gelu, gelu_new, relu, silu, tanh)")
    return out


def _check_relations(config: BertConfig, where: object) -> None:
    """What single values cannot show: heads dividing the width, the padding id inside the vocabulary."""
    if config.hidden_size % config.num_attention_heads:
        raise InputError(f"{where}: hidden_size {config.hidden_size} is not a multiple of "
                         f"num_attention_heads {config.num_attention_heads}")
    pad = config.pad_token_id
    if pad is not None and pad >= config.vocab_size:
        raise InputError(f"{where}: pad_token_id {pad} is outside the vocabulary (0..{config.vocab_size - 1})")


def _bert_config(cfg: dict, where: object) -> BertConfig:
    """``BertConfig(**cfg)``, its refusals (strict dataclass validation included) as one ``InputError``."""
    from huggingface_hub.errors import StrictDataclassError

    try:
        return BertConfig(**cfg)
    except (TypeError, ValueError, KeyError, StrictDataclassError) as err:
        raise InputError(f"{where}: not a usable BERT config ({' '.join(str(err).split())[:160]})") from None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _weight_shape(state: dict, name: str, folder: object) -> tuple[int, ...]:
    """The shape of ``bert.{name}`` (or ``name`` without the prefix), which must be a matrix."""
    tensor = state.get(f"bert.{name}", state.get(name))
    if tensor is None:
        raise InputError(f"{folder}: checkpoint lacks the encoder weight bert.{name}")
    if len(tensor.shape) != 2:
        raise InputError(f"{folder}: weight bert.{name} has shape {tuple(tensor.shape)}, expected a matrix")
    return tuple(tensor.shape)


def check_against_weights(config: BertConfig, state: dict, where: object, folder: object) -> None:
    """Refuse a config whose sizes differ from the weights' shapes, before any model is built.

    The layers are the ``bert.encoder.layer.{i}`` groups of ``state``; the width, vocabulary,
    positions, token types and feed-forward width are read from the embedding matrices and the
    first layer's ``intermediate.dense.weight``. A model built from a config that passes is no
    larger than the weights (plus the heads), whatever ``config.json`` says.

    Raises
    ------
    InputError
        Naming ``where`` (the ``config.json``), the key, its value and what the weights hold; or
        ``folder`` when an embedding matrix is missing or not a matrix.
    """
    layers = sorted({int(m.group(1)) for name in state if (m := LAYER_RE.match(name))})
    if config.num_hidden_layers != len(layers):
        raise InputError(f"{where}: num_hidden_layers {config.num_hidden_layers}, but the weights hold "
                         f"{_plural(len(layers), 'layer')}")
    vocab, hidden = _weight_shape(state, "embeddings.word_embeddings.weight", folder)
    checks = (
        ("vocab_size", vocab, "the weights hold {} tokens"),
        ("hidden_size", hidden, "the weights are {} wide"),
        ("max_position_embeddings", _weight_shape(state, "embeddings.position_embeddings.weight", folder)[0],
         "the weights hold {} positions"),
        ("type_vocab_size", _weight_shape(state, "embeddings.token_type_embeddings.weight", folder)[0],
         "the weights hold {} token types"),
        ("intermediate_size", _weight_shape(state, f"encoder.layer.{layers[0]}.intermediate.dense.weight", folder)[0],
         "the weights' feed-forward layers are {} wide"),
    )
    for key, held, text in checks:
        if getattr(config, key) != held:
            raise InputError(f"{where}: {key} {getattr(config, key)}, but {text.format(held)}")


def _check_size(config: BertConfig, where: object) -> None:
    """Refuse a new model whose parameter count is absurd (there are no weights to compare with)."""
    h, layers, inter = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    n = (config.vocab_size + config.max_position_embeddings + config.type_vocab_size) * h
    n += layers * (4 * h * h + 2 * h * inter)
    if n > MAX_NEW_PARAMETERS:
        raise InputError(f"{where}: the sizes ask for a model of about {n:.2g} parameters (num_hidden_layers {layers}, "
                         f"hidden_size {h}, intermediate_size {inter}, max_position_embeddings "
                         f"{config.max_position_embeddings}), over the limit of {MAX_NEW_PARAMETERS:.0e}")


def check_positions(model_or_config, max_seq_length: int, where: str) -> None:
    """Refuse rows longer than the model's position embeddings, before anything is written.

    Parameters
    ----------
    model_or_config: PreTrainedModel or BertConfig
        The model (its ``.config`` is read) or its config.
    max_seq_length: int
        ``--max_seq_length``: tokens per row, [CLS] and [SEP] included.
    where: str
        The model's checkpoint (or what else to name), in the message.

    Raises
    ------
    InputError
        ``--max_seq_length N exceeds the model's P positions (WHERE)``.
    """
    config = getattr(model_or_config, "config", model_or_config)
    positions = config.max_position_embeddings
    if max_seq_length > positions:
        raise InputError(f"--max_seq_length {max_seq_length} exceeds the model's {positions} positions ({where})")


# ---------------------------------------------------------------------------- configs and models
def build_config(config_name: str, k: int, **overrides) -> BertConfig:
    """A ``BertConfig`` for k-mer inputs from a preset name or a ``config.json`` path.

    Parameters
    ----------
    config_name: str
        ``"bert-base"`` (12 x 768 x 12, the paper's), ``"mini"`` (4 x 256 x 4), ``"tiny"``
        (2 x 64 x 2), or a path to a ``config.json`` (its types, ranges and size are checked).
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
        cfg = read_config(config_name, "--config_name config.json")
        base = check_config_values({key: v for key, v in cfg.items() if key in BERT_KEYS}, config_name)
    base.update(vocab_size=5 + 4**k, pad_token_id=PAD_ID, **overrides)
    config = _bert_config(base, config_name)
    _check_relations(config, config_name)
    _check_size(config, config_name)
    return config


def _config_from_checkpoint(ckpt: io.Checkpoint, **overrides) -> BertConfig:
    """The checkpoint's config, checked on its own and against the weights (nothing is built)."""
    where = ckpt.path / "config.json"
    cfg = check_config_values({key: v for key, v in ckpt.config.items() if key in BERT_KEYS}, where)
    cfg.update(overrides)
    config = _bert_config(cfg, where)
    check_against_weights(config, ckpt.state_dict, where, ckpt.path)
    _check_relations(config, where)
    return config


def check_finite(state: dict, path: object) -> None:
    """Refuse weights holding NaN or infinite values (one pass over the floating tensors).

    Such a model scores every sequence NaN: predictions, metrics and attributions would be
    meaningless, so the checkpoint is refused when it is loaded.
    """
    floating = [(name, t) for name, t in state.items() if isinstance(t, torch.Tensor) and t.is_floating_point()]
    bad = [name for name, t in floating if not bool(torch.isfinite(t).all())]
    if bad:
        raise InputError(f"{path}: weights hold NaN or infinite values ({len(bad)} of {len(floating)} tensors, "
                         f"first: {bad[0]}); the checkpoint is not usable")


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

    Raises
    ------
    InputError
        Before any model is built: an unreadable checkpoint (:func:`m6abert.io.read_checkpoint`),
        a ``config.json`` of wrong types or ranges or whose sizes differ from the weights' shapes,
        weights holding NaN or infinite values; after: weights that do not fit the model.

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
        config = label_classes(_config_from_checkpoint(ckpt, num_labels=2, **config_overrides))
        model_cls = BertForSequenceClassification
    elif task == "mlm":
        config = _config_from_checkpoint(ckpt, **config_overrides)
        model_cls = BertForMaskedLM
    else:
        raise ValueError(f"unknown task {task!r}")
    check_finite(ckpt.state_dict, path)
    config._attn_implementation = attn_implementation
    try:
        model = model_cls(config)
    except (ValueError, TypeError, KeyError, ZeroDivisionError, AssertionError) as err:
        raise InputError(f"{ckpt.path / 'config.json'}: not a usable BERT config "
                         f"({' '.join(str(err).split())[:160]})") from None
    _load_weights(model, ckpt, path, task)
    return LoadedModel(model, ckpt.k)


def _load_weights(model: PreTrainedModel, ckpt: io.Checkpoint, path: str, task: str) -> None:
    """Copy the checkpoint's weights into ``model``; only the other task's head may be left over."""
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
        return BertForSequenceClassification(label_classes(config))
    return BertForMaskedLM(config)


def label_classes(config: BertConfig) -> BertConfig:
    """Name the classifier's two classes (:data:`LABELS`) in ``config``; returns it.

    A checkpoint's own names (``LABEL_0``/``LABEL_1`` of older fine-tuned models) are not read:
    the classes of this task are always these two.
    """
    config.id2label = dict(enumerate(LABELS))
    config.label2id = {name: i for i, name in enumerate(LABELS)}
    return config


def restore_weights(model: PreTrainedModel, folder: str) -> None:
    """Load the weights of a checkpoint folder saved from a model like ``model`` into it (every
    tensor, shapes checked): the best checkpoint of a run, exported as its final model.

    Raises
    ------
    InputError
        The folder is unreadable (:func:`m6abert.io.read_checkpoint`), or its weights do not fit.
    """
    ckpt = io.read_checkpoint(folder)
    check_finite(ckpt.state_dict, folder)
    try:
        model.load_state_dict(ckpt.state_dict, strict=True)
    except RuntimeError as err:
        raise InputError(f"{folder}: weights do not fit the model ({str(err).splitlines()[-1].strip()[:160]})") from None


@contextlib.contextmanager
def training_attention(model: torch.nn.Module, device: str | torch.device) -> Iterator[None]:
    """While the block runs, a BERT with attention dropout trains with eager attention on a CPU.

    PyTorch's CPU scaled-dot-product attention has no fused kernel with dropout and falls back to an
    unfused one that is slower than eager attention (bert-base, batch 8, bf16, one step: 10.0 s SDPA,
    6.8 s eager, 4.2 s SDPA without attention dropout; whole fine-tuning job 110.8 s -> 91.3 s). In
    float32, once malloc keeps the step's memory (:mod:`m6abert.memory`), eager was not slower
    either (whole job 143.4 s eager, 147.5 s SDPA). The same math either way; SDPA is restored
    afterwards (prediction, saved checkpoints) and used again by the inference loop's evaluations
    inside the block (:func:`inference_attention`). A no-op on GPUs, without attention dropout, for
    eager models and for models that are not BERTs.
    """
    cfg = getattr(model, "config", None)
    switch = (cfg is not None and torch.device(device).type == "cpu"
              and getattr(cfg, "_attn_implementation", None) == "sdpa"
              and getattr(cfg, "attention_probs_dropout_prob", 0.0) > 0)
    if switch:
        cfg._attn_implementation = "eager"
        _EAGER_FOR_TRAINING.add(id(cfg))
    try:
        yield
    finally:
        if switch:
            cfg._attn_implementation = "sdpa"
            _EAGER_FOR_TRAINING.discard(id(cfg))


_EAGER_FOR_TRAINING: set[int] = set()  # ids of the configs training_attention switched to eager


@contextlib.contextmanager
def inference_attention(model: torch.nn.Module) -> Iterator[None]:
    """SDPA again for an inference pass (a dev evaluation) inside :func:`training_attention`'s block:
    without dropout, SDPA's fused kernel is the faster one. A no-op for any other model."""
    cfg = getattr(model, "config", None)
    switch = cfg is not None and id(cfg) in _EAGER_FOR_TRAINING and cfg._attn_implementation == "eager"
    if switch:
        cfg._attn_implementation = "sdpa"
    try:
        yield
    finally:
        if switch:
            cfg._attn_implementation = "eager"
