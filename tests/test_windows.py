"""m6abert-windows: m6A sites as genome coordinates to window FASTA (issue 21).

A small random genome (three chromosomes, plain, gzip and bgzip), transcripts with several exons on both
strands (GTF and GFF3) and sites planted as A on their strand. Every window written is checked against an
extraction written here (its own splicing and reverse complement, base by base from the genome) and mapped
back to the genome with :func:`m6abert.io.genome_positions`.
"""

from __future__ import annotations

import gzip
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from m6abert import io
from m6abert.cli import get_input as get_input_cli
from m6abert.cli import windows as cli
from m6abert.splits import read_windows

COMP = {"A": "T", "C": "G", "G": "C", "T": "A", "N": "N"}
LENGTHS = {"chr1": 5000, "chr2": 4000, "chr3": 1500}
# transcript -> (chrom, strand, exons 0-based half-open, ascending)
TRANSCRIPTS = {
    "TA": ("chr1", "+", [(100, 300), (500, 700), (1000, 1400)]),  # 800 nt
    "TB": ("chr1", "+", [(100, 300), (1000, 1600)]),  # 800 nt: ties with TA (TA wins by id)
    "TC": ("chr1", "-", [(2000, 2200), (2400, 2600), (2800, 3300)]),
    "TD": ("chr2", "-", [(50, 150), (300, 500), (900, 1000)]),  # 400 nt: windows cut at both ends
    "TE": ("chr2", "+", [(2000, 2400)]),
    "TF": ("chr2", "+", [(2000, 2400), (2600, 3000)]),  # the longest for sites in 2000-2400
}
# name, chrom, 0-based position, strand, the base planted on the genome's + strand
SITES = [
    ("s1", "chr1", 280, "+", "A"),  # TA and TB; near the 300|500 junction
    ("s2", "chr1", 1100, "+", "A"),  # TA and TB
    ("s3", "chr1", 2410, "-", "T"),  # TC, crosses a junction on -
    ("s4", "chr2", 320, "-", "T"),  # TD
    ("s5", "chr2", 2100, "+", "A"),  # TE and TF
    ("s6", "chr1", 50, "+", "A"),  # no exon; 50 nt from the chromosome's start
    ("s7", "chr1", 2900, "+", "A"),  # in TC's exon, but TC is on -: no exon on +
    ("s8", "chr1", 1200, "+", "G"),  # not an A
    ("s9", "chr3", 1490, "-", "T"),  # no exon; 9 nt from the chromosome's end
    (".", "chr1", 650, "+", "A"),  # TA only; unnamed: id chr1:651:+
    ("s11", "chr2", 3500, "-", "T"),  # no exon
    ("s12", "chr1", 2599, "-", "T"),  # TC: the 5'-most base of its exon 2599..2400 on -
]
NO_EXON = {"s6", "s7", "s9", "s11"}
LONGEST = {"s1": "TA", "s2": "TA", "s3": "TC", "s4": "TD", "s5": "TF", "chr1:651:+": "TA", "s12": "TC"}


def site_id(name, chrom, pos, strand):
    return name if name != "." else f"{chrom}:{pos + 1}:{strand}"


# ---------------------------------------------------------------------------- the world
def fasta_text(genome: dict[str, str], width: int = 60) -> str:
    return "".join(f">{c} test genome\n" + "\n".join(s[i : i + width] for i in range(0, len(s), width)) + "\n"
                   for c, s in genome.items())


def gtf_text() -> str:
    lines = ["#!genome-build test"]
    for tx, (chrom, strand, exons) in TRANSCRIPTS.items():
        lo, hi = exons[0][0] + 1, exons[-1][1]
        attrs = f'gene_id "g{tx}"; transcript_id "{tx}";'
        lines.append(f"{chrom}\ttest\ttranscript\t{lo}\t{hi}\t.\t{strand}\t.\t{attrs}")
        lines += [f"{chrom}\ttest\texon\t{s + 1}\t{e}\t.\t{strand}\t.\t{attrs} exon_number \"{n}\";"
                  for n, (s, e) in enumerate(exons, 1)]
    return "\n".join(lines) + "\n"


