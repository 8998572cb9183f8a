"""The README a newcomer reads and the manual in docs/: short, linked, built, in step with the code."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from m6abert import io

PAGES = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _links(path):
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if not re.match(r"[a-z]+://|mailto:|#", target):
            yield target.split("#")[0]


def test_readme_is_short_and_keeps_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300
    block = text.split("```bash", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in block.splitlines() if line.startswith("make ")] == [
        "make demo", "make test"]


def test_readme_tables_every_console_command():
    tomllib = pytest.importorskip("tomllib")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `m6abert-")]
    assert sorted(row.split("`")[1] for row in rows) == sorted(scripts)


@pytest.mark.parametrize("page", [ROOT / "README.md", *PAGES], ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    missing = [t for t in _links(page) if not (page.parent / t).exists()]
    assert not missing, f"{page.name}: links to missing files: {missing}"


def test_every_page_is_in_the_site_navigation():
    yaml = pytest.importorskip("yaml")
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    listed = sorted(next(iter(entry.values())) for entry in nav)
    assert listed == sorted(p.name for p in PAGES)


def test_the_manual_builds_strictly(tmp_path):
    """mkdocs build --strict: no broken link, no page left out, no bad configuration."""
    pytest.importorskip("mkdocs", reason="mkdocs is in requirements.txt (make install)")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "site" / "errors" / "index.html").exists()


def _genome_of(folder: Path, beds: dict[str, list]) -> None:
    """genome.fa, genes.gtf and the BEDs in ``folder`` such that each record of ``beds`` is the mRNA of its
    own two-exon transcript (an intron after base 200; on the - strand for every third record) and its
    BED site is the record's base 250, named by its id: m6abert-windows then cuts exactly the records."""
    comp = str.maketrans("ACGT", "TGCA")
    chrom, gtf, lines = "", [], {name: [] for name in beds}
    seen = {}
    for name, records in beds.items():
        for r in records:
            if r.id not in seen:
                strand = "-" if len(seen) % 3 == 2 else "+"
                exons = [r.seq[:200], r.seq[200:]] if strand == "+" else [r.seq[200:].translate(comp)[::-1],
                                                                          r.seq[:200].translate(comp)[::-1]]
                start = len(chrom) + 50
                chrom += "C" * 50 + exons[0] + "GT" + "C" * 100 + "AG" + exons[1]
                blocks = [(start, start + len(exons[0]))]
                blocks.append((blocks[0][1] + 104, blocks[0][1] + 104 + len(exons[1])))
                gtf += [f"chrQ\tt\texon\t{s + 1}\t{e}\t.\t{strand}\t.\ttranscript_id \"tx_{r.id}\";" for s, e in blocks]
                site = blocks[1][0] + 50 if strand == "+" else blocks[0][1] - 51  # record base 250
                seen[r.id] = (site, strand)
            site, strand = seen[r.id]
            lines[name].append(f"chrQ\t{site}\t{site + 1}\t{r.id}\t0\t{strand}")
    (folder / "genome.fa").write_text(f">chrQ\n{chrom}\n")
    (folder / "genes.gtf").write_text("\n".join(gtf) + "\n")
    for name, rows in lines.items():
        (folder / name).write_text("\n".join(rows) + "\n")
    (folder / "my_data").mkdir()


def test_the_readme_quick_start_runs(tmp_path):
    """The quick start's commands, as printed, on 40 + 40 sites of a small genome (each the site of its own
    two-exon transcript) with a tiny pretrained model: each exits 0 and writes what its comment says; the
    windows are the planted records, cut across the exon junction on both strands."""
    import shutil

    from toy import planted_records, tiny_pretrained

    if shutil.which("m6abert-get-input") is None:
        pytest.skip("the m6abert-* commands are not installed (make install)")
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    pos, neg = planted_records(40, 40, 501, offset=130, seed=5)
    pos, neg = ([io.FastaRecord(r.id, r.seq[:250] + "A" + r.seq[251:]) for r in group] for group in (pos, neg))
    _genome_of(tmp_path, {"degraded.bed": pos, "stable.bed": neg, "candidates.bed": pos[:3] + neg[:3]})
    tiny_pretrained(tmp_path / "pretrained")
    script = block.replace("--num_train_epochs 10", "--num_train_epochs 1")  # the one change: a short run
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "MODEL_PATH": "pretrained", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [(r.id, r.seq) for r in io.read_fasta(tmp_path / "my_data" / "pos.fa")] == [(r.id, r.seq) for r in pos]
    for path in ("my_splits/train.tsv", "my_splits/groups.tsv", "my_splits/leakage.json", "my_model/model.safetensors",
                 "my_predictions/predictions.tsv"):
        assert (tmp_path / path).exists(), path
    assert [line.split("\t")[0] for line in (tmp_path / "my_predictions" / "predictions.tsv").read_text().splitlines()[1:]] == [
        r.id for r in pos[:3] + neg[:3]]
    figures = sorted(p.name for p in (tmp_path / "my_figures").iterdir())
    assert any(n.endswith("_profile.png") for n in figures) and any(n.endswith("_heatmap.png") for n in figures)
    assert any(n.endswith("_qc.tsv") for n in figures)
