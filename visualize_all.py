"""Per-nucleotide attention (attn) or integrated-gradients attribution (attr) scores of a fine-tuned model (the original's command; the code is ``m6abert/cli/visualize.py``)."""

from m6abert.cli.visualize import main

if __name__ == "__main__":
    raise SystemExit(main())
