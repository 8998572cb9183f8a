"""Windows around m6A sites given as genome coordinates: a FASTA that get_input.py (pos.fa / neg.fa,
--pos_fasta / --neg_fasta) and run_predict_degradation.py --predict_fasta read.

  m6abert-windows --sites m6a.bed --genome hg38.fa --gtf genes.gtf --out data/pos.fa   # spliced mRNA windows
  m6abert-windows --sites m6a.tsv --genome hg38.fa --out windows.fa                    # genomic windows
  m6abert-windows --scan transcripts.fa --out scan.fa            # every DRACH site of each transcript record
  m6abert-windows --scan_gtf --gtf genes.gtf --genome hg38.fa --transcript ENST1,ENST2 --out scan.fa

Sites: BED6 (chrom, 0-based start, end = start + 1, name, score, strand; the strand is required, so
BED3/4/5 are refused) or a TSV whose first line is the header "chrom pos strand [name]" (pos 1-based).
A site's base must be an A on its strand. Genome: FASTA, plain or bgzip (not plain gzip), indexed by
pyfaidx (the .fai is written next to it). GTF (transcript_id) or GFF3 (exon Parent=). The sites, the
GTF/GFF3 and the --scan FASTA may be gzip- or bgzip-compressed; the genome only bgzip.

Each record: >ID chrom:pos:strand site=N [transcript=T] blocks=START-END,... (pos 1-based; site=N the
0-based index of the site in the window; blocks the 0-based half-open genome intervals of its bases,
in window order). ID: the site's name, else chrom:pos:strand; NAME|TRANSCRIPT when one site has windows
of several transcripts. --scan records: >TRANSCRIPT:POS site=N (no genome coordinates).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..utils import InputError
from .common import command, new_parser

INPUTS = ("sites", "genome", "gtf", "scan")


def build_parser() -> argparse.ArgumentParser:
    p = new_parser(__doc__, raw=True)
    g = p.add_argument_group("what to cut (one of)")
    g.add_argument("--sites", type=str, default=None, metavar="FILE",
                   help="m6A sites: BED6 (0-based start, strand required) or a TSV with the header chrom pos strand "
                        "[name] (pos 1-based); .gz too")
    g.add_argument("--scan", type=str, default=None, metavar="FASTA",
                   help="transcript sequences (record id = transcript): a window at every DRACH site, without genome "
                        "coordinates")
    g.add_argument("--scan_gtf", action="store_true",
                   help="a window at every DRACH site of every transcript of --gtf (spliced on --genome)")
    p.add_argument("--genome", type=str, default=None, metavar="FASTA",
                   help="genome FASTA, plain or bgzip (plain gzip is refused); its .fai index is written next to it")
    p.add_argument("--gtf", type=str, default=None, metavar="FILE",
                   help="GTF or GFF3 (.gz too): cut each window from the spliced mRNA of a transcript holding the "
                        "site in an exon (without it: genomic windows on the site's strand)")
    p.add_argument("--transcript", type=str, default=None, metavar="longest|all|ID,ID,...",
                   help="with --gtf, which transcript when several hold a site: the longest spliced one (ties: the "
                        "smallest id), all (ids NAME|TRANSCRIPT), or those named; with --scan/--scan_gtf: only the "
                        "transcripts named (default: longest; every transcript for the scans)")
    p.add_argument("--extend_len", type=int, default=250, metavar="NT",
                   help="nucleotides each side of the site (windows of 2 * NT + 1, shorter at ends)")
    p.add_argument("--out", type=str, required=True, metavar="FILE.fa",
                   help="the windows FASTA (its run record FILE.fa.windows_args.json goes next to it)")
    p.add_argument("--strict", action="store_true",
                   help="refuse a site that is not an A or lies in no exon (default: skip it with a warning)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    _check_mode(args)
    from ..windows import parse_choice

    args.choice = parse_choice(args.transcript)
    if args.extend_len < 1:
        raise InputError(f"--extend_len must be at least 1 nt, not {args.extend_len}")
    for flag in INPUTS:
        path = getattr(args, flag)
        if path is not None and not Path(path).is_file():
            raise InputError(f"--{flag} {path}: " + ("is a directory" if Path(path).is_dir() else "not found"))
    out = Path(args.out)
    if out.is_dir() or args.out.endswith(("/", ".gz")):
        raise InputError(f"--out {args.out}: give the name of a plain FASTA file to write (not a folder, not .gz)")
    inputs = {Path(getattr(args, f)).resolve() for f in INPUTS if getattr(args, f) is not None}
    if out.resolve() in inputs:
        raise InputError(f"--out {args.out} is one of the inputs; give another name")
    return args


def _check_mode(args: argparse.Namespace) -> None:
    """One input kind, and the flags it takes."""
    modes = [f for f, on in (("--sites", args.sites is not None), ("--scan", args.scan is not None),
                             ("--scan_gtf", args.scan_gtf)) if on]
    if len(modes) != 1:
        raise InputError("give one of --sites, --scan or --scan_gtf" if not modes
                         else f"{' and '.join(modes)} exclude each other; give one")
    if args.sites is not None and args.genome is None:
        raise InputError("--sites needs --genome FASTA")
    if args.sites is not None and args.transcript is not None and args.gtf is None:
        raise InputError("--transcript needs --gtf (genomic windows come from no transcript)")
    if args.scan is not None and (args.genome is not None or args.gtf is not None):
        raise InputError("--scan reads transcript sequences: --genome and --gtf are not used with it "
                         "(--scan_gtf scans the transcripts of --gtf on --genome)")
    if args.scan_gtf and (args.gtf is None or args.genome is None):
        raise InputError("--scan_gtf needs --gtf and --genome")
    if modes[0] != "--sites" and args.strict:
        raise InputError(f"--strict applies to --sites only, not {modes[0]}")
    if modes[0] != "--sites" and args.transcript == "longest":
        raise InputError(f"{modes[0]} scans every transcript; --transcript longest applies to --sites only "
                         "(give transcript ids to scan only those)")


def run(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from ..commands.windows import make_windows

    run_args = {k: v for k, v in vars(args).items() if k not in ("quiet", "verbose", "progress_interval", "choice")}
    return make_windows(args.out, sites=args.sites, genome=args.genome, gtf=args.gtf, scan=args.scan,
                        scan_gtf=args.scan_gtf, transcript=args.choice, extend_len=args.extend_len,
                        strict=args.strict, run_args=run_args)


main = command(run)

if __name__ == "__main__":
    raise SystemExit(main())