def gff3_text() -> str:
    """The same transcripts as GFF3; the exon TA and TB share is one line with two parents."""
    lines = ["##gff-version 3"]
    shared = ("chr1", (100, 300))
    for tx, (chrom, strand, exons) in TRANSCRIPTS.items():
        lines.append(f"{chrom}\ttest\tmRNA\t{exons[0][0] + 1}\t{exons[-1][1]}\t.\t{strand}\t.\tID={tx}")
        for s, e in exons:
            if (chrom, (s, e)) == shared and tx == "TB":
                continue
            parent = "TA,TB" if (chrom, (s, e)) == shared else tx
            lines.append(f"{chrom}\ttest\texon\t{s + 1}\t{e}\t.\t{strand}\t.\tParent={parent}")
    return "\n".join(lines) + "\n"


def bed_text(sites=SITES) -> str:
    return "track name=m6a\n" + "".join(f"{c}\t{p}\t{p + 1}\t{n}\t0\t{s}\n" for n, c, p, s, _ in sites)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    rng = random.Random(21)
    genome = {c: [rng.choice("ACGT") for _ in range(n)] for c, n in LENGTHS.items()}
    for _, chrom, pos, _, base in SITES:
        genome[chrom][pos] = base
    genome = {c: "".join(s) for c, s in genome.items()}
    d = tmp_path_factory.mktemp("windows")
    (d / "genome.fa").write_text(fasta_text(genome))
    (d / "genes.gtf").write_text(gtf_text())
    (d / "genes.gff3").write_text(gff3_text())
    (d / "sites.bed").write_text(bed_text())
    return {"dir": d, "genome": genome}


def run_cli(argv: list[str]) -> int:
    return cli.main([str(a) for a in argv])


def read_out(path: Path) -> dict[str, tuple[str, int, io.WindowCoords | None]]:
    sites, coords = {}, {}
    records = io.read_fasta(path, sites, coords)
    return {r.id: (r.seq, sites[r.id], coords.get(r.id)) for r in records}


# ---------------------------------------------------------------------------- the independent extraction
def base_on(genome, chrom, pos, strand):
    b = genome[chrom][pos]
    return b if strand == "+" else COMP[b]


def expected_genomic(genome, chrom, pos, strand, flank):
    """Positions of the window (in window order), its sequence and site index: base by base."""
    positions = [p for p in range(pos - flank, pos + flank + 1) if 0 <= p < len(genome[chrom])]
    if strand == "-":
        positions.reverse()
    return positions, "".join(base_on(genome, chrom, p, strand) for p in positions), positions.index(pos)


def mrna_positions(tx):
    chrom, strand, exons = TRANSCRIPTS[tx]
    positions = [p for s, e in exons for p in range(s, e)]
    return positions if strand == "+" else positions[::-1]


def expected_spliced(genome, tx, pos, flank):
    chrom, strand, _ = TRANSCRIPTS[tx]
    mrna = mrna_positions(tx)
    i = mrna.index(pos)
    lo = max(0, i - flank)
    positions = mrna[lo : i + flank + 1]
    return positions, "".join(base_on(genome, chrom, p, strand) for p in positions), i - lo


def check_window(genome, got, want_positions, want_seq, want_site, chrom, strand):
    seq, site, coords = got
    assert (seq, site) == (want_seq, want_site)
    assert seq[site] == "A"
    mapped = io.genome_positions(coords, len(seq), site).tolist()
    assert mapped == want_positions
    assert "".join(base_on(genome, chrom, p, strand) for p in mapped) == seq  # every base back to the genome


