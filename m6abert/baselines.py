"""The baselines of the comparison table that are not BERT: CNN+LSTM, k-mer and GC-content regressions.

:class:`CnnLstmForSequenceClassification` is a 1-D CNN over one-hot nucleotides, a bidirectional
LSTM and a linear head, a transformers ``PreTrainedModel`` with its own config
(:class:`CnnLstmConfig`): it is trained by the toolkit's loop (:func:`m6abert.train.train`, which
needs only ``.loss``), saved with ``save_pretrained`` (a Hugging Face folder, never a pickle) and
read back with ``from_pretrained``. Its inputs are nucleotide codes (:func:`nucleotide_dataset`,
:class:`NucleotideCollator`), not k-mers.

The scikit-learn baselines are logistic regressions: on k-mer frequencies, k chosen by an inner
cross-validation on the training sequences only (:func:`fit_kmer_lr`), and on GC content
(:func:`fit_gc_lr`). scikit-learn is imported where they are fitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .constants import ALPHABET
from .utils import InputError

NUCLEOTIDES = ALPHABET  # one-hot channel order; N and padding are all-zero columns
N_CODE, PAD_CODE = 4, 5
CNN_SIZES = ("n_filters", "kernel_size", "pool_size", "lstm_hidden", "dropout")  # the fields of CnnLstmConfig
_CODES = np.full(256, N_CODE, dtype=np.int64)
for _i, _b in enumerate(NUCLEOTIDES):
    _CODES[ord(_b)] = _CODES[ord(_b.lower())] = _i
_CODES[ord("U")] = _CODES[ord("u")] = NUCLEOTIDES.index("T")


# ---------------------------------------------------------------------------- CNN + LSTM
class CnnLstmConfig(PretrainedConfig):
    """Sizes of :class:`CnnLstmForSequenceClassification` (saved as its ``config.json``).

    Parameters
    ----------
    n_filters: int
        Convolution channels. Default is 64.
    kernel_size: int
        Convolution width in nucleotides (odd). Default is 9.
    pool_size: int
        Max-pooling width and stride after the convolution. Default is 4.
    lstm_hidden: int
        Hidden units of each LSTM direction. Default is 64.
    dropout: float
        Dropout after pooling and before the head. Default is 0.2.
    """

    model_type = "m6abert_cnn_lstm"

    def __init__(self, n_filters: int = 64, kernel_size: int = 9, pool_size: int = 4, lstm_hidden: int = 64,
                 dropout: float = 0.2, **kwargs):
        kwargs.setdefault("num_labels", 2)
        super().__init__(**kwargs)
        self.n_filters, self.kernel_size, self.pool_size = n_filters, kernel_size, pool_size
        self.lstm_hidden, self.dropout = lstm_hidden, dropout


class CnnLstmForSequenceClassification(PreTrainedModel):
    """Conv1d (one-hot A/C/G/T -> ``n_filters``) + ReLU + max-pool, a bidirectional LSTM over the
    packed (unpadded) positions, max- and mean-pooling over them, dropout and a linear head of
    ``num_labels`` logits. A sequence's logits do not depend on the padding of its batch.

    ``forward(input_ids, attention_mask, labels)`` takes nucleotide codes (A, C, G, T = 0..3, N = 4,
    padding = 5), shape (B, L), and returns ``.logits`` (B, num_labels) and, with labels, the
    cross-entropy ``.loss``.
    """

    config_class = CnnLstmConfig
    base_model_prefix = "cnn_lstm"
    main_input_name = "input_ids"

    def __init__(self, config: CnnLstmConfig):
        super().__init__(config)
        self.conv = torch.nn.Conv1d(len(NUCLEOTIDES), config.n_filters, config.kernel_size,
                                    padding=config.kernel_size // 2)
        self.pool = torch.nn.MaxPool1d(config.pool_size, ceil_mode=True)
        self.lstm = torch.nn.LSTM(config.n_filters, config.lstm_hidden, batch_first=True, bidirectional=True)
        self.dropout = torch.nn.Dropout(config.dropout)
        self.classifier = torch.nn.Linear(4 * config.lstm_hidden, config.num_labels)
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        """PyTorch's default initialisation of each layer (drawn from the global generator)."""
        if isinstance(module, torch.nn.Conv1d | torch.nn.Linear | torch.nn.LSTM):
            module.reset_parameters()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, **_) -> SequenceClassifierOutput:
        """Logits (and loss) of a batch of nucleotide codes, shape (B, L)."""
        onehot = torch.nn.functional.one_hot(input_ids.clamp(0, PAD_CODE), PAD_CODE + 1)[..., : len(NUCLEOTIDES)]
        x = onehot.to(self.conv.weight.dtype).transpose(1, 2)  # B, 4, L
        if attention_mask is None:
            attention_mask = (input_ids != PAD_CODE).long()
        real = attention_mask[:, None, :] > 0  # B, 1, L
        x = self.pool(torch.relu(self.conv(x)).masked_fill(~real, 0.0))  # B, C, L'; padding never wins a max
        lengths = torch.div(real.sum(dim=(1, 2)) + self.config.pool_size - 1, self.config.pool_size,
                            rounding_mode="floor").clamp(min=1)  # B, pooled real positions
        packed = torch.nn.utils.rnn.pack_padded_sequence(self.dropout(x.transpose(1, 2)), lengths.cpu(),
                                                         batch_first=True, enforce_sorted=False)
        h, _ = torch.nn.utils.rnn.pad_packed_sequence(self.lstm(packed)[0], batch_first=True,
                                                      total_length=x.shape[2])  # B, L', 2H
        m = (torch.arange(h.shape[1], device=h.device)[None, :] < lengths[:, None])[..., None]  # B, L', 1
        h_max = h.masked_fill(~m, torch.finfo(h.dtype).min).amax(dim=1)
        h_mean = (h * m).sum(dim=1) / m.sum(dim=1).clamp(min=1)
        logits = self.classifier(self.dropout(torch.cat([h_max, h_mean], dim=1)))  # B, num_labels
        loss = None
        if labels is not None:
            loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


