"""The README a newcomer reads and the manual in docs/: short, linked, built, in step with the code."""

from __future__ import annotations

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