def check_spliced(world, out, expected: dict[str, tuple[str, str]], flank):
    """``expected``: window id -> (site id, transcript)."""
    got = read_out(out)
    assert set(got) == set(expected)
    by_id = {site_id(n, c, p, s): (c, p, s) for n, c, p, s, _ in SITES}
    for wid, (sid, tx) in expected.items():
        chrom, pos, strand = by_id[sid]
        positions, seq, site = expected_spliced(world["genome"], tx, pos, flank)
        check_window(world["genome"], got[wid], positions, seq, site, chrom, strand)
        assert got[wid][2] == io.WindowCoords(chrom, pos + 1, strand, tx, got[wid][2].blocks)


# ---------------------------------------------------------------------------- windows
@pytest.mark.parametrize("flank", [60, 250])
@pytest.mark.parametrize("annotation", ["genes.gtf", "genes.gff3"])
def test_spliced_windows_match_an_independent_extraction(world, tmp_path, flank, annotation, caplog):
    d, out = world["dir"], tmp_path / "w.fa"
    assert run_cli(["--sites", d / "sites.bed", "--genome", d / "genome.fa", "--gtf", d / annotation,
                    "--extend_len", flank, "--out", out, "-q"]) == 0
    check_spliced(world, out, {w: (w, tx) for w, tx in LONGEST.items()}, flank)
    record = io.read_json(tmp_path / "w.fa.windows_args.json")
    assert record["result"]["not_a"] == 1 and record["result"]["no_exon"] == 4
    assert record["result"]["windows"] == record["result"]["written"] == 7
    if flank == 60:  # junctions crossed: more than one block
        blocks = read_out(out)["s1"][2].blocks
        assert blocks == ((220, 300), (500, 541))
        assert read_out(out)["s3"][2].blocks == ((2400, 2471), (2150, 2200))
    else:  # cut at the transcript's ends: shorter, the site index recorded
        got = read_out(out)
        assert (len(got["s1"][0]), got["s1"][1]) == (431, 180)  # cut at TA's 5' end: the site is not at 250
        assert (len(got["s4"][0]), got["s4"][1]) == (371, 250)  # cut at TD's 3' end


def test_skipped_sites_are_warned_with_their_ids(world, tmp_path, caplog):
    d = world["dir"]
    with caplog.at_level("WARNING", logger="m6abert"):
        run_cli(["--sites", d / "sites.bed", "--genome", d / "genome.fa", "--gtf", d / "genes.gtf",
                 "--out", tmp_path / "w.fa"])
    text = caplog.text
    assert "1 of 12 sites are not an A on their strand (s8 G)" in text
    assert "4 of 11 sites lie in no exon of any transcript" in text and "s6, s7, s9, s11" in text


def test_genomic_windows_without_gtf_are_clipped_at_chromosome_ends(world, tmp_path):
    d, out, g = world["dir"], tmp_path / "w.fa", world["genome"]
    assert run_cli(["--sites", d / "sites.bed", "--genome", d / "genome.fa", "--out", out, "-q"]) == 0
    got = read_out(out)
    want = {site_id(n, c, p, s): (c, p, s) for n, c, p, s, b in SITES if n != "s8"}
    assert set(got) == set(want)
    for wid, (chrom, pos, strand) in want.items():
        positions, seq, site = expected_genomic(g, chrom, pos, strand, 250)
        check_window(g, got[wid], positions, seq, site, chrom, strand)
        assert got[wid][2].transcript is None and len(got[wid][2].blocks) == 1
    assert len(got["s6"][0]) == 50 + 251 and got["s6"][1] == 50  # the chromosome's start
    assert len(got["s9"][0]) == 9 + 251 and got["s9"][1] == 9  # its end, on -: the site 9 nt from the 5' end


def test_tsv_sites_with_1_based_positions_give_the_bed_windows(world, tmp_path):
    d = world["dir"]
    tsv = tmp_path / "sites.tsv.gz"
    rows = "".join(f"{c}\t{p + 1}\t{s}\t{n}\n" for n, c, p, s, _ in SITES)
    tsv.write_bytes(gzip.compress(("chrom\tpos\tstrand\tname\n" + rows).encode()))
    for sites, out in ((d / "sites.bed", "a.fa"), (tsv, "b.fa")):
        assert run_cli(["--sites", sites, "--genome", d / "genome.fa", "--out", tmp_path / out, "-q"]) == 0
    assert (tmp_path / "a.fa").read_text() == (tmp_path / "b.fa").read_text()


