"""FASTA (pos.fa, neg.fa) -> balanced, split, k-merised train/dev/test.tsv; or a pretraining corpus (the original's command; the code is ``m6abert/cli/get_input.py``)."""

from m6abert.cli.get_input import main

if __name__ == "__main__":
    raise SystemExit(main())