def nucleotide_codes(seq: str) -> np.ndarray:
    """A sequence as codes A, C, G, T = 0..3 (``U`` as T, any case), anything else N = 4.

    >>> nucleotide_codes("ACgTuN").tolist()
    [0, 1, 2, 3, 3, 4]
    """
    return _CODES[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]


class NucleotideDataset(torch.utils.data.Dataset):
    """Sequences as items ``{"input_ids": codes[, "labels"]}`` for :class:`NucleotideCollator`."""

    def __init__(self, seqs: Sequence[str], labels: Sequence[int] | None = None):
        self.codes = [nucleotide_codes(s) for s in seqs]
        self.labels = None if labels is None else [int(v) for v in labels]

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i: int) -> dict:
        item = {"input_ids": self.codes[i]}
        if self.labels is not None:
            item["labels"] = self.labels[i]
        return item


class NucleotideCollator:
    """Pad items to the batch's longest sequence with ``PAD_CODE``; ``attention_mask`` 1 on real positions."""

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(it["input_ids"]) for it in items)
        ids = torch.full((len(items), width), PAD_CODE, dtype=torch.long)  # B, L
        mask = torch.zeros((len(items), width), dtype=torch.long)  # B, L
        for row, it in enumerate(items):
            n = len(it["input_ids"])
            ids[row, :n] = torch.from_numpy(it["input_ids"])
            mask[row, :n] = 1
        batch = {"input_ids": ids, "attention_mask": mask}
        if "labels" in items[0]:
            batch["labels"] = torch.tensor([it["labels"] for it in items], dtype=torch.long)
        return batch


# ---------------------------------------------------------------------------- logistic regressions
class KmerFit(NamedTuple):
    """A fitted k-mer frequency regression and how its k was chosen."""

    model: object  # a fitted sklearn Pipeline (scaler + logistic regression)
    k: int
    inner_auc: dict[int, float]  # k -> mean AUC over the inner folds of the training sequences