def test_gz_sites_and_gtf_give_the_plain_windows(world, tmp_path):
    d = world["dir"]
    for name in ("sites.bed", "genes.gtf"):
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress((d / name).read_bytes()))
    assert run_cli(["--sites", d / "sites.bed", "--genome", d / "genome.fa", "--gtf", d / "genes.gtf",
                    "--out", tmp_path / "a.fa", "-q"]) == 0
    assert run_cli(["--sites", tmp_path / "sites.bed.gz", "--genome", d / "genome.fa", "--gtf",
                    tmp_path / "genes.gtf.gz", "--out", tmp_path / "b.fa", "-q"]) == 0
    assert (tmp_path / "a.fa").read_text() == (tmp_path / "b.fa").read_text()


@pytest.mark.parametrize("choice, expected", [
    ("all", {"s1|TA": ("s1", "TA"), "s1|TB": ("s1", "TB"), "s2|TA": ("s2", "TA"), "s2|TB": ("s2", "TB"),
             "s3": ("s3", "TC"), "s4": ("s4", "TD"), "s5|TE": ("s5", "TE"), "s5|TF": ("s5", "TF"),
             "chr1:651:+": ("chr1:651:+", "TA"), "s12": ("s12", "TC")}),
    ("TB", {"s1": ("s1", "TB"), "s2": ("s2", "TB")}),
    ("TE,TF", {"s5|TE": ("s5", "TE"), "s5|TF": ("s5", "TF")}),
    ("TF,TA", {"s1": ("s1", "TA"), "s2": ("s2", "TA"), "s5": ("s5", "TF"), "chr1:651:+": ("chr1:651:+", "TA")}),
])
def test_transcript_choice(world, tmp_path, choice, expected):
    d, out = world["dir"], tmp_path / "w.fa"
    assert run_cli(["--sites", d / "sites.bed", "--genome", d / "genome.fa", "--gtf", d / "genes.gtf",
                    "--transcript", choice, "--extend_len", 100, "--out", out, "-q"]) == 0
    check_spliced(world, out, expected, 100)


def test_bgzip_genome_gives_the_plain_windows(world, tmp_path):
    from Bio import bgzf

    d = world["dir"]
    with bgzf.BgzfWriter(str(tmp_path / "genome.fa.gz"), "wb") as fh:
        fh.write((d / "genome.fa").read_bytes())
    for genome, out in ((d / "genome.fa", "a.fa"), (tmp_path / "genome.fa.gz", "b.fa")):
        assert run_cli(["--sites", d / "sites.bed", "--genome", genome, "--gtf", d / "genes.gtf", "--out",
                        tmp_path / out, "-q"]) == 0
    assert (tmp_path / "a.fa").read_text() == (tmp_path / "b.fa").read_text()
    assert (tmp_path / "genome.fa.gz.fai").exists() and (tmp_path / "genome.fa.gz.gzi").exists()


# ---------------------------------------------------------------------------- scans
def drach_brute_force(seq: str) -> list[int]:
    return [i for i in range(2, len(seq) - 2) if seq[i - 2] in "AGT" and seq[i - 1] in "AG" and seq[i] == "A"
            and seq[i + 1] == "C" and seq[i + 2] in "ACT"]


