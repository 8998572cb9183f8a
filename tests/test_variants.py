"""Variant effects (``run_predict_degradation.py --predict_fasta FILE --variants TSV``).

The effects must equal the difference of two separate float32 predictions (reference and mutated
sequence, each a data set of one sequence); positions relative to the site must name the same
letters as the 1-based ones; the outputs are one set with the FASTA's predictions; every bad
variants table is refused with one line, exit status 2 and nothing written.

``CASES`` lists every ``(script, Case)`` for docs/errors.md;
``python tests/test_variants.py`` prints those rows.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "tests"):  # for `python tests/test_variants.py`
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from test_errors import Case, run_case  # noqa: E402
from toy import random_seq, tiny_classifier, write_fasta  # noqa: E402

from m6abert import io  # noqa: E402
from m6abert.cli import predict as predict_cli  # noqa: E402
from m6abert.cli.common import run_guarded  # noqa: E402
from m6abert.constants import SITE_INDEX  # noqa: E402

SCRIPT = "run_predict_degradation.py"
HEADER = "id\tpos\tref\talt\n"


def sensitive_classifier(folder: Path, k: int = 3) -> Path:
    """:func:`toy.tiny_classifier` with larger random weights: its outputs move when one letter changes."""
    import torch

    from m6abert.model import build_config, new_model

    torch.manual_seed(0)
    io.save_checkpoint(folder, new_model(build_config("tiny", k, initializer_range=0.2), "classification"), k)
    return folder


def records(length: int = 60, n: int = 3, seed: int = 0) -> list[io.FastaRecord]:
    rng = np.random.RandomState(seed)
    return [io.FastaRecord(f"r{i + 1}", random_seq(rng, length)) for i in range(n)]


def substitute(seq: str, start: int, alt: str) -> str:
    return seq[:start] + alt + seq[start + len(alt):]


def other(base: str) -> str:
    return {"A": "G", "C": "T", "G": "A", "T": "C"}[base]


def read_table(path: Path) -> list[dict]:
    lines = path.read_text().splitlines()
    names = lines[0].split("\t")
    return [dict(zip(names, line.split("\t"), strict=True)) for line in lines[1:]]


def run(tmp: Path, recs, rows: list[str], *flags: str, name: str = "p") -> tuple[list[dict], Path]:

    model = tmp / "model"
    if not model.exists():
        sensitive_classifier(model)
    fasta = write_fasta(tmp / "new.fa", recs)
    io.write_text(tmp / "variants.tsv", HEADER + "".join(r + "\n" for r in rows))
    out = tmp / name
    effects = run_guarded(predict_cli.run,
        ["--data_dir", str(tmp), "--output_dir", str(model), "--predict_dir", str(out), "--max_seq_length", "512",
         "--predict_fasta", str(fasta), "--variants", str(tmp / "variants.tsv"), *flags])
    return effects, out


def separate(model_dir: Path, seq: str) -> np.ndarray:
    """The logits of one sequence, predicted alone in float32."""
    from m6abert.data import dataset_from_seqs
    from m6abert.inference import predict
    from m6abert.model import load_model

    model, k = load_model(str(model_dir), "classification", fine_tuned=True)
    return predict(model, dataset_from_seqs([seq], k, max_seq_length=512).dataset, 512, batch_size=1,
                   verbose=False)[0].astype(np.float64)


def p1(logits: np.ndarray) -> float:
    return float(np.exp(logits[1]) / np.exp(logits).sum())


# ---------------------------------------------------------------------------- effects
def test_effects_equal_the_difference_of_separate_predictions(tmp_path):
    recs = records()
    recs.append(io.FastaRecord("copy", recs[0].seq))  # the same sequence under a second id
    recs.append(io.FastaRecord("short", recs[2].seq[:25]))  # padded in a batch of longer rows
    s1, s2 = recs[0].seq, recs[1].seq
    variants = [("r1", 5, s1[4], other(s1[4])), ("r1", 30, s1[29], other(s1[29])),
                ("r2", 1, s2[0].lower(), other(s2[0]).lower()), ("r2", 60, s2[59], "U" if s2[59] != "T" else "A"),
                ("copy", 5, s1[4], other(s1[4])), ("r2", 10, s2[9:12], "".join(other(b) for b in s2[9:12])),
                ("short", 25, recs[-1].seq[24], other(recs[-1].seq[24]))]
    effects, out = run(tmp_path, recs, [f"{i}\t{p}\t{r}\t{a}" for i, p, r, a in variants])
    assert sorted(p.name for p in out.iterdir()) == ["pred_results.npy", "predict_args.json", "predictions.tsv",
                                                    "variant_effects.tsv"]
    table = read_table(out / "variant_effects.tsv")
    assert list(table[0]) == ["id", "pos", "ref", "alt", "p_ref", "p_alt", "delta_p", "delta_logodds"]
    seqs = {r.id: r.seq for r in recs}
    for (rid, pos, ref, alt), row, written in zip(variants, effects, table, strict=True):
        ref_logits = separate(tmp_path / "model", seqs[rid])
        alt_logits = separate(tmp_path / "model", substitute(seqs[rid], pos - 1, alt.upper().replace("U", "T")))
        assert (row["id"], row["pos"], row["ref"], row["alt"]) == (rid, pos, ref.upper(), alt.upper())
        assert row["p_ref"] == pytest.approx(p1(ref_logits), abs=1e-5)
        assert row["p_alt"] == pytest.approx(p1(alt_logits), abs=1e-5)
        assert row["delta_p"] == pytest.approx(p1(alt_logits) - p1(ref_logits), abs=1e-5)
        lo = (alt_logits[1] - alt_logits[0]) - (ref_logits[1] - ref_logits[0])
        assert row["delta_logodds"] == pytest.approx(lo, abs=1e-5)
        assert written["id"] == rid and int(written["pos"]) == pos
        assert float(written["delta_logodds"]) == pytest.approx(row["delta_logodds"], rel=1e-5, abs=1e-6)
    assert any(abs(r["delta_logodds"]) > 1e-2 for r in effects)  # a random model does move
    assert effects[0]["delta_p"] == pytest.approx(effects[4]["delta_p"], abs=1e-6)  # same sequence, same effect
    assert json.loads((out / "predict_args.json").read_text())["variants"] == str(tmp_path / "variants.tsv")


def test_predictions_are_those_of_a_plain_fasta_run(tmp_path):
    import run_predict_degradation

    recs = records(length=40)
    run(tmp_path, recs, [f"r1\t3\t{recs[0].seq[2]}\t{other(recs[0].seq[2])}"])
    run_predict_degradation.main(["--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "model"),
                                  "--predict_dir", str(tmp_path / "plain"), "--max_seq_length", "512",
                                  "--predict_fasta", str(tmp_path / "new.fa")])
    assert (tmp_path / "p" / "predictions.tsv").read_text() == (tmp_path / "plain" / "predictions.tsv").read_text()
    np.testing.assert_allclose(np.load(tmp_path / "p" / "pred_results.npy"),
                               np.load(tmp_path / "plain" / "pred_results.npy"), atol=1e-6)


def test_library_function_scores_only_the_named_records(tmp_path, monkeypatch):
    import m6abert.variants as variants_module
    from m6abert.model import load_model
    from m6abert.variants import variant_effects

    recs = records(length=30, n=4)
    model, k = load_model(str(sensitive_classifier(tmp_path / "model")), "classification", fine_tuned=True)
    seq = recs[2].seq
    table = [io.Variant("r3", 7, seq[6], other(seq[6]), 1), io.Variant("r3", 8, seq[7], other(seq[7]), 2)]
    scored, orig = [], variants_module.dataset_from_seqs

    def spy(seqs, *a, **kw):  # every sequence the function scores is k-merised through this loader
        scored.extend(seqs)
        return orig(seqs, *a, **kw)

    monkeypatch.setattr(variants_module, "dataset_from_seqs", spy)
    rows = variant_effects(model, recs, table, k, max_seq_length=64, batch_size=2)
    others = {r.seq for r in recs if r.id != "r3"}
    assert scored and not others & set(scored)  # no other record was scored
    for v, row in zip(table, rows, strict=True):
        ref, alt = separate(tmp_path / "model", seq), separate(tmp_path / "model", substitute(seq, v.pos - 1, v.alt))
        assert row["delta_p"] == pytest.approx(p1(alt) - p1(ref), abs=1e-5)


def test_positions_relative_to_the_site(tmp_path):
    recs = records(length=SITE_INDEX + 11, n=2)  # the site and 10 nt downstream
    seq = recs[0].seq
    rel = [0, -SITE_INDEX, 10, -1]
    rows = [f"r1\t{p:+d}\t{seq[SITE_INDEX + p]}\t{other(seq[SITE_INDEX + p])}" for p in rel]
    relative, out = run(tmp_path, recs, rows, "--pos_relative_to_site")
    absolute, _ = run(tmp_path, recs, [f"r1\t{SITE_INDEX + p + 1}\t{seq[SITE_INDEX + p]}\t{other(seq[SITE_INDEX + p])}"
                                       for p in rel], name="abs")
    assert [r["pos"] for r in relative] == rel
    assert [int(r["pos"]) for r in read_table(out / "variant_effects.tsv")] == rel
    for a, b in zip(relative, absolute, strict=True):
        assert a["delta_logodds"] == pytest.approx(b["delta_logodds"], abs=1e-6)
        assert a["p_alt"] == pytest.approx(b["p_alt"], abs=1e-6)


def test_bf16_is_close_to_float32(tmp_path):
    recs = records(length=40, n=1)
    seq = recs[0].seq
    rows = [f"r1\t{p}\t{seq[p - 1]}\t{other(seq[p - 1])}" for p in (3, 20)]
    f32, _ = run(tmp_path, recs, rows)
    bf16, _ = run(tmp_path, recs, rows, "--bf16", name="bf16")
    for a, b in zip(f32, bf16, strict=True):
        assert b["p_ref"] == pytest.approx(a["p_ref"], abs=0.02) and b["p_alt"] == pytest.approx(a["p_alt"], abs=0.02)


def test_outputs_replace_an_earlier_set_whole(tmp_path):
    """A variants run replaces an earlier prediction set (its pred_metrics.json goes), a plain run
    after it removes variant_effects.tsv; the user's other files stay."""
    import run_predict_degradation

    recs = records(length=40, n=2)
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "notes.txt").write_text("mine\n")
    io.write_json(tmp_path / "p" / "pred_metrics.json", {"auc": 0.5})  # an earlier labelled run's
    run(tmp_path, recs, [f"r2\t1\t{recs[1].seq[0]}\t{other(recs[1].seq[0])}"])
    names = ["notes.txt", "pred_results.npy", "predict_args.json", "predictions.tsv", "variant_effects.tsv"]
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == names
    run_predict_degradation.main(["--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "model"),
                                  "--predict_dir", str(tmp_path / "p"), "--max_seq_length", "512",
                                  "--predict_fasta", str(tmp_path / "new.fa")])
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == names[:-1]


