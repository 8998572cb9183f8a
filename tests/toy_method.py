"""A toy score method in one file: gradient x input on the embeddings (Captum's LayerGradientXActivation)
of the true label's log-odds, spread to nucleotides. Registering it is all it takes to run it through
visualize_all.py, find_motifs.py and profile_peak (tests/test_score_methods.py)."""

from __future__ import annotations

import numpy as np
import torch

from m6abert.attribution import _spread, target_function
from m6abert.data import Collator, kmer_counts, real_token_mask
from m6abert.inference import run_batches
from m6abert.score_methods import ScoreMethod, ScoreOutput, register


def gradient_x_input(model, data, s, common: dict) -> ScoreOutput:
    """|gradient x input| per nucleotide (L2-normalised rows), and the signed values as an extra array."""
    from captum.attr import LayerGradientXActivation

    k, width = common["k"], common["max_seq_length"]
    gxa = LayerGradientXActivation(target_function(model, "logodds"), model.bert.embeddings)

    def step(m: torch.nn.Module, batch: dict) -> tuple[np.ndarray, ...]:
        ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
        attr = gxa.attribute(ids, target=labels, additional_forward_args=(mask,)).sum(dim=-1).detach()
        real = real_token_mask(mask)
        raw = attr.double().cpu().numpy()
        return (_spread(np.abs(raw), real, k, width, False, True), _spread(raw, real, k, width, False, False),
                kmer_counts(real) + k - 1)

    out = run_batches(model, data.dataset, Collator(width), step, common["batch_size"], common["device"],
                      "gradient x input", False, grad=True)
    scores, signed, lengths = (np.concatenate(parts) for parts in zip(*out, strict=True))
    return ScoreOutput(scores, lengths.astype(np.int64), {"signed": signed})


GXI = ScoreMethod(kind="gxi", stem="gradxinput", name="gradient x input",
                  title="Gradient x input of each nucleotide", help="gradient x input on the embeddings (a toy)",
                  compute="toy_method:gradient_x_input", labelled_input=True,
                  arrays={"signed": "gradxinput_signed_{data_name}{layer}.npy"})


def install() -> ScoreMethod:
    return register(GXI)
