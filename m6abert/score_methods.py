"""The per-nucleotide score methods of ``visualize_all.py --vis_task``, declared once.

Each :class:`ScoreMethod` names its ``--vis_task`` value, the file stem of its (N, L) score array, its
figure title, the function that computes it and what else it writes (arrays, QC table, figures).
The visualise command (:mod:`m6abert.commands.visualize`), the score loaders
(:func:`m6abert.data.read_labelled_scores`), ``find_motifs.py``, ``profile_peak`` and the CLI choices
all read :data:`METHODS`; a new method is its compute module plus one :func:`register` call (or one
entry below for a built-in one), and nothing else changes.

A method's ``compute`` (``"module:function"``, imported when used) is called as
``compute(model, data, settings, common)``: ``data`` a labelled data set (``.dataset``, ``.labels``,
``.names``), ``settings`` the command's :class:`~m6abert.commands.visualize.VisualizeSettings`,
``common`` the forward settings (``k``, ``max_seq_length``, ``layer``, ``dnabert_compat``,
``batch_size``, ``device``). It returns a :class:`ScoreOutput`: the method-neutral result.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from .utils import InputError

if TYPE_CHECKING:
    import numpy as np


class ScoreOutput(NamedTuple):
    """What a score method computed for a data set, whatever the method."""

    scores: np.ndarray  # (N, L) per nucleotide: the array heatmaps, profiles and motifs read
    lengths: np.ndarray  # (N,) sequence lengths in nucleotides
    arrays: dict = {}  # key of ScoreMethod.arrays -> (N, ...) array written beside the scores
    qc: dict | None = None  # the per-row QC table (column -> values; "row" first), or None
    unreliable: np.ndarray | None = None  # (N,) bool, the rows the QC says not to trust (None: no QC)
    figures: dict = {}  # key of ScoreMethod.figures -> a matplotlib Figure (PNG and PDF)
    meta: dict = {}  # extra entries of the score record (.npy.json)


@dataclass(frozen=True)
class ScoreMethod:
    """One ``--vis_task``: its files, its title, its computation and what else it writes.

    File names are templates filled with ``{stem}`` (``{stem}_{data_name}[_layer_{layer}]``),
    ``{data_name}`` and ``{layer}`` (``_layer_{layer}`` or empty). An array template without ``{layer}``
    (and without ``{stem}``) is layer-independent: written and owned only by runs without ``--layer``.
    """

    kind: str  # the --vis_task value
    stem: str  # {stem}_{data_name}.npy: the (N, L) per-nucleotide scores
    name: str  # one word for messages ("attribution profile of positives peaks at ...")
    title: str  # figure titles, in words
    help: str  # the --vis_task help text
    compute: str  # "module:function" -> ScoreOutput (see the module's docstring)
    attn_implementation: str = "sdpa"  # how the model is loaded ("eager" to read attention weights)
    labelled_input: bool = False  # the data set is loaded with its labels (the target is the true label)
    settings: tuple[str, ...] = ()  # VisualizeSettings fields recorded in the score record (and compared by merges)
    forward_settings: tuple[str, ...] = ("batch_size",)  # the batch settings recorded and compared
    arrays: dict[str, str] = field(default_factory=dict)  # key -> file name template of an extra array
    qc_table: str | None = None  # file name template of the QC table ("{stem}_qc.tsv"); None: no QC
    qc_column: str | None = None  # the QC table's column compared with --max_rel_delta
    qc_abs_column: str | None = None  # ... and the one compared with --max_abs_delta (a row passes on either)
    figures: dict[str, str] = field(default_factory=dict)  # key -> figure stem template (PNG and PDF)
    driver: str | None = None  # "module:function" running the whole command instead of the generic one
    layers: bool = True  # --layer applies

    def file_stem(self, data_name: str, layer: int | None = None) -> str:
        """``{stem}_{data_name}``, with ``_layer_{layer}`` if given."""
        return f"{self.stem}_{data_name}" + ("" if layer is None else f"_layer_{layer}")

    def fill(self, template: str, data_name: str, layer: int | None = None) -> str:
        """A file name template of this method for one data set (and layer)."""
        return template.format(stem=self.file_stem(data_name, layer), data_name=data_name,
                               layer="" if layer is None else f"_layer_{layer}")

    def array_names(self, data_name: str, layer: int | None = None) -> dict[str, str]:
        """key -> file name of the extra arrays a run writes (layer-independent ones only without ``layer``)."""
        return {key: self.fill(t, data_name, layer) for key, t in self.arrays.items()
                if layer is None or "{layer}" in t or "{stem}" in t}

    def figure_stems(self, data_name: str, layer: int | None = None) -> dict[str, str]:
        return {key: self.fill(t, data_name, layer) for key, t in self.figures.items()}

    def qc_name(self, data_name: str, layer: int | None = None) -> str | None:
        return None if self.qc_table is None else self.fill(self.qc_table, data_name, layer)

    def function(self, which: str = "compute") -> Callable:
        """The compute (or driver) function, imported."""
        module, _, name = getattr(self, which).partition(":")
        return getattr(importlib.import_module(module), name)


METHODS: dict[str, ScoreMethod] = {}


def register(method: ScoreMethod) -> ScoreMethod:
    """Add a score method (its ``kind`` becomes a ``--vis_task`` choice); a kind or stem taken is refused."""
    taken = [m.kind for m in METHODS.values() if method.stem == m.stem and method.kind != m.kind]
    if taken:
        raise ValueError(f"score file stem {method.stem!r} is already {taken[0]!r}'s")
    METHODS[method.kind] = method
    return method


def method(kind: str) -> ScoreMethod:
    """The score method of ``--vis_task kind``; an unknown kind is an ``InputError``."""
    if kind not in METHODS:
        raise InputError(f"--vis_task must be one of {', '.join(METHODS)}, not {kind!r}")
    return METHODS[kind]


def with_qc() -> list[str]:
    """The kinds that write a QC table (``--max_rel_delta``, ``--skip_unreliable`` apply to them)."""
    return [m.kind for m in METHODS.values() if m.qc_table is not None]


register(ScoreMethod(
    kind="attn", stem="atten", name="attention", title="Attention of [CLS] to each nucleotide",
    help="[CLS] attention of the last layer", compute="m6abert.attention:attention_output",
    attn_implementation="eager", arrays={"probs": "pred_results_{data_name}.npy"}))
register(ScoreMethod(
    kind="attr", stem="attributions", name="attribution",
    title="Attribution of each nucleotide (|integrated gradients|)",
    help="layer integrated gradients on the embeddings", compute="m6abert.completeness:ig_output",
    labelled_input=True, settings=("attr_target", "n_steps", "max_ig_steps", "max_rel_delta", "max_abs_delta", "baseline",
                                        "n_baselines", "seed"),
    forward_settings=("batch_size", "internal_batch_size"),
    arrays={"signed": "attributions_signed_{data_name}{layer}.npy"}, qc_table="{stem}_qc.tsv", qc_column="rel_error",
    qc_abs_column="abs_delta",
    figures={"signed_profile": "attributions_signed_{data_name}{layer}_profile"}))
register(ScoreMethod(
    kind="ism", stem="ism_summary", name="ISM", title="Mean |Δ log-odds| of the substitutions at each position",
    help="in-silico saturation mutagenesis (Δ log-odds of every single-base substitution)",
    compute="m6abert.ism:saturation_mutagenesis", forward_settings=("ism_batch_size",),
    driver="m6abert.commands.visualize_ism:visualize_ism", layers=False))