# ---------------------------------------------------------------------------- the reader
@pytest.mark.parametrize("text, first_line", [
    ("r1\t5\tA\tG\n", 1), ("id\tpos\tref\talt\nr1\t5\tA\tG\n", 2), ("#id\tpos\tref\talt\r\nr1\t5\tA\tG\r\n", 2),
    ("name\tposition\treference\talternative\n\nr1\t+5\ta\tu\n", 3),
])
def test_reader_detects_the_header(tmp_path, text, first_line):
    io.write_text(tmp_path / "v.tsv", text)
    (v,) = io.read_variants(tmp_path / "v.tsv")
    assert (v.id, v.pos, v.line) == ("r1", 5, first_line)


# ---------------------------------------------------------------------------- bad input
R1 = "ACGT" * 10  # 40 nt: position 5 is A
R3 = ("ACGT" * 63)[:SITE_INDEX] + "A" + ("TGCA" * 63)[:SITE_INDEX]  # 501 nt, the site an A
GOOD = "r1\t5\tA\tG"
ROWS = {  # case -> the bad row (line 3, after the header and GOOD)
    "id": "r9\t5\tA\tG", "pos-outside": "r1\t41\tA\tG", "pos-zero": "r1\t0\tA\tG",
    "ref-past-end": "r1\t40\tTA\tGC", "ref-mismatch": "r1\t5\tG\tC", "alt-letter": "r1\t5\tA\tN",
    "indel": "r1\t5\tA\tAG", "alt-same": "r1\t5\tA\ta", "columns": "r1\t5\tA", "spaces": "r1 5 A G",
    "pos-not-int": "r1\tfive\tA\tG", "pos-float": "r1\t5.0\tA\tG",
    "relative-short": "r1\t0\tA\tG", "relative-outside": "r3\t251\tA\tG", "relative-mismatch": "r3\t-1\tA\tG",
}
V = "variants.tsv"
CASES = [(SCRIPT, c) for c in [
    Case("variants-missing", "`--variants` missing", "{file}: variants file not found", V),
    Case("variants-empty", "empty `--variants` file", "{file}: empty variants file", V),
    Case("variants-header-only", "`--variants` with a header line only", "{file}: no variants after the header line",
         V),
    Case("variants-no-fasta", "`--variants` without `--predict_fasta`",
         "--variants needs --predict_fasta (the FASTA whose records the variants refer to)"),
    Case("relative-no-variants", "`--pos_relative_to_site` without `--variants`",
         "--pos_relative_to_site needs --variants"),
    Case("id", "`--variants` row naming a record not in the FASTA", "{file}: line 3: record r9 is not in …/new.fa", V),
    Case("pos-outside", "`--variants` position past the record's end",
         "{file}: line 3: position 41 is outside record r1 (40 nt: positions 1..40)", V),
    Case("pos-zero", "`--variants` position 0 (positions are 1-based)",
         "{file}: line 3: position 0 is outside record r1 (40 nt: positions 1..40)", V),
    Case("ref-past-end", "`--variants` multi-letter ref running past the record's end",
         "{file}: line 3: ref 'TA' at position 40 runs past the end of record r1 (40 nt)", V),
    Case("ref-mismatch", "`--variants` ref that is not the record's letter",
         "{file}: line 3: ref 'G' does not match record r1, which has 'A' at position 5", V),
    Case("alt-letter", "`--variants` alt `N`", "{file}: line 3: alt 'N' is not A, C, G or T (U is read as T)", V),
    Case("indel", "`--variants` insertion (ref `A`, alt `AG`)",
         "{file}: line 3: ref 'A' and alt 'AG' differ in length: only substitutions (ref and alt of equal length) "
         "are supported, not insertions or deletions", V),
    Case("alt-same", "`--variants` alt equal to ref", "{file}: line 3: alt 'a' is the same as ref", V),
    Case("columns", "`--variants` row of 3 columns",
         "{file}: line 3: expected 4 tab-separated columns (id, pos, ref, alt), found 3", V),
    Case("spaces", "`--variants` row separated by spaces",
         "{file}: line 3: expected 4 tab-separated columns (id, pos, ref, alt), found 1", V),
    Case("pos-not-int", "`--variants` position `five`", "{file}: line 3: position 'five' is not an integer", V),
    Case("pos-float", "`--variants` position `5.0`", "{file}: line 3: position '5.0' is not an integer", V),
    Case("relative-short", "`--pos_relative_to_site` for a record of 40 nt",
         "{file}: line 3: record r1 has 40 nt, too short for --pos_relative_to_site (the site is at index 250: "
         "at least 251 nt)", V),
    Case("relative-outside", "`--pos_relative_to_site` position 251",
         "{file}: line 3: position 251 is outside record r3 (501 nt: positions -250..250 relative to the site)", V),
    Case("relative-mismatch", "`--pos_relative_to_site` ref that is not the record's letter",
         "{file}: line 3: ref 'A' does not match record r3, which has 'C' at position -1 relative to the site "
         "(position 250)", V),
]]


