"""Windows of one locus on both sides of a split: get_input.py --group_overlap K (grouped splits and
folds, groups.tsv), leakage.json, the m6abert-leakage command, grouped parts and grouped inner CV.

Every claim is checked independently of m6abert.groups: shared stretches are recounted by sets of
30-mers of the sequences rebuilt from the written TSVs.

``CASES`` lists the bad inputs of --group_overlap and of m6abert-leakage for docs/errors.md
table (tests/test_errors.py's ``Case`` rows); ``python tests/test_leakage.py`` prints those rows.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "tests"):  # for `python tests/test_leakage.py` (pytest sets both itself)
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from conftest import DATA_DIR  # noqa: E402
from test_errors import LOG_RECORD, Case, check_error, markdown_rows, random_fasta, run_case, snapshot  # noqa: E402
from toy import random_seq, write_fasta, write_split_dir  # noqa: E402

from m6abert import io  # noqa: E402
from m6abert.cli import get_input  # noqa: E402
from m6abert.cli import leakage as leakage_cli  # noqa: E402
from m6abert.groups import grouped_parts, sharing  # noqa: E402
from m6abert.kmer import kmer2seq  # noqa: E402
from m6abert.leakage import window_groups  # noqa: E402
from m6abert.utils import InputError  # noqa: E402

K = 30
COUNTS = ("k", "n_windows", "cross_part_pairs", "windows_with_cross_part_partner", "same_part_pairs")


# ---------------------------------------------------------------------------- synthetic loci
def locus_windows(rng: np.random.RandomState, prefix: str, offsets=(0, 20, 40), length: int = 501) -> list:
    """Windows of one 600-nt "transcript", cut at ``offsets`` (shifted copies of one locus)."""
    transcript = random_seq(rng, 600)
    return [io.FastaRecord(f"{prefix}o{o}", transcript[o:o + length]) for o in offsets]


def synthetic_records(seed: int = 0) -> tuple[list, list, dict[str, str]]:
    """37 positives and 37 negatives (all used with --neg_ratio 1): 5 positive and 5 negative loci of 3
    windows, one mixed locus (2 positive windows, 1 negative), and unrelated random windows.
    Returns (pos, neg, the locus of every record id; an unrelated window is its own)."""
    rng = np.random.RandomState(seed)
    pos, neg = [], []
    for i in range(5):
        pos += locus_windows(rng, f"pL{i}")
        neg += locus_windows(rng, f"nL{i}")
    mixed = locus_windows(rng, "mixed")
    pos += mixed[:2]
    neg += mixed[2:]
    pos += [io.FastaRecord(f"pS{i}", random_seq(rng, 501)) for i in range(20)]
    neg += [io.FastaRecord(f"nS{i}", random_seq(rng, 501)) for i in range(21)]
    locus = {r.id: r.id.split("o")[0] if "L" in r.id or r.id.startswith("mixed") else r.id for r in (*pos, *neg)}
    return pos, neg, locus


MODES = {"folds": ("--n_folds", "3"), "do_val": ("--do_val",)}


def part_files(save: Path, mode: str) -> dict[str, Path]:
    """The parts of a split folder: fold name -> its dev.tsv, or train/dev/test -> their TSVs."""
    if mode == "folds":
        return {p.parent.name: p for p in sorted(save.glob("fold_*/dev.tsv"))}
    return {name: save / f"{name}.tsv" for name in ("train", "dev", "test")}


def read_parts(save: Path, mode: str) -> dict[str, tuple[list[str], list[int]]]:
    """part -> (sequences rebuilt from the k-mers of each row, labels)."""
    out = {}
    for part, path in part_files(save, mode).items():
        tsv = io.read_tsv(path)
        out[part] = ([kmer2seq(s) for s in tsv.sentences], tsv.labels.tolist())
    return out


def kmer_set(seq: str, k: int = K) -> set[str]:
    return {seq[i:i + k] for i in range(len(seq) - k + 1)}


def brute_cross_pairs(parts: dict[str, tuple[list[str], list[int]]], k: int = K) -> dict[str, int]:
    """Pairs of windows in different parts that share an exact k-nt stretch, by label pair (sets of k-mers)."""
    rows = [(part, kmer_set(s, k), lab) for part, (seqs, labels) in parts.items()
            for s, lab in zip(seqs, labels, strict=True)]
    out = {"total": 0, "pos-pos": 0, "neg-neg": 0, "pos-neg": 0}
    for (pa, ka, la), (pb, kb, lb) in itertools.combinations(rows, 2):
        if pa != pb and ka & kb:
            out["total"] += 1
            out["pos-pos" if la + lb == 2 else "neg-neg" if la + lb == 0 else "pos-neg"] += 1
    return out


def run_get_input(data: Path, save: Path, *extra: str) -> Path:
    assert get_input.main(["--kmer", "3", "--extend_len", "250", "--task", "finetune", "--data_dir", str(data),
                           "--save_dir", str(save), *extra]) == 0
    return save


def read_groups(save: Path) -> list[dict[str, str]]:
    lines = (save / "groups.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]]


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> tuple[Path, list, list, dict[str, str]]:
    data = tmp_path_factory.mktemp("loci")
    pos, neg, locus = synthetic_records()
    write_fasta(data / "pos.fa", pos)
    write_fasta(data / "neg.fa", neg)
    return data, pos, neg, locus


@pytest.fixture(scope="module")
def runs(synthetic, tmp_path_factory):
    """get_input.py on the synthetic loci, each (mode, overlap) once: overlap None is no flag at all."""
    data = synthetic[0]
    done: dict = {}

    def get(mode: str, overlap: int | None) -> Path:
        if (mode, overlap) not in done:
            flag = () if overlap is None else ("--group_overlap", str(overlap))
            save = tmp_path_factory.mktemp(f"{mode}_{overlap}")
            done[mode, overlap] = run_get_input(data, save, *MODES[mode], *flag)
        return done[mode, overlap]

    return get


# ---------------------------------------------------------------------------- get_input.py --group_overlap
@pytest.mark.parametrize("mode", list(MODES))
def test_grouped_split_keeps_every_locus_in_one_part(mode, synthetic, runs):
    """--group_overlap 30: no two windows of different parts share a 30-nt stretch (recounted from the
    written TSVs), groups.tsv gives each group one part, and leakage.json reports 0 pairs."""
    save = runs(mode, 30)
    parts = read_parts(save, mode)
    assert brute_cross_pairs(parts) == {"total": 0, "pos-pos": 0, "neg-neg": 0, "pos-neg": 0}
    part_of_group: dict[str, set[str]] = {}
    for row in read_groups(save):
        part_of_group.setdefault(row["group"], set()).add(row["part"])
    assert all(len(p) == 1 for p in part_of_group.values())
    report = json.loads((save / "leakage.json").read_text())
    assert report["split"] == "grouped (--group_overlap 30)" and report["k"] == K and report["n_windows"] == 74
    assert report["cross_part_pairs"]["total"] == 0 and report["windows_with_cross_part_partner"]["total"] == 0
    assert report["pairs"] == [] and report["same_part_pairs"] == 5 * 2 * 3 + 3  # 3 pairs in each locus


@pytest.mark.parametrize("mode", list(MODES))
def test_grouped_split_has_both_classes_in_every_part(mode, runs):
    save = runs(mode, 30)
    parts = read_parts(save, mode)
    assert len(parts) == 3
    for part, (_, labels) in parts.items():
        assert 0 < sum(labels) < len(labels), part
    if mode == "folds":
        for train in sorted(save.glob("fold_*/train.tsv")):
            labels = io.read_tsv(train).labels
            assert 0 < labels.sum() < len(labels), train


@pytest.mark.parametrize("mode", list(MODES))
def test_groups_tsv_lists_the_records_written_with_their_part_and_locus(mode, synthetic, runs):
    """groups.tsv: columns id, group, part; one row per record written (all 74), each in the part whose
    TSV holds its sequence; windows of one locus share a group and different loci do not."""
    _, pos, neg, locus = synthetic
    save = runs(mode, 30)
    assert (save / "groups.tsv").read_text().splitlines()[0] == "id\tgroup\tpart"
    rows = read_groups(save)
    ids = [r["id"] for r in rows]  # the positives, then the sampled negatives (all of them, shuffled)
    assert ids[:len(pos)] == [r.id for r in pos] and sorted(ids[len(pos):]) == sorted(r.id for r in neg)
    seq_of = {r.id: r.seq for r in (*pos, *neg)}
    where = {s: part for part, (seqs, _) in read_parts(save, mode).items() for s in seqs}
    assert len(where) == len(rows)  # every record written once
    assert all(where[seq_of[r["id"]]] == r["part"] for r in rows)
    group_of = {r["id"]: r["group"] for r in rows}
    for a, b in itertools.combinations(group_of, 2):
        assert (group_of[a] == group_of[b]) == (locus[a] == locus[b]), (a, b)
    assert len(set(group_of.values())) == 5 + 5 + 1 + 20 + 21


@pytest.mark.parametrize("mode", list(MODES))
def test_random_split_leaks_the_pairs_a_brute_force_count_finds(mode, runs):
    """--group_overlap 0 (the original's random split): leakage.json counts the cross-part pairs found
    by sets of 30-mers of the written TSVs, by label pair, and lists them; no groups.tsv."""
    save = runs(mode, 0)
    brute = brute_cross_pairs(read_parts(save, mode))
    report = json.loads((save / "leakage.json").read_text())
    assert brute["total"] > 0 and (brute["pos-neg"] > 0 or mode == "do_val")  # the folds split the mixed locus too
    assert report["cross_part_pairs"] == brute
    assert report["split"] == "random (ungrouped)" and len(report["pairs"]) == brute["total"]
    assert not (save / "groups.tsv").exists()


@pytest.mark.parametrize("mode", list(MODES))
def test_group_overlap_0_writes_what_no_flag_writes(mode, runs):
    """--group_overlap 0 is the original split: every file byte-identical to a run without the flag
    (get_input_args.json but for its save_dir)."""
    with_flag, without = files_of(runs(mode, 0)), files_of(runs(mode, None))
    assert with_flag.keys() == without.keys() and any(name.endswith(".tsv") for name in with_flag)
    args = [json.loads(f.pop("get_input_args.json")) for f in (with_flag, without)]
    assert with_flag == without
    assert {**args[0], "save_dir": None} == {**args[1], "save_dir": None} and args[0]["group_overlap"] == 0


def test_grouped_and_random_splits_differ(runs):
    """The grouped folds are not the random ones (the flag does something) but hold the same records."""
    grouped, random = read_parts(runs("folds", 30), "folds"), read_parts(runs("folds", 0), "folds")
    assert grouped != random
    assert sorted(s for seqs, _ in grouped.values() for s in seqs) == sorted(s for seqs, _ in random.values()
                                                                            for s in seqs)


# ---------------------------------------------------------------------------- m6abert-leakage
def pair_set(pairs: list[list[str]], names: dict[str, str] | None = None) -> set[frozenset]:
    """Listed pairs as unordered {(id, part), (id, part)}, ids renamed by ``names``."""
    names = names or {}
    return {frozenset({(names.get(a, a), pa), (names.get(b, b), pb)}) for a, pa, b, pb in pairs}


@pytest.mark.parametrize("mode, overlap", [("folds", 0), ("do_val", 0), ("folds", 30)])
def test_leakage_command_counts_what_get_input_counted(mode, overlap, synthetic, runs, tmp_path):
    """On a folder get_input.py wrote (its leakage.json deleted), m6abert-leakage writes DATA_DIR/leakage.json
    with get_input's counts, and the same pairs once its FILE:ROW ids are read back as record ids."""
    _, pos, neg, _ = synthetic
    save = shutil.copytree(runs(mode, overlap), tmp_path / "split")
    expected = json.loads((save / "leakage.json").read_text())
    (save / "leakage.json").unlink()
    assert leakage_cli.main(["--data_dir", str(save)]) == 0
    report = json.loads((save / "leakage.json").read_text())
    assert {key: report[key] for key in COUNTS} == {key: expected[key] for key in COUNTS}
    id_of = {r.seq: r.id for r in (*pos, *neg)}
    names = {}
    for part, path in part_files(save, mode).items():
        prefix = f"{part}/dev.tsv" if mode == "folds" else path.name
        names.update({f"{prefix}:{row}": id_of[kmer2seq(s)]
                      for row, s in enumerate(io.read_tsv(path).sentences, start=1)})
    assert pair_set(report["pairs"], names) == pair_set(expected["pairs"])
    assert len(report["pairs"]) == expected["cross_part_pairs"]["total"]


def test_leakage_output_elsewhere_leaves_the_data_folder_untouched(runs, tmp_path):
    save = shutil.copytree(runs("do_val", 0), tmp_path / "split")
    (save / "leakage.json").unlink()
    before = snapshot(save)
    out = tmp_path / "reports" / "split_leakage.json"
    assert leakage_cli.main(["--data_dir", str(save), "--output", str(out)]) == 0
    assert snapshot(save) == before and not (save / "leakage.json").exists()
    report = json.loads(out.read_text())
    assert report["cross_part_pairs"]["total"] > 0 and report["files"] == ["train.tsv", "dev.tsv", "test.tsv"]


def test_leakage_console_script_in_a_real_process(runs, tmp_path):
    """The installed m6abert-leakage: exit status 0 and exactly one log line on stderr, naming the counts."""
    exe = shutil.which("m6abert-leakage")
    if exe is None:
        pytest.skip("m6abert-leakage is not installed (pip install -e .)")
    save = runs("folds", 0)
    expected = json.loads((save / "leakage.json").read_text())
    out = tmp_path / "report.json"
    before = snapshot(save)
    proc = subprocess.run([exe, "--data_dir", str(save), "--output", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and LOG_RECORD.match(lines[0]), proc.stderr[-2000:]
    pairs = expected["cross_part_pairs"]
    assert f"{out}: {pairs['total']} pairs of windows in different parts share an exact 30-nt stretch" in lines[0]
    assert f"({pairs['pos-pos']} pos-pos, {pairs['neg-neg']} neg-neg, {pairs['pos-neg']} pos-neg;" in lines[0]
    assert json.loads(out.read_text())["cross_part_pairs"] == pairs
    assert snapshot(save) == before


# ---------------------------------------------------------------------------- groups and grouped parts
def test_grouped_parts_keeps_groups_together_and_classes_in_every_part():
    rng = np.random.RandomState(4)
    sizes = rng.randint(1, 6, 60)
    groups = np.repeat(np.arange(60), sizes)
    labels = np.repeat(np.arange(60) % 2, sizes)  # a group is one class
    part = grouped_parts(labels, groups, 5, seed=1)
    assert sorted(set(part.tolist())) == [0, 1, 2, 3, 4]
    for g in range(60):
        assert len(set(part[groups == g].tolist())) == 1, g
    for p in range(5):
        assert 0 < labels[part == p].sum() < (part == p).sum(), p
    assert np.array_equal(part, grouped_parts(labels, groups, 5, seed=1))  # seeded
    assert not np.array_equal(part, grouped_parts(labels, groups, 5, seed=2))


@pytest.mark.parametrize("label, name", [(1, "positives"), (0, "negatives")])
def test_grouped_parts_refuses_fewer_groups_than_parts(label, name):
    labels = np.array([1] * 10 + [0] * 10)
    groups = np.arange(20)
    groups[labels == label] = np.arange(10) % 4  # this class forms 4 groups
    with pytest.raises(InputError, match=rf"^x\.fa: the {name} form 4 groups .* fewer than the 5 parts asked for"):
        grouped_parts(labels, groups, 5, seed=0, what="x.fa")
    assert len(set(grouped_parts(labels, groups, 4, seed=0).tolist())) == 4  # 4 parts are fine


@pytest.mark.parametrize("extend_len", [None, 100])
def test_window_groups_joins_shifted_windows_of_one_locus(extend_len):
    rng = np.random.RandomState(5)
    records = [*locus_windows(rng, "a"), io.FastaRecord("x", random_seq(rng, 501)), *locus_windows(rng, "b")]
    groups = window_groups(records, K, extend_len)
    assert list(groups) == [r.id for r in records]
    assert groups["ao0"] == groups["ao20"] == groups["ao40"]
    assert groups["bo0"] == groups["bo20"] == groups["bo40"]
    assert len({groups["ao0"], groups["x"], groups["bo0"]}) == 3


def test_sharing_equals_the_definition():
    rng = np.random.RandomState(6)
    base = random_seq(rng, 400)
    seqs = [base[o:o + 60] for o in (0, 100, 170, 300)] + [random_seq(rng, 60)]
    others = [base[120:200], random_seq(rng, 80)]
    theirs = set().union(*(kmer_set(s) for s in others))
    want = [bool(kmer_set(s) & theirs) for s in seqs]
    assert want == [False, True, True, False, False]
    assert sharing(seqs, others, K).tolist() == want


# ---------------------------------------------------------------------------- grouped inner CV
def test_grouped_inner_cv_does_not_reward_memorised_loci():
    """Labels drawn per locus, no sequence signal but the locus: an ungrouped inner CV rewards the largest k
    (it recognises loci seen in its training folds); grouped by locus, every k is near chance."""
    from m6abert.baselines import fit_kmer_lr

    rng = np.random.RandomState(0)
    seqs, labels, loci = [], [], []
    for locus, label in enumerate(rng.permutation([1] * 30 + [0] * 30)):
        transcript = random_seq(rng, 181)
        for j in range(5):  # 5 windows of 101 nt, 20 nt apart
            seqs.append(transcript[20 * j:20 * j + 101])
            labels.append(int(label))
            loci.append(locus)
    ungrouped = fit_kmer_lr(seqs, labels, ks=(1, 2, 3, 4, 5, 6), seed=0)
    grouped = fit_kmer_lr(seqs, labels, ks=(1, 2, 3, 4, 5, 6), seed=0, groups=loci)
    assert ungrouped.k >= 5 and max(ungrouped.inner_auc.values()) > 0.95  # measured: k 6, 1.0
    assert max(ungrouped.inner_auc[k] for k in (1, 2)) < 0.7  # small k cannot tell loci apart
    assert all(0.25 < auc < 0.75 for auc in grouped.inner_auc.values()), grouped.inner_auc  # measured 0.38..0.57
    assert max(grouped.inner_auc.values()) < max(ungrouped.inner_auc.values()) - 0.25


# ---------------------------------------------------------------------------- the paper's data
REAL_ARGS = ("--kmer", "3", "--extend_len", "250", "--task", "finetune", "--seed", "52")
REAL_MODES = {"folds": ("--n_folds", "5"), "do_val": ("--do_val",)}


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    """get_input.py on the paper's data, each (mode, overlap) once (the tests take real_data_dir, which skips)."""
    done: dict = {}

    def get(mode: str, overlap: int) -> Path:
        if (mode, overlap) not in done:
            save = tmp_path_factory.mktemp(f"real_{mode}_{overlap}")
            assert get_input.main([*REAL_ARGS, *REAL_MODES[mode], "--group_overlap", str(overlap),
                                   "--data_dir", str(DATA_DIR), "--save_dir", str(save)]) == 0
            done[mode, overlap] = save
        return done[mode, overlap]

    return get


def test_real_random_folds_leak_289_pairs(real_data_dir, real_runs):
    """The seed-52 5-fold split of the paper's data: 289 pairs of windows in different folds share a
    30-nt stretch (267 pos-pos, 21 neg-neg, 1 pos-neg), 321 of 970 windows."""
    report = json.loads((real_runs("folds", 0) / "leakage.json").read_text())
    assert report["cross_part_pairs"] == {"total": 289, "pos-pos": 267, "neg-neg": 21, "pos-neg": 1}
    assert report["windows_with_cross_part_partner"]["total"] == 321 and report["n_windows"] == 970


def test_real_grouped_folds_leak_nothing_and_stay_balanced(real_data_dir, real_runs):
    save = real_runs("folds", 30)
    report = json.loads((save / "leakage.json").read_text())
    assert report["cross_part_pairs"]["total"] == 0 and report["windows_with_cross_part_partner"]["total"] == 0
    for i in range(5):
        labels = io.read_tsv(save / f"fold_{i}" / "dev.tsv").labels
        assert (int(labels.sum()), int(len(labels) - labels.sum())) == (97, 97), i
    folds = json.loads((save / "folds.json").read_text())["folds"]
    part_of = {r["id"]: r["part"] for r in read_groups(save)}
    assert all(part_of[i] == f"fold_{n}" for n, f in enumerate(folds) for i in (*f["pos"], *f["neg"]))
    assert len(part_of) == 970


def test_real_do_val_split_leaks_and_grouped_does_not(real_data_dir, real_runs):
    random = json.loads((real_runs("do_val", 0) / "leakage.json").read_text())
    grouped = json.loads((real_runs("do_val", 30) / "leakage.json").read_text())
    assert random["cross_part_pairs"]["total"] == 153 and random["windows_with_cross_part_partner"]["total"] == 205
    assert grouped["cross_part_pairs"]["total"] == 0
    counts = [io.read_tsv(real_runs("do_val", 30) / f"{name}.tsv").labels for name in ("train", "dev", "test")]
    assert all(0 < c.sum() < len(c) for c in counts) and sum(len(c) for c in counts) == 970


@pytest.mark.parametrize("mode", list(REAL_MODES))
def test_real_leakage_command_counts_what_get_input_counted(mode, real_data_dir, real_runs, tmp_path):
    save = real_runs(mode, 0)
    expected = json.loads((save / "leakage.json").read_text())
    out = tmp_path / "leakage.json"
    assert leakage_cli.main(["--data_dir", str(save), "--output", str(out)]) == 0
    report = json.loads(out.read_text())
    assert {key: report[key] for key in COUNTS} == {key: expected[key] for key in COUNTS}


# ---------------------------------------------------------------------------- bad input
FEW_GROUPS = ("{file}: the positives form 3 groups of windows sharing a stretch, fewer than the 5 parts asked for; "
              "lower the number of folds or --group_overlap")
CASES = [("get_input.py", c) for c in [
    Case("group-overlap-33", "`--group_overlap 33`", "--group_overlap must be 0 (off) or in 1..32 nt, not 33"),
    Case("group-overlap-negative", "`--group_overlap -1`", "--group_overlap must be 0 (off) or in 1..32 nt, not -1"),
    Case("group-overlap-pretrain", "`--group_overlap 30` with `--task pretrain`",
         "--group_overlap applies to --task finetune"),
    Case("group-overlap-few-groups", "`--group_overlap 30 --n_folds 5` when the positives form 3 loci",
         FEW_GROUPS, "DATA_DIR/pos.fa"),
]] + [("m6abert-leakage", c) for c in [
    Case("leakage-empty-dir", "`--data_dir` without split files",
         "{file}: no train.tsv, dev.tsv, test.tsv or fold_*/dev.tsv to check", "DATA_DIR"),
    Case("leakage-missing-dir", "`--data_dir` missing", "--data_dir {file}: not a directory", "DATA_DIR"),
    Case("leakage-k0", "`--group_overlap 0`", "--group_overlap must be in 1..32 nt, not 0"),
]]


def build_case(case: str, tmp: Path) -> list[str]:
    data, save = tmp / "DATA_DIR", tmp / "SAVE_DIR"
    if case.startswith("leakage-"):
        argv = ["--data_dir", str(data)]
        if case == "leakage-empty-dir":
            data.mkdir()
        elif case == "leakage-k0":
            write_split_dir(data)
            argv += ["--group_overlap", "0"]
        elif case != "leakage-missing-dir":
            raise AssertionError(case)
        return argv
    random_fasta(data / "pos.fa", "p", 10, seed=3)
    random_fasta(data / "neg.fa", "n", 15, seed=4)
    io.write_text(save / "train.tsv", "seq\tlabel\nstale output of an earlier run\t1\n")
    argv = ["--kmer", "3", "--extend_len", "250", "--task", "finetune", "--data_dir", str(data),
            "--save_dir", str(save)]
    if case == "group-overlap-33":
        argv += ["--group_overlap", "33"]
    elif case == "group-overlap-negative":
        argv += ["--group_overlap", "-1"]
    elif case == "group-overlap-pretrain":
        argv[5] = "pretrain"
        argv += ["--group_overlap", "30"]
    elif case == "group-overlap-few-groups":
        rng = np.random.RandomState(7)
        pos = [*locus_windows(rng, "a", (0, 20, 40, 60)), *locus_windows(rng, "b"), *locus_windows(rng, "c")]
        write_fasta(data / "pos.fa", pos)
        argv += ["--group_overlap", "30", "--n_folds", "5"]
    else:
        raise AssertionError(case)
    return argv


@pytest.mark.parametrize("script, case", [pytest.param(s, c, id=c.id) for s, c in CASES])
def test_bad_input(script, case, tmp_path, capsys):
    main = get_input.main if script == "get_input.py" else leakage_cli.main
    run_case(main, build_case, case, tmp_path, capsys)


def test_grouped_do_val_with_too_few_loci_names_what_the_user_asked_for():
    from m6abert.splits import finetune_splits

    rng = np.random.RandomState(1)
    pos = [w for locus in range(8) for w in locus_windows(rng, f"p{locus}")]  # 8 loci of 3 windows
    neg = [io.FastaRecord(f"n{i}", random_seq(rng, 501)) for i in range(30)]
    groups = window_groups([*pos, *neg], K)
    assert len({groups[r.id] for r in pos}) == 8
    with pytest.raises(InputError) as err:
        finetune_splits(pos, neg, k=3, do_val=True, groups=groups, pos_path="pos.fa")
    msg = str(err.value)
    assert msg.startswith("pos.fa: ") and "groups" in msg  # refused, naming the file: as it should
    assert "--do_val" in msg and "number of folds" not in msg and "give more loci" in msg


def test_case_ids_are_unique():
    assert len({c.id for _, c in CASES}) == len(CASES)


def test_leakage_bad_input_in_a_real_process(tmp_path):
    """The installed console script: exit status 2, one ``m6abert-leakage: error:`` line, nothing written."""
    exe = shutil.which("m6abert-leakage")
    if exe is None:
        pytest.skip("m6abert-leakage is not installed (pip install -e .)")
    case = next(c for _, c in CASES if c.id == "leakage-empty-dir")
    argv = build_case(case.id, tmp_path)
    before = snapshot(tmp_path)
    proc = subprocess.run([exe, *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    check_error(proc.stderr, case, tmp_path, prog=re.escape("m6abert-leakage"))
    assert snapshot(tmp_path) == before


if __name__ == "__main__":
    print(markdown_rows(CASES), end="")


def test_grouped_split_without_do_val_needs_only_the_test_cut():
    """Without --do_val a grouped split cuts test (= dev.tsv) as one of 5 parts and nothing more: 7 loci a
    class are enough (a 10-part dev cut, which --do_val needs, would refuse them)."""
    from m6abert.splits import finetune_splits

    rng = np.random.RandomState(2)
    pos = [w for locus in range(7) for w in locus_windows(rng, f"p{locus}")]
    neg = [w for locus in range(7) for w in locus_windows(rng, f"n{locus}")]
    groups = window_groups([*pos, *neg], K)
    splits = finetune_splits(pos, neg, k=3, do_val=False, groups=groups, pos_path="pos.fa")
    assert set(splits) == {"train", "dev"}
    parts = {name: {groups[i] for i in s.ids} for name, s in splits.items()}
    assert not parts["train"] & parts["dev"] and sorted(set(splits["dev"].labels)) == [0, 1]
    with pytest.raises(InputError, match="--do_val"):
        finetune_splits(pos, neg, k=3, do_val=True, groups=groups, pos_path="pos.fa")


def test_a_grouped_inner_fold_of_one_class_is_refused():
    """Two positive loci cannot fill three grouped inner folds with both classes: one line, not a traceback."""
    from m6abert.baselines import fit_kmer_lr

    rng = np.random.RandomState(4)
    seqs = [random_seq(rng, 60) for _ in range(12)]
    labels = [1, 1, 1, 1] + [0] * 8
    groups = [0, 0, 1, 1] + list(range(2, 10))
    with pytest.raises(InputError, match="holds one class only"):
        fit_kmer_lr(seqs, labels, ks=(1,), inner_folds=3, seed=0, groups=groups)
