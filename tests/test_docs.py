"""The README a newcomer reads and the manual in docs/: short, linked, built, in step with the code."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT

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


def test_the_readme_quick_start_runs(tmp_path):
    """The quick start's four commands, as printed, on 40 + 40 small windows with a tiny pretrained model:
    each exits 0 and writes what its comment says."""
    import shutil

    from toy import planted_records, tiny_pretrained, write_fasta

    if shutil.which("m6abert-get-input") is None:
        pytest.skip("the m6abert-* commands are not installed (make install)")
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    pos, neg = planted_records(40, 40, 501, offset=130, seed=5)
    write_fasta(tmp_path / "my_data" / "pos.fa", pos)
    write_fasta(tmp_path / "my_data" / "neg.fa", neg)
    write_fasta(tmp_path / "candidates.fa", pos[:3] + neg[:3])
    tiny_pretrained(tmp_path / "pretrained")
    script = block.replace("--num_train_epochs 10", "--num_train_epochs 1")  # the one change: a short run
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "MODEL_PATH": "pretrained", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    for path in ("my_splits/train.tsv", "my_splits/groups.tsv", "my_splits/leakage.json", "my_model/model.safetensors",
                 "my_predictions/predictions.tsv"):
        assert (tmp_path / path).exists(), path
    assert [line.split("\t")[0] for line in (tmp_path / "my_predictions" / "predictions.tsv").read_text().splitlines()[1:]] == [
        r.id for r in pos[:3] + neg[:3]]
    figures = sorted(p.name for p in (tmp_path / "my_figures").iterdir())
    assert any(n.endswith("_profile.png") for n in figures) and any(n.endswith("_heatmap.png") for n in figures)
    assert any(n.endswith("_qc.tsv") for n in figures)
