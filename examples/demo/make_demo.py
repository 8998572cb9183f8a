"""Generate the demo data set: examples/demo/pos.fa and neg.fa (300 + 300 synthetic 501-nt windows).

Every window has a DRACH motif whose A, the "m6A site", is at 0-based index 250, like the paper's
windows. What makes positives learnable is a planted motif; GC content is only a weak cue, as in the
paper's data (where GC fraction alone gives a ROC AUC of about 0.73):

- 90 % of positives carry the motif ``TGTAAATA`` with its first base 80..120 nt upstream of the site
  (start index 130..170, uniform); no negative has it anywhere;
- each window's GC content is drawn from a normal distribution (standard deviation ``GC_SD``) around
  ``GC["pos"]`` or ``GC["neg"]``, so that GC fraction alone separates the classes with a ROC AUC of
  about 0.70 (measured by tests/test_demo.py), and motif presence alone with 0.95.

The output is fixed by ``numpy.random.RandomState(0)``; re-running the script rewrites the same bytes.

Usage: ``python examples/demo/make_demo.py [--out_dir DIR]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from m6abert import io

N_PER_CLASS = 300
LENGTH = 501
SITE = 250  # 0-based index of the A of DRACH
DRACH = ("AGT", "AG", "A", "C", "ACT")  # allowed bases at SITE-2 .. SITE+2
MOTIF = "TGTAAATA"
MOTIF_FRACTION = 0.9
MOTIF_UPSTREAM = (80, 120)  # nt between the motif's first base and the site, inclusive
GC = {"pos": 0.525, "neg": 0.475}  # mean GC content of a class's windows
GC_SD = 0.05  # spread of the GC content between windows of a class
LINE_WIDTH = 60


def background(rng: np.random.RandomState, n: int, gc: float) -> str:
    """``n`` random bases with G+C frequency ``gc``."""
    p = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]  # A, C, G, T
    return "".join(rng.choice(list("ACGT"), size=n, p=p))


def with_drach(rng: np.random.RandomState, seq: str) -> str:
    """Put a random DRACH at SITE-2 .. SITE+2."""
    drach = "".join(rng.choice(list(options)) for options in DRACH)
    return seq[: SITE - 2] + drach + seq[SITE + 3 :]


def window(rng: np.random.RandomState, label: str) -> str:
    """One window of class ``label`` without the motif: GC content drawn around the class mean."""
    gc = float(np.clip(rng.normal(GC[label], GC_SD), 0.3, 0.7))
    while True:  # a chance copy of the motif is drawn again: only planted copies carry the signal
        seq = with_drach(rng, background(rng, LENGTH, gc))
        if MOTIF not in seq:
            return seq


def make_class(rng: np.random.RandomState, label: str) -> list[str]:
    """The ``N_PER_CLASS`` windows of a class; for positives, the motif planted in ``MOTIF_FRACTION``."""
    seqs = [window(rng, label) for _ in range(N_PER_CLASS)]
    if label == "pos":
        carriers = rng.choice(N_PER_CLASS, size=round(MOTIF_FRACTION * N_PER_CLASS), replace=False)
        for i in sorted(carriers):
            start = SITE - rng.randint(MOTIF_UPSTREAM[0], MOTIF_UPSTREAM[1] + 1)
            seqs[i] = seqs[i][:start] + MOTIF + seqs[i][start + len(MOTIF) :]
    return seqs


def fasta_text(prefix: str, seqs: list[str]) -> str:
    """FASTA records ``{prefix}1``, ``{prefix}2``, ... with ``LINE_WIDTH`` bases per line."""
    out = []
    for i, seq in enumerate(seqs, 1):
        out.append(f">{prefix}{i}\n")
        out.extend(seq[j : j + LINE_WIDTH] + "\n" for j in range(0, len(seq), LINE_WIDTH))
    return "".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out_dir", type=Path, default=Path(__file__).resolve().parent,
                   help="where pos.fa and neg.fa are written (default: this script's folder)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rng = np.random.RandomState(0)
    pos = make_class(rng, "pos")
    neg = make_class(rng, "neg")
    for name, prefix, seqs in (("pos.fa", "p", pos), ("neg.fa", "n", neg)):
        io.write_text(args.out_dir / name, fasta_text(prefix, seqs))  # atomic; creates the folder
    print(f"wrote {len(pos)} positives and {len(neg)} negatives to {args.out_dir}")


if __name__ == "__main__":
    main()