def test_scan_fasta_finds_exactly_the_drach_sites(tmp_path):
    rng = random.Random(5)
    tx1 = "".join(rng.choice("ACGT") for _ in range(900))
    tx1 = tx1[:100] + "GGACT" + tx1[105:400] + "TAACA" + tx1[405:]  # two planted, among the chance ones
    tx2 = "uuGGACUuu" + "C" * 20 + "AGACC"  # RNA letters, a site 2 nt from the 5' end
    (tmp_path / "tx.fa").write_text(f">tx1 a transcript\n{tx1}\n>tx2\n{tx2}\n")
    out = tmp_path / "scan.fa"
    assert run_cli(["--scan", tmp_path / "tx.fa", "--extend_len", 50, "--out", out, "-q"]) == 0
    got = read_out(out)
    want = {}
    for name, seq in (("tx1", tx1), ("tx2", tx2.upper().replace("U", "T"))):
        for i in drach_brute_force(seq):
            lo = max(0, i - 50)
            want[f"{name}:{i + 1}"] = (seq[lo : i + 51], i - lo, None)
    assert {"tx1:103", "tx1:403", "tx2:5", "tx2:32"} <= set(want)
    assert got == want
    header = (out.read_text().split("\n")[0])
    assert header == f">{next(iter(want))} site={next(iter(want.values()))[1]}"  # no coordinates


def test_scan_gtf_scans_every_drach_site_of_the_transcripts(world, tmp_path):
    d, g, out = world["dir"], world["genome"], tmp_path / "scan.fa"
    assert run_cli(["--scan_gtf", "--gtf", d / "genes.gtf", "--genome", d / "genome.fa", "--transcript", "TC,TD",
                    "--extend_len", 80, "--out", out, "-q"]) == 0
    got = read_out(out)
    want = {}
    for tx in ("TC", "TD"):
        chrom, strand, _ = TRANSCRIPTS[tx]
        positions = mrna_positions(tx)
        mrna = "".join(base_on(g, chrom, p, strand) for p in positions)
        for i in drach_brute_force(mrna):
            want[f"{tx}:{i + 1}"] = (tx, positions[i])
    assert set(got) == set(want) and want
    for wid, (tx, pos) in want.items():
        chrom, strand, _ = TRANSCRIPTS[tx]
        positions, seq, site = expected_spliced(g, tx, pos, 80)
        check_window(g, got[wid], positions, seq, site, chrom, strand)
        assert got[wid][2][:4] == (chrom, pos + 1, strand, tx)


# ---------------------------------------------------------------------------- what reads the windows
def test_windows_feed_get_input_and_keep_their_sites(world, tmp_path):
    """pos.fa (every DRACH site of the transcripts, many cut short) and neg.fa (genomic windows) written
    by m6abert-windows run through get_input.py unchanged; each declared site is an A."""
    d, g = world["dir"], world["genome"]
    data = tmp_path / "data"
    assert run_cli(["--scan_gtf", "--gtf", d / "genes.gtf", "--genome", d / "genome.fa", "--out", data / "pos.fa",
                    "-q"]) == 0
    rng = random.Random(3)
    sites = [(f"n{i}", "chr2", p, "+", "A") for i, p in enumerate(rng.sample(
        [p for p in range(len(g["chr2"])) if g["chr2"][p] == "A"], 150))]
    (tmp_path / "neg.bed").write_text(bed_text(sites))
    assert run_cli(["--sites", tmp_path / "neg.bed", "--genome", d / "genome.fa", "--out", data / "neg.fa",
                    "-q"]) == 0
    for name in ("pos.fa", "neg.fa"):
        records, declared = read_windows(data / name)
        assert len(declared) == len(records) and all(r.seq[declared[r.id]] == "A" for r in records)
    for flank in (100, 250):
        assert get_input_cli.main(["--kmer", "3", "--extend_len", str(flank), "--task", "finetune", "--data_dir",
                                   str(data), "--save_dir", str(tmp_path / f"s{flank}"), "-q"]) == 0
        record = io.read_json(tmp_path / f"s{flank}" / "get_input_args.json")
        assert set(record["sites"]["counts"]) == {"header"}


