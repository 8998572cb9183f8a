"""The evidence behind the comparison table (README, docs/comparison.md): committed, free of absolute paths, and
recomputable from its own files (every AUC from the out-of-fold predictions, every interval from
them and the locus groups, table.md from table.json, the rows of docs/comparison.md from table.md)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import ROOT

from m6abert import io
from m6abert.comparison import summarise, table_markdown

RESULTS = ROOT / "results" / "table_tiny_cpu"
FILES = ("table.md", "table.json", "per_fold.tsv", "oof_predictions.tsv", "leakage.json", "table_args.json",
         "timings.json", "config_choice.txt")


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield key
            yield from _strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _strings(value)


@pytest.fixture(scope="module")
def result() -> dict:
    return json.loads((RESULTS / "table.json").read_text())


def test_every_file_is_committed_small_and_without_absolute_paths():
    for name in FILES:
        path = RESULTS / name
        assert path.is_file() and path.stat().st_size < 2_000_000, name
        text = path.read_text()
        assert not re.search(r"(?<![\w.])/(work|tmp|home|root|Users)/", text), name
        if name.endswith(".json"):
            assert not [s for s in _strings(json.loads(text)) if s.startswith("/")], name


def _records(result: dict, protocol: str) -> dict[str, list[dict]]:
    """Per model, the fold records rebuilt from oof_predictions.tsv and table.json's per-fold metrics."""
    oof = io.read_columns(RESULTS / "oof_predictions.tsv")
    rows = [i for i, p in enumerate(oof["protocol"]) if p == protocol]
    records = {}
    for name, model in result["protocols"][protocol]["models"].items():
        records[name] = []
        for f in model["per_fold"]:
            sel = [i for i in rows if int(oof["fold"][i]) == f["fold"]]
            metrics = {key: v for key, v in f.items() if key not in ("fold", "n")}
            records[name].append({"fold": f["fold"], "ids": [oof["id"][i] for i in sel],
                                  "labels": [int(oof["label"][i]) for i in sel],
                                  "p1": [float(oof[f"p_{name}"][i]) for i in sel], "metrics": metrics,
                                  "extra": model["extra"][f["fold"]]})
    return records


def test_every_auc_follows_from_the_out_of_fold_predictions(result):
    from sklearn.metrics import roc_auc_score

    oof = io.read_columns(RESULTS / "oof_predictions.tsv")
    for protocol, table in result["protocols"].items():
        for name, model in table["models"].items():
            for f in model["per_fold"]:
                sel = [i for i, (p, fold) in enumerate(zip(oof["protocol"], oof["fold"], strict=True))
                       if p == protocol and int(fold) == f["fold"]]
                y = [int(oof["label"][i]) for i in sel]
                p1 = [float(oof[f"p_{name}"][i]) for i in sel]
                assert roc_auc_score(y, p1) == pytest.approx(f["auc"], abs=2e-4), (protocol, name, f["fold"])


def test_the_intervals_and_the_table_recompute(result):
    """summarise() on the committed records with the committed groups gives table.json's numbers (the
    float32 probabilities of oof_predictions.tsv move AUCs by at most a few 1e-5)."""
    oof = io.read_columns(RESULTS / "oof_predictions.tsv")
    groups = {i: int(g) for i, g in zip(oof["id"], oof["group"], strict=True)}
    args = json.loads((RESULTS / "table_args.json").read_text())["settings"]
    for protocol, table in result["protocols"].items():
        again = summarise(_records(result, protocol), groups, args["n_bootstrap"], args["seed"])
        for name, d in table["differences"].items():
            mine = again["differences"][name]
            assert mine["paired_t"]["ci"] == pytest.approx(d["paired_t"]["ci"], abs=1e-9)
            assert mine["bootstrap"]["ci"] == pytest.approx(d["bootstrap"]["ci"], abs=2e-3)
            assert mine["verdict"] == d["verdict"] or abs(mine["bootstrap"]["ci"][0]) < 2e-3
        for name, model in table["models"].items():
            assert again["models"][name]["calibration"]["brier"] == pytest.approx(model["calibration"]["brier"], abs=1e-6)
    assert (RESULTS / "table.md").read_text() == table_markdown(result)


def test_the_leakage_the_protocols_were_chosen_for(result):
    leak = json.loads((RESULTS / "leakage.json").read_text())
    assert leak["grouped"]["cross_part_pairs"]["total"] == 0
    assert leak["random"]["cross_part_pairs"] == {"total": 289, "pos-pos": 267, "neg-neg": 21, "pos-neg": 1}
    assert result["pretraining"]["overlap_with_folds"] == 0
    assert result["pretraining"]["n_dropped_sharing_a_stretch_with_folds"] == 497


def test_the_docs_show_the_committed_tables():
    readme = (ROOT / "docs" / "comparison.md").read_text()
    rows = [line for line in (RESULTS / "table.md").read_text().splitlines() if line.startswith("| ")]
    missing = [line for line in rows if line not in readme]
    assert not missing, f"docs/comparison.md lacks rows of results/table_tiny_cpu/table.md: {missing[:3]}"


def test_timings_cover_the_run(result):
    timings = json.loads((RESULTS / "timings.json").read_text())
    folds = [s for by_model in timings["fold_seconds"].values() for seconds in by_model.values() for s in seconds]
    assert len(folds) == 2 * 5 * 5 and timings["total_seconds"] == pytest.approx(
        sum(folds) + timings["pretrain_seconds"])
    assert np.isfinite(timings["total_seconds"])
