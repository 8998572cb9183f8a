"""The notebook interface: sequences in, numbers out, no command line and no files but the model's.

>>> import tempfile, torch                           # a random tiny model folder, for these examples
>>> from m6abert import io
>>> from m6abert.model import build_config, new_model
>>> _ = torch.manual_seed(0); TINY_MODEL = tempfile.mkdtemp() + "/model"
>>> io.save_checkpoint(TINY_MODEL, new_model(build_config("tiny", 3), "classification"), 3)
>>> import m6abert
>>> model = m6abert.load(TINY_MODEL)                 # a fine-tuned model folder
>>> p = m6abert.predict(["ACGU" * 60, "GGCA" * 60], model)
>>> p.shape, bool(((p > 0) & (p < 1)).all())
((2,), True)
>>> scores = m6abert.attribute(["ACGT" * 60], model, n_steps=4, n_baselines=1)
>>> scores.signed[0, :scores.lengths[0]].shape        # one signed score per nucleotide (rows padded)
(240,)
>>> ism = m6abert.saturation_mutagenesis(["ACGT" * 60], model, window=(-5, 5), site_index=120)
>>> int(ism.starts[0]), int(ism.ends[0]), ism.delta.shape[2]   # bases 115..124 to A, C, G, T
(115, 125, 4)

Every function takes sequences as strings (any case, ``U`` read as ``T``) and a model as a folder
or as what :func:`load` returned; the defaults are those of the commands (``visualize_all.py``:
log-odds target, 4 dinucleotide-shuffled references, 32 integration steps). The files the commands
read are loaded with :func:`read_fasta` and :func:`read_tsv`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .constants import IG_MAX_STEPS, MAX_POSITIONS, N_BASELINES, SITE_INDEX
from .io import read_fasta, read_tsv

__all__ = ["Model", "load", "predict", "attribute", "saturation_mutagenesis", "read_fasta", "read_tsv"]


class Model(NamedTuple):
    """A fine-tuned classifier and the k of its k-mers."""

    model: object  # transformers.BertForSequenceClassification, in eval mode
    k: int


def load(model_dir: str | os.PathLike, max_seq_length: int = MAX_POSITIONS) -> Model:
    """A fine-tuned model folder (this toolkit's, or the original's checkpoint) ready to score."""
    from .inference import load_classifier

    model, k = load_classifier(model_dir, None, max_seq_length)
    return Model(model.eval(), k)


def _model(model: Model | str | os.PathLike) -> Model:
    return model if isinstance(model, Model) else load(model)


def predict(seqs: Sequence[str], model: Model | str | os.PathLike, batch_size: int = 8, device: str = "cpu",
            bf16: bool = False) -> np.ndarray:
    """P(degraded) of each sequence, shape ``(len(seqs),)`` float32."""
    from .data import dataset_from_seqs
    from .inference import autocast
    from .inference import predict as predict_logits
    from .metrics import softmax_p1

    m = _model(model)
    data = dataset_from_seqs(list(seqs), m.k)
    with autocast(device, "bf16" if bf16 else None):
        logits = predict_logits(m.model, data.dataset, batch_size=batch_size, device=device, verbose=False)
    return softmax_p1(logits).astype(np.float32)


def attribute(seqs: Sequence[str], model: Model | str | os.PathLike, labels: Sequence[int] | None = None,
              target: str = "logodds", baseline: str = "shuffle", n_baselines: int = N_BASELINES,
              n_steps: int | None = None, max_ig_steps: int = IG_MAX_STEPS, seed: int = 42, device: str = "cpu"):
    """Integrated-gradients attribution of each nucleotide (:func:`m6abert.attribution.attribution_scores`),
    towards each sequence's ``labels`` (default: "degraded" for all). Returns its ``AttributionScores``:
    ``signed`` (raw units, adding up to ``f_input - f_baseline``), ``scores`` (|attribution|, rows
    L2-normalised, the original's kind), both padded to one width (row ``i``'s first ``lengths[i]``
    columns are its nucleotides), and the completeness check of every row. ``n_steps`` fixes the
    Gauss-Legendre steps; by default they are adaptive up to ``max_ig_steps`` (:mod:`m6abert.integration`)."""
    from .attribution import attribution_scores, check_baseline
    from .data import dataset_from_seqs

    m = _model(model)
    check_baseline(baseline, n_baselines)
    y = [1] * len(seqs) if labels is None else list(labels)
    data = dataset_from_seqs(list(seqs), m.k, y)
    from .integration import FIRST_STEPS, Tolerance

    tol = Tolerance.fixed(n_steps) if n_steps is not None else Tolerance(first=min(FIRST_STEPS, max_ig_steps),
                                                                         cap=max_ig_steps)
    return attribution_scores(m.model, data.dataset, m.k, n_steps=tol.first, device=device, verbose=False,
                              attr_target=target, baseline=baseline, n_baselines=n_baselines, seed=seed,
                              tolerance=tol)


def saturation_mutagenesis(seqs: Sequence[str], model: Model | str | os.PathLike,
                           window: tuple[int, int] | None = None, site_index: int = SITE_INDEX,
                           device: str = "cpu"):
    """Δ log-odds of every single-base substitution in ``window`` (positions relative to the site at
    ``site_index``; default: the whole sequence): :func:`m6abert.ism.saturation_mutagenesis`. Its
    ``delta`` is ``(N, L, 4)`` over the whole sequences; positions ``starts[i]..ends[i]`` were mutated."""
    from .ism import saturation_mutagenesis as ism

    m = _model(model)
    return ism(m.model, list(seqs), m.k, window=window, site_index=site_index, device=device, verbose=False)
