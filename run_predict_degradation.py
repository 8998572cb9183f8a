"""Predict degradation probabilities with a fine-tuned m6A-BERT-Deg model (the original's command; the code is ``m6abert/cli/predict.py``)."""

from m6abert.cli.predict import main

if __name__ == "__main__":
    raise SystemExit(main())