def kmer_frequencies(seqs: Sequence[str], k: int) -> np.ndarray:
    """(N, 4**k) frequencies of the k-mers of A/C/G/T in each sequence (k-mers with N are skipped).

    >>> kmer_frequencies(["ACGT"], 2).reshape(4, 4)[[0, 1, 2], [1, 2, 3]].round(3).tolist()
    [0.333, 0.333, 0.333]
    """
    out = np.zeros((len(seqs), 4**k), dtype=np.float64)
    weights = 4 ** np.arange(k - 1, -1, -1)
    for row, seq in enumerate(seqs):
        codes = nucleotide_codes(seq)
        if len(codes) < k:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(codes, k)  # n, k
        windows = windows[(windows < N_CODE).all(axis=1)]
        counts = np.bincount(windows @ weights, minlength=4**k)
        out[row] = counts / max(counts.sum(), 1)
    return out


def gc_content(seqs: Sequence[str]) -> np.ndarray:
    """(N, 1) fraction of G and C among the A/C/G/T letters of each sequence.

    >>> gc_content(["GGCA", "ATNN"]).ravel().tolist()
    [0.75, 0.0]
    """
    out = np.zeros((len(seqs), 1))
    for row, seq in enumerate(seqs):
        codes = nucleotide_codes(seq)
        acgt = codes < N_CODE
        out[row, 0] = np.isin(codes, (1, 2)).sum() / max(acgt.sum(), 1)
    return out


def logistic_pipeline(seed: int):
    """Standardised features and an L2 logistic regression (C = 1, lbfgs), seeded."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, random_state=seed))


def inner_cv_auc(x: np.ndarray, y: np.ndarray, n_splits: int, seed: int, groups: np.ndarray | None = None) -> float:
    """Mean ROC AUC of :func:`logistic_pipeline` over a stratified ``n_splits``-fold CV of (x, y);
    with ``groups``, scikit-learn's ``StratifiedGroupKFold`` keeps each group in one inner fold."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if groups is None:
        splits = StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(x, y)
    else:
        splits = StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed).split(x, y, groups)
    aucs = []
    for tr, va in splits:
        if len(set(y[va].tolist())) < 2 or len(set(y[tr].tolist())) < 2:
            raise InputError(f"--inner_folds {n_splits}: an inner fold of the training set holds one class only "
                             "(too few locus groups of a class); use fewer inner folds")
        model = logistic_pipeline(seed).fit(x[tr], y[tr])
        aucs.append(roc_auc_score(y[va], model.predict_proba(x[va])[:, 1]))
    return float(np.mean(aucs))


def fit_kmer_lr(seqs: Sequence[str], labels: Sequence[int], ks: Sequence[int] = (1, 2, 3, 4, 5, 6),
                inner_folds: int = 5, seed: int = 52, groups: Sequence[int] | None = None) -> KmerFit:
    """Fit the k-mer frequency regression on training sequences only, k chosen by inner CV.

    Every k of ``ks`` is scored by the mean AUC of a stratified ``inner_folds``-fold CV of
    ``seqs`` (the training folds of the outer split; nothing else is seen), grouped by ``groups``
    when given (windows of one locus never on both sides of an inner split: otherwise the largest
    k wins by recognising loci); the best k (the smallest among ties) is refitted on all of ``seqs``.

    Returns
    -------
    KmerFit
        The fitted pipeline (predict with ``kmer_frequencies(test, fit.k)``), k and the inner AUCs.
    """
    y = np.asarray(labels, dtype=np.int64)
    g = None if groups is None else np.asarray(groups)
    features = {k: kmer_frequencies(seqs, k) for k in ks}
    inner = {k: inner_cv_auc(features[k], y, inner_folds, seed, g) for k in ks}
    best = max(ks, key=lambda k: (inner[k], -k))
    return KmerFit(logistic_pipeline(seed).fit(features[best], y), best, inner)


def fit_gc_lr(seqs: Sequence[str], labels: Sequence[int], seed: int = 52):
    """A logistic regression on GC content fitted on ``seqs`` (predict with ``gc_content(test)``)."""
    return logistic_pipeline(seed).fit(gc_content(seqs), np.asarray(labels, dtype=np.int64))
