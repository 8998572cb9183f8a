"""The constants of the model and the data, each defined once.

>>> MAX_POSITIONS, SITE_INDEX, BASES
(512, 250, 'ATCG')
"""

from __future__ import annotations

MAX_POSITIONS = 512  # BERT position embeddings: tokens per row incl. [CLS]/[SEP]
SITE_INDEX = 250  # the m6A "A" in the paper's 501-nt windows (site +- 250 nt)
BASES = "ATCG"  # DNABERT's digit order A=0, T=1, C=2, G=3 (not alphabetical); U is read as T
ALPHABET = "ACGT"  # the alphabetical order of every array and figure with a column per base (ISM, logos, one-hot)
FASTA_LETTERS = frozenset("ACGTUN")  # letters a FASTA record may hold (upper-cased)
KMER_LETTERS = "ACGTN"  # letters a k-mer sentence may hold (N k-mers are read as [UNK])

# integrated gradients (visualize_all.py --vis_task attr): Gauss-Legendre steps per reference by default
# and with --dnabert_compat (the original's), and dinucleotide-shuffled references per sequence
IG_STEPS_COMPAT, N_BASELINES = 50, 4  # the original's fixed steps; shuffled references per sequence
IG_FIRST_STEPS, IG_MAX_STEPS = 8, 128  # adaptive integration: Gauss-Legendre points first, doubled up to the cap
MAX_REL_DELTA, MAX_ABS_DELTA = 0.1, 1e-3  # attributions flagged above this relative completeness error, unless
# their absolute error (log-odds or probability) is at most this
# the letters figures draw (--letters): m6A windows are mRNA, so U by default; the arrays and tables keep ACGT
LETTERS = {"rna": ALPHABET.replace("T", "U"), "dna": ALPHABET}
