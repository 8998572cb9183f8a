"""The original's script name: find_motifs.py --set pos (all other flags are find_motifs.py's)."""

import sys

from m6abert.cli.motifs import main

if __name__ == "__main__":
    raise SystemExit(main(["--set", "pos", *sys.argv[1:]]))