# ---------------------------------------------------------------------------- refusals
ERROR_CASES = {
    "chromosome missing": ("chrX\t10\t11\tx\t0\t+\n", [], "line 1: chromosome chrX is not in the genome"),
    "past the end": ("chr3\t1600\t1601\tx\t0\t+\n", [], "line 1: site x at chr3:1601 lies past the end of chr3"),
    "duplicate name": ("chr1\t280\t281\ts1\t0\t+\nchr1\t1100\t1101\ts1\t0\t+\n", [],
                       "line 2: duplicate name s1 (also line 1)"),
    "bad strand": ("chr1\t280\t281\ts1\t0\t.\n", [], "line 1: strand '.' is not + or -"),
    "end not start + 1": ("chr1\t280\t290\ts1\t0\t+\n", [], "line 1: BED end 290 is not start + 1"),
    "non-integer": ("chr1\t280\t281\ts1\t0\t+\nchr1\t1e3\t1001\ts2\t0\t+\n", [],
                    "line 2: BED start '1e3' is not an integer"),
    "BED5": ("chr1\t280\t281\ts1\t0\n", [], "line 1: BED5 has no strand; the strand is required"),
    "TSV columns": ("chrom\tpos\tstrand\nchr1\t281\t+\ts1\n", [], "line 2: 4 columns, the header has 3"),
    "TSV pos 0": ("chrom\tpos\tstrand\nchr1\t0\t+\n", [], "line 2: pos '0' is not an integer >= 1 (pos is 1-based)"),
    "absent transcript": (None, ["--gtf", "genes.gtf", "--transcript", "TA,ZZ"],
                          "transcript ZZ asked for with --transcript is not in it (6 transcripts)"),
    "not A, strict": (None, ["--strict"], "line 9: site s8 (chr1:1201:+) is G on its strand, not A"),
    "no exon, strict": ("chr1\t50\t51\ts6\t0\t+\n", ["--gtf", "genes.gtf", "--strict"],
                        "line 1: site s6 (chr1:51:+) lies in no exon of any transcript"),
    "scan with sites": (None, ["--scan", "genes.gtf"], "--sites and --scan exclude each other"),
    "transcript without gtf": (None, ["--transcript", "all"], "--transcript needs --gtf"),
    "extend_len 0": (None, ["--extend_len", "0"], "--extend_len must be at least 1 nt"),
    "gzip genome": (None, ["--genome", "genome.fa.gz"], "plain gzip cannot be indexed for random access; recompress "
                                                        "it with bgzip"),
    "gtf columns": (None, ["--gtf", "bad8.gtf"], "bad8.gtf: line 2: 8 tab-separated columns"),
    "gtf without transcript_id": (None, ["--gtf", "noid.gtf"], 'noid.gtf: line 1: GTF exon without a transcript_id'),
    "gtf coordinates": (None, ["--gtf", "coords.gtf"], "coords.gtf: line 1: exon start '300' and end '200'"),
    "gtf strands": (None, ["--gtf", "strands.gtf"], "strands.gtf: line 2: exon of transcript T on chr1:-, its earlier"),
}


def error_inputs(world, folder: Path) -> None:
    d = world["dir"]
    (folder / "genome.fa.gz").write_bytes(gzip.compress((d / "genome.fa").read_bytes()))
    shutil.copy(d / "genes.gtf", folder / "genes.gtf")
    exon = "chr1\tt\texon\t{}\t{}\t.\t{}\t.\ttranscript_id \"T\";\n"
    (folder / "bad8.gtf").write_text(exon.format(1, 10, "+") + "chr1\tt\texon\t20\t30\t.\t+\ttranscript_id\n")
    (folder / "noid.gtf").write_text("chr1\tt\texon\t1\t10\t.\t+\t.\tgene_id \"g\";\n")
    (folder / "coords.gtf").write_text(exon.format(300, 200, "+"))
    (folder / "strands.gtf").write_text(exon.format(1, 10, "+") + exon.format(20, 30, "-"))


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_each_refusal_exits_2_with_one_line_and_writes_nothing(world, tmp_path, capsys, case):
    bed, extra, message = ERROR_CASES[case]
    error_inputs(world, tmp_path)
    sites = tmp_path / "sites.bed"
    sites.write_text(bed if bed is not None else bed_text())
    argv = ["--sites", sites, "--genome", world["dir"] / "genome.fa", "--out", tmp_path / "o" / "w.fa"]
    for flag in ("--genome", "--gtf", "--scan"):
        if flag in extra:
            i = extra.index(flag)
            extra = [*extra[: i + 1], tmp_path / extra[i + 1], *extra[i + 2 :]]
            if flag == "--genome":
                argv = argv[:2] + argv[4:]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        run_cli(argv + extra)
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "o").exists()


