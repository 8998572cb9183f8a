"""The original's script name: find_motifs.py --set neg (all other flags are find_motifs.py's)."""

from __future__ import annotations

import sys

from find_motifs import main

if __name__ == "__main__":
    main(["--set", "neg", *sys.argv[1:]])
