"""Reproduce the paper's comparison table: m6A-BERT-Deg and four baselines on the same folds (the code is ``m6abert/cli/table.py``)."""

from m6abert.cli.table import main

if __name__ == "__main__":
    raise SystemExit(main())
