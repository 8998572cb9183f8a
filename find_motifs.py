"""Find motifs enriched in high-score regions of positives (or negatives) from saved score arrays (the original's command; the code is ``m6abert/cli/motifs.py``)."""

from m6abert.cli.motifs import main

if __name__ == "__main__":
    raise SystemExit(main())