def build_variants(case: str, tmp: Path) -> list[str]:
    model, pred, fasta, table = tmp / "OUTPUT_DIR", tmp / "PREDICT_DIR", tmp / "new.fa", tmp / V
    tiny_classifier(model)
    io.save_npy(pred / "pred_results.npy", np.zeros(3, dtype=np.float32))  # an earlier run's outputs
    io.write_text(pred / "variant_effects.tsv", "id\tpos\tref\talt\tp_ref\tp_alt\tdelta_p\tdelta_logodds\n")
    recs = [io.FastaRecord("r1", R1), io.FastaRecord("r2", R1[::-1])]
    if case.startswith("relative-"):
        recs.append(io.FastaRecord("r3", R3))
    write_fasta(fasta, recs)
    good = "r3\t0\tA\tG" if case.startswith("relative-") else GOOD
    io.write_text(table, HEADER + good + "\n" + (ROWS[case] + "\n" if case in ROWS else ""))
    argv = ["--data_dir", str(tmp / "DATA_DIR"), "--output_dir", str(model), "--predict_dir", str(pred),
            "--max_seq_length", "512", "--predict_fasta", str(fasta), "--variants", str(table)]
    if case.startswith("relative-"):
        argv.append("--pos_relative_to_site")
    if case == "variants-missing":
        table.unlink()
    elif case == "variants-empty":
        table.write_text("\n\n")
    elif case == "variants-header-only":
        io.write_text(table, HEADER)
    elif case == "variants-no-fasta":
        argv = argv[:argv.index("--predict_fasta")] + argv[argv.index("--variants"):]
    elif case == "relative-no-variants":
        argv = argv[:argv.index("--variants")] + ["--pos_relative_to_site"]
    elif case not in ROWS:
        raise AssertionError(case)
    return argv


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for _, c in CASES])
def test_run_predict_degradation_variant_errors(case, tmp_path, capsys):
    import run_predict_degradation

    run_case(run_predict_degradation.main, build_variants, case, tmp_path, capsys)


def test_case_ids_are_unique():
    assert len({c.id for _, c in CASES}) == len(CASES)


if __name__ == "__main__":
    for script, c in CASES:
        msg = c.message.replace("{file}", c.file or "").replace("|", "\\|")
        print(f"| `{script}` | {c.what} | `{msg}` |")
