"""m6abert: m6A-BERT-Deg re-implemented on current PyTorch and Hugging Face transformers."""

__version__ = "0.1.0"
