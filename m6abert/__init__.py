"""m6abert: m6A-BERT-Deg re-implemented on current PyTorch and Hugging Face transformers.

The notebook interface (:mod:`m6abert.api`) is importable from here: ``m6abert.load``,
``m6abert.predict``, ``m6abert.attribute``, ``m6abert.saturation_mutagenesis``, ``m6abert.read_fasta``,
``m6abert.read_tsv``; it is loaded on first use, so ``import m6abert`` stays light.
"""

__version__ = "0.1.0"

_API = ("Model", "load", "predict", "attribute", "saturation_mutagenesis", "read_fasta", "read_tsv")


def __getattr__(name: str):
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'm6abert' has no attribute {name!r}")