def test_a_read_only_genome_folder_is_refused_in_one_line(world, tmp_path, capsys, monkeypatch):
    """pyfaidx writes the .fai next to the genome; where that folder is read-only, one line says so
    (os.access is patched: the tests may run as root, who writes anywhere)."""
    import m6abert.io.genome as genome_io

    shutil.copy(world["dir"] / "genome.fa", tmp_path / "genome.fa")
    monkeypatch.setattr(genome_io.os, "access", lambda path, mode: False)
    with pytest.raises(SystemExit) as exc:
        run_cli(["--sites", world["dir"] / "sites.bed", "--genome", tmp_path / "genome.fa", "--out",
                 tmp_path / "o" / "w.fa"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "its index genome.fa.fai is missing and the folder" in err and "is read-only" in err


def test_reader_messages_name_file_and_line(tmp_path):
    from m6abert.utils import InputError

    (tmp_path / "a.bed").write_text("# comment\nbrowser position chr1\nchrom\tstart\tend\tname\tscore\tstrand\n"
                                    "chr1\t5\t6\t.\t0\t+\nchr1\t5\t6\t.\t0\t+\n")
    with pytest.raises(InputError, match=r"a.bed: line 5: duplicate site chr1:6:\+ \(also line 4\)"):
        io.read_sites(tmp_path / "a.bed")
    (tmp_path / "b.tsv").write_text("chrom\tposition\tstrand\n")
    with pytest.raises(InputError, match="b.tsv: line 1: 'position' is not an integer start"):
        io.read_sites(tmp_path / "b.tsv")
    (tmp_path / "c.gff3").write_text("##gff-version 3\nchr1\tt\texon\t1\t10\t.\t+\t.\tID=e1\n")
    with pytest.raises(InputError, match="c.gff3: line 2: GFF3 exon without a Parent="):
        io.read_transcripts(tmp_path / "c.gff3")
    (tmp_path / "d.gtf").write_text('chr1\tt\texon\t1\t10\t.\t+\t.\ttranscript_id "T";\n'
                                    'chr1\tt\texon\t5\t20\t.\t+\t.\ttranscript_id "T";\n')
    with pytest.raises(InputError, match="d.gtf: line 2: exon 5-20 of transcript T overlaps its exon 1-10"):
        io.read_transcripts(tmp_path / "d.gtf")


# ---------------------------------------------------------------------------- the installed command
def installed() -> str:
    path = shutil.which("m6abert-windows") or str(Path(sys.executable).parent / "m6abert-windows")
    if not Path(path).exists():
        pytest.skip("m6abert-windows is not installed (pip install --no-deps --no-build-isolation -e .)")
    return path


def test_the_installed_command_writes_windows_and_refuses_gzip(world, tmp_path):
    d, exe = world["dir"], installed()
    out = tmp_path / "o" / "pos.fa"
    run = subprocess.run([exe, "--sites", d / "sites.bed", "--genome", d / "genome.fa", "--gtf", d / "genes.gtf",
                          "--out", out], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert set(read_out(out)) == set(LONGEST) and "wrote 7 windows" in run.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["pos.fa", "pos.fa.windows_args.json"]
    (tmp_path / "g.fa.gz").write_bytes(gzip.compress((d / "genome.fa").read_bytes()))
    run = subprocess.run([exe, "--sites", d / "sites.bed", "--genome", tmp_path / "g.fa.gz", "--out",
                          tmp_path / "x" / "w.fa"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1
    assert "zcat" in run.stderr and "bgzip" in run.stderr and not (tmp_path / "x").exists()
