"""Generate the demo's small genome: examples/demo/genome/{genome.fa, genes.gtf, sites.bed}.

Four spliced transcripts (three exons each; two on the + strand, two on the - strand) on two
chromosomes, and m6A sites in their mRNA as genome coordinates, so that ``m6abert-windows`` has
something to cut: every site is the A of a DRACH, 350, 700 or 1,050 nt into its 1,400-nt mRNA (a full
501-nt window), and one more site 1,300 nt in (a window cut short at the transcript's 3' end). Half of
the sites (the names ending in ``_motif``) carry the demo's planted motif ``TGTAAATA`` 100 nt upstream
of the site in the mRNA, often across an exon junction, where the demo model learnt it; their
predicted P(degraded) is expected to be higher than the others'.

The mRNA of each transcript is drawn first and then laid out on the genome exon by exon (reverse
complemented for the - strand), so the windows ``m6abert-windows`` cuts can be checked against it
(tests/test_demo.py). The output is fixed by ``numpy.random.RandomState(1)``.

Usage: ``python examples/demo/make_genome.py [--out_dir DIR]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from m6abert import io

MRNA_LENGTH = 1400
SITES = (350, 700, 1050, 1300)  # 0-based mRNA positions of the sites' A
MOTIF, MOTIF_UPSTREAM = "TGTAAATA", 100  # the motif's first base 100 nt 5' of the site
TRANSCRIPTS = (("T1", "chrD1", "+"), ("T2", "chrD1", "-"), ("T3", "chrD2", "+"), ("T4", "chrD2", "-"))
FLANK = 300  # intergenic bases before and after each transcript
LINE_WIDTH = 60
COMPLEMENT = str.maketrans("ACGT", "TGCA")


def revcomp(seq: str) -> str:
    return seq.translate(COMPLEMENT)[::-1]


def random_bases(rng: np.random.RandomState, n: int) -> str:
    return "".join(rng.choice(list("ACGT"), size=n))


def mrna(rng: np.random.RandomState, with_motif: list[bool]) -> str:
    """A transcript's mRNA: random bases, a DRACH at each site, the motif upstream of the chosen sites."""
    while True:
        seq = list(random_bases(rng, MRNA_LENGTH))
        for site, motif in zip(SITES, with_motif, strict=True):
            seq[site - 2 : site + 3] = [rng.choice(list("AGT")), rng.choice(list("AG")), "A", "C",
                                        rng.choice(list("ACT"))]
            if motif:
                start = site - MOTIF_UPSTREAM
                seq[start : start + len(MOTIF)] = list(MOTIF)
        text = "".join(seq)
        if text.count(MOTIF) == sum(with_motif):  # no chance copy of the motif
            return text


def exon_lengths(rng: np.random.RandomState) -> list[int]:
    """Three exon lengths adding up to the mRNA, each at least 250 nt."""
    first = rng.randint(250, MRNA_LENGTH - 500)
    second = rng.randint(250, MRNA_LENGTH - first - 250 + 1)
    return [first, second, MRNA_LENGTH - first - second]


def lay_out(rng: np.random.RandomState, seq: str, strand: str, offset: int) -> tuple[str, list[tuple[int, int]]]:
    """The genome segment holding the transcript (flanks, exons, introns) placed at ``offset`` and its
    exons as 0-based half-open genome intervals in transcript order (5' to 3')."""
    lengths = exon_lengths(rng)
    parts = [seq[sum(lengths[:i]) : sum(lengths[: i + 1])] for i in range(3)]  # mRNA exons, 5' to 3'
    if strand == "-":
        parts = [revcomp(p) for p in reversed(parts)]  # genome order, ascending coordinates
    segment, blocks, pos = random_bases(rng, FLANK), [], offset + FLANK
    for i, part in enumerate(parts):
        blocks.append((pos, pos + len(part)))
        segment += part
        pos += len(part)
        if i < 2:
            intron = "GT" + random_bases(rng, rng.randint(150, 400)) + "AG"
            segment += intron
            pos += len(intron)
    segment += random_bases(rng, FLANK)
    return segment, blocks if strand == "+" else blocks[::-1]


def genome_position(blocks: list[tuple[int, int]], strand: str, mrna_pos: int) -> int:
    """The 0-based genome position of base ``mrna_pos`` of the mRNA."""
    for start, end in blocks:
        if mrna_pos < end - start:
            return start + mrna_pos if strand == "+" else end - 1 - mrna_pos
        mrna_pos -= end - start
    raise ValueError("past the mRNA's end")


def build(rng: np.random.RandomState) -> tuple[dict[str, str], list[str], list[str], dict[str, str]]:
    """(chromosomes, GTF lines, BED lines, mRNA by transcript)."""
    chroms: dict[str, str] = {}
    gtf, bed, mrnas = [], [], {}
    for n, (tx, chrom, strand) in enumerate(TRANSCRIPTS):
        with_motif = [(n + i) % 2 == 0 for i in range(len(SITES))]
        seq = mrna(rng, with_motif)
        segment, blocks = lay_out(rng, seq, strand, len(chroms.get(chrom, "")))
        chroms[chrom] = chroms.get(chrom, "") + segment
        mrnas[tx] = seq
        gene = f'gene_id "G{tx[1:]}"; transcript_id "{tx}";'
        for start, end in sorted(blocks):
            gtf.append(f"{chrom}\tdemo\texon\t{start + 1}\t{end}\t.\t{strand}\t.\t{gene}")
        for i, (site, motif) in enumerate(zip(SITES, with_motif, strict=True), 1):
            g = genome_position(blocks, strand, site)
            bed.append(f"{chrom}\t{g}\t{g + 1}\t{tx}_s{i}{'_motif' if motif else ''}\t0\t{strand}")
    return chroms, gtf, sorted(bed, key=lambda line: (line.split("\t")[0], int(line.split("\t")[1]))), mrnas


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out_dir", type=Path, default=Path(__file__).resolve().parent / "genome",
                   help="where genome.fa, genes.gtf and sites.bed are written (default: genome/ beside this script)")
    args = p.parse_args(argv)
    chroms, gtf, bed, _ = build(np.random.RandomState(1))
    fasta = "".join(f">{name}\n" + "".join(seq[i : i + LINE_WIDTH] + "\n" for i in range(0, len(seq), LINE_WIDTH))
                    for name, seq in chroms.items())
    io.write_text(args.out_dir / "genome.fa", fasta)
    io.write_text(args.out_dir / "genes.gtf", "".join(line + "\n" for line in gtf))
    io.write_text(args.out_dir / "sites.bed", "".join(line + "\n" for line in bed))
    print(f"wrote {len(chroms)} chromosomes, {len(TRANSCRIPTS)} transcripts and {len(bed)} sites to {args.out_dir}")


if __name__ == "__main__":
    main()
