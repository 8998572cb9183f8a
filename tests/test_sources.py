"""One sequence source: the library reads labelled windows through ``m6abert.io.LabelledSources``, never a
folder of fixed file names.

``--pos_fasta`` / ``--neg_fasta`` (any names, gzip too) give the files the folder layout gives, byte for
byte; a missing one is refused in one line before anything is written; and a new kind of source (here a
list of records in memory, defined in this file) runs through ``make_inputs`` and the table's ``prepare``
with no change to the library.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from m6abert import io
from m6abert.cli import get_input as get_input_cli
from m6abert.cli import table as table_cli
from m6abert.commands.get_input import make_inputs
from m6abert.commands.table import TableSettings, prepare
from m6abert.io import FastaRecord, FastaSource, LabelledSources, Source
from m6abert.splits import read_windows
from m6abert.utils import InputError

FINETUNE = ["--kmer", "3", "--extend_len", "100", "--task", "finetune"]


# ---------------------------------------------------------------------------- data
def window_fasta(path: Path, prefix: str, n: int, seed: int) -> Path:
    """``n`` site windows: 501 nt with an A at 250, every third one 401 nt whose header declares its
    site (``site=60``: not the rule's 150, and closer to the 5' end than ``--extend_len``, so the
    declared sites show in ``get_input_args.json``)."""
    rng = np.random.RandomState(seed)
    text = []
    for i in range(n):
        short = i % 3 == 0
        seq = list(rng.choice(list("ACGT"), size=401 if short else 501))
        site = 60 if short else 250
        seq[site] = "A"
        text.append(f">{prefix}{i + 1}{f' site={site}' if short else ''}\n{''.join(seq)}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(text))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """The paper's layout: pos.fa (20 windows) and neg.fa (45)."""
    folder = tmp_path_factory.mktemp("sources") / "data"
    window_fasta(folder / "pos.fa", "p", 20, seed=1)
    window_fasta(folder / "neg.fa", "n", 45, seed=2)
    return folder


@pytest.fixture(scope="module")
def renamed(data) -> tuple[Path, Path]:
    """The same records under other names, elsewhere: positives plain, negatives gzip-compressed."""
    other = data.parent / "elsewhere"
    other.mkdir()
    pos = other / "degraded_windows.fasta"
    shutil.copyfile(data / "pos.fa", pos)
    neg = other / "stable.fa.gz"
    neg.write_bytes(gzip.compress((data / "neg.fa").read_bytes()))
    return pos, neg


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, but the run record (it names the inputs)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "get_input_args.json"}


# ---------------------------------------------------------------------------- the source types
def test_a_fasta_source_reads_what_the_reader_reads(data, renamed):
    src = FastaSource(data / "pos.fa")
    assert isinstance(src, Source) and src.name == str(data / "pos.fa")
    declared: dict[str, int] = {}
    assert src.read() == (io.read_fasta(data / "pos.fa", declared), declared) and declared["p1"] == 60
    assert src.sha256() == io.file_sha256(data / "pos.fa")
    assert src.describe() == {"kind": "fasta", "path": str(data / "pos.fa")}
    assert FastaSource(renamed[1]).read()[0] == FastaSource(data / "neg.fa").read()[0]  # gzip read by content


def test_labelled_sources_from_the_folder_and_from_flags(data, renamed):
    folder = LabelledSources.from_folder(data)
    assert folder == LabelledSources(FastaSource(data / "pos.fa"), FastaSource(data / "neg.fa"))
    assert LabelledSources.from_args(data) == folder
    assert LabelledSources.from_args(data, neg_fasta=renamed[1]) == (folder.pos, FastaSource(renamed[1]))
    assert LabelledSources.from_args(None, *renamed) == tuple(FastaSource(p) for p in renamed)
    assert folder.describe() == {"pos": {"kind": "fasta", "path": str(data / "pos.fa")},
                                 "neg": {"kind": "fasta", "path": str(data / "neg.fa")}}


@pytest.mark.parametrize(("args", "message"), [
    (("{tmp}",), "{tmp}/pos.fa: FASTA file not found"),
    (("{data}", None, "{tmp}/no.fa"), "{tmp}/no.fa: FASTA file not found"),
    (("{data}", "{tmp}"), "{tmp}: is a directory, expected a FASTA file"),
    ((None, "{data}/pos.fa"), "no neg.fa: give --neg_fasta FILE or a data folder that holds neg.fa"),
])
def test_a_missing_source_is_refused_naming_it(data, tmp_path, args, message):
    fill = {"tmp": tmp_path, "data": data}
    with pytest.raises(InputError) as err:
        LabelledSources.from_args(*(a.format(**fill) if a else a for a in args))
    assert str(err.value) == message.format(**fill)


# ---------------------------------------------------------------------------- get_input.py
@pytest.mark.parametrize("which", ["both", "pos"])
@pytest.mark.parametrize("extra", [["--do_val"], ["--n_folds", "3", "--group_overlap", "30"]], ids=["do_val", "folds"])
def test_get_input_files_by_flag_equal_the_folder_layout(data, renamed, tmp_path, which, extra):
    """--pos_fasta/--neg_fasta of other names (the negatives gzip-compressed) write every file the folder
    layout writes, byte for byte; get_input_args.json records the flags and the sources read."""
    assert get_input_cli.main([*FINETUNE, "--data_dir", str(data), "--save_dir", str(tmp_path / "a"), *extra]) == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    flags = ["--pos_fasta", str(renamed[0])] + (["--neg_fasta", str(renamed[1])] if which == "both" else [])
    data_dir = empty if which == "both" else data
    assert get_input_cli.main([*FINETUNE, "--data_dir", str(data_dir), "--save_dir", str(tmp_path / "b"), *flags,
                               *extra]) == 0
    a, b = files_of(tmp_path / "a"), files_of(tmp_path / "b")
    assert a == b and any(name.endswith(".tsv") for name in a)
    args = [io.read_json(tmp_path / d / "get_input_args.json") for d in "ab"]
    assert args[0]["sites"] == args[1]["sites"] and args[0]["sites"]["site_index"]  # the declared sites were used
    assert args[0]["pos_fasta"] is None and args[1]["pos_fasta"] == str(renamed[0])
    assert args[1]["sources"]["pos"] == {"kind": "fasta", "path": str(renamed[0])}
    neg = renamed[1] if which == "both" else data / "neg.fa"
    assert args[1]["sources"]["neg"] == {"kind": "fasta", "path": str(neg)}


@pytest.mark.parametrize(("flags", "message"), [
    (["--pos_fasta", "{tmp}/missing.fa"], "{tmp}/missing.fa: FASTA file not found"),
    (["--neg_fasta", "{tmp}"], "{tmp}: is a directory, expected a FASTA file"),
    (["--data_dir", "{tmp}/nowhere"], "{tmp}/nowhere/pos.fa: FASTA file not found"),
], ids=["missing", "folder", "no-folder"])
def test_get_input_refuses_a_missing_source_before_work(data, tmp_path, capsys, flags, message):
    save = tmp_path / "save"
    argv = [*FINETUNE, "--data_dir", str(data), "--save_dir", str(save)] + [f.format(tmp=tmp_path) for f in flags]
    with pytest.raises(SystemExit) as err:
        get_input_cli.main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    assert err.value.code == 2 and len(lines) == 1 and lines[0].endswith("error: " + message.format(tmp=tmp_path))
    assert not save.exists()


def test_get_input_pretrain_refuses_the_labelled_flags(data, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        get_input_cli.main(["--kmer", "3", "--extend_len", "250", "--task", "pretrain", "--data_dir", str(data),
                            "--fasta", str(data / "neg.fa"), "--neg_fasta", str(data / "neg.fa"),
                            "--save_dir", str(tmp_path / "save")])
    assert err.value.code == 2 and "error: --neg_fasta applies to --task finetune" in capsys.readouterr().err
    assert not (tmp_path / "save").exists()


# ---------------------------------------------------------------------------- a new kind of source
class ListSource(NamedTuple):
    """Records held in memory: a source kind splits.py and table.py have never heard of."""

    name: str
    records: tuple[FastaRecord, ...]
    sites: dict[str, int]

    def read(self) -> tuple[list[FastaRecord], dict[str, int]]:
        return list(self.records), dict(self.sites)

    def sha256(self) -> str:
        return hashlib.sha256(json.dumps([self.records, sorted(self.sites.items())]).encode()).hexdigest()

    def describe(self) -> dict:
        return {"kind": "memory", "n": len(self.records)}


def list_sources(data: Path) -> LabelledSources:
    """The folder's records and declared sites as two :class:`ListSource`."""
    out = []
    for label, name in (("pos", "pos.fa"), ("neg", "neg.fa")):
        declared: dict[str, int] = {}
        out.append(ListSource(f"memory:{label}", tuple(io.read_fasta(data / name, declared)), declared))
    return LabelledSources(*out)


def test_a_new_source_kind_runs_through_make_inputs_unchanged(data, tmp_path):
    toy = list_sources(data)
    assert isinstance(toy.pos, Source)
    assert get_input_cli.main([*FINETUNE, "--do_val", "--data_dir", str(data), "--save_dir", str(tmp_path / "a")]) == 0
    written = make_inputs("finetune", toy, str(tmp_path / "b"), 3, do_val=True, extend_len=100, run_args={})
    assert sorted(Path(p).name for p in written) == ["dev.tsv", "leakage.json", "records.tsv", "test.tsv", "train.tsv"]
    assert files_of(tmp_path / "a") == files_of(tmp_path / "b")
    record = io.read_json(tmp_path / "b" / "get_input_args.json")
    assert record["sources"] == {"pos": {"kind": "memory", "n": 20}, "neg": {"kind": "memory", "n": 45}}
    assert record["sites"] == io.read_json(tmp_path / "a" / "get_input_args.json")["sites"]


def test_a_new_source_kind_is_checked_and_named_like_a_file(data, tmp_path):
    """The library's checks apply to every source kind, and its messages name the source."""
    toy = list_sources(data)
    bad_site = toy.pos._replace(sites={**toy.pos.sites, "p2": 0 if toy.pos.records[1].seq[0] != "A" else 1})
    with pytest.raises(InputError, match=r"^memory:pos: record p2: site=\d in its header is '[CGT]', not the m6A A"):
        read_windows(bad_site)
    twice = toy.neg._replace(records=(*toy.neg.records, toy.pos.records[3]))
    with pytest.raises(InputError, match=r"^memory:neg: record id p4 \(record 46\) is also record 4 of …?memory:pos"):
        make_inputs("finetune", LabelledSources(toy.pos, twice), str(tmp_path / "out"), 3, extend_len=100)
    few = toy.neg._replace(records=toy.neg.records[:5])
    with pytest.raises(InputError, match=r"^memory:neg: 5 negative records, fewer than the 20 needed"):
        make_inputs("finetune", LabelledSources(toy.pos, few), str(tmp_path / "out"), 3, extend_len=100)
    assert not (tmp_path / "out").exists()


def test_a_new_source_kind_feeds_the_table(data, tmp_path):
    """The comparison table's folds from a list source equal the folder's; its data digests are the source's."""
    common = dict(output_dir=str(tmp_path / "o"), n_folds=2, models=("gc_lr",))
    by_folder = prepare(TableSettings(data_path=str(data), **common))
    toy = list_sources(data)
    by_list = prepare(TableSettings(data_path="(not read)", sources=toy, **common))
    assert by_list.folds == by_folder.folds and by_list.groups == by_folder.groups
    assert by_list.fingerprint["data_sha256"] == {"pos.fa": toy.pos.sha256(), "neg.fa": toy.neg.sha256()}
    assert by_folder.fingerprint["data_sha256"] == {n: io.file_sha256(data / n) for n in ("pos.fa", "neg.fa")}
    assert {k: v for k, v in by_list.fingerprint.items() if k != "data_sha256"} == \
        {k: v for k, v in by_folder.fingerprint.items() if k != "data_sha256"}


# ---------------------------------------------------------------------------- reproduce_table.py
TABLE = ["--models", "gc_lr", "--n_folds", "2", "--n_bootstrap", "200"]
TABLE_FILES = ("table.json", "table.md", "per_fold.tsv", "oof_predictions.tsv", "leakage.json")


def test_table_by_flag_equals_the_folder_layout(data, renamed, tmp_path):
    """reproduce_table.py --pos_fasta --neg_fasta: the same folds, predictions and table as --data_path."""
    a, b = tmp_path / "a", tmp_path / "b"
    first = table_cli.run(["--data_path", str(data), "--output_dir", str(a), *TABLE])
    second = table_cli.run(["--data_path", str(tmp_path / "nowhere"), "--pos_fasta", str(renamed[0]),
                            "--neg_fasta", str(renamed[1]), "--output_dir", str(b), *TABLE])
    assert first == second
    for name in TABLE_FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert files_of(a / "data") == files_of(b / "data") and files_of(a / "data")
    settings = [json.loads((d / "table_args.json").read_text())["settings"] for d in (a, b)]
    assert settings[1]["sources"] == {"pos": {"kind": "fasta", "path": str(renamed[0])},
                                      "neg": {"kind": "fasta", "path": str(renamed[1])}}
    assert io.read_json(b / "data" / "grouped" / "get_input_args.json")["sources"] == settings[1]["sources"]
    fingerprints = [io.read_json(d / "runs" / "settings.json") for d in (a, b)]
    assert fingerprints[1]["data_sha256"] == {"pos.fa": io.file_sha256(renamed[0]),
                                              "neg.fa": io.file_sha256(renamed[1])}
    assert fingerprints[0]["data_sha256"]["pos.fa"] == fingerprints[1]["data_sha256"]["pos.fa"]


def test_table_continues_a_run_from_the_same_bytes_under_another_name(data, renamed, tmp_path, capsys):
    """The run record holds the sources' content, not their names: a copy continues, other data is refused."""
    out = tmp_path / "out"
    first = table_cli.run(["--data_path", str(data), "--output_dir", str(out), *TABLE])
    again = table_cli.run(["--data_path", str(data), "--pos_fasta", str(renamed[0]), "--output_dir", str(out),
                           "--should_continue", *TABLE])
    assert again == first
    fewer = tmp_path / "fewer.fa"
    fewer.write_text("".join(f">{r.id}\n{r.seq}\n" for r in io.read_fasta(data / "neg.fa")[:-1]))
    with pytest.raises(SystemExit) as err:
        table_cli.main(["--data_path", str(data), "--neg_fasta", str(fewer), "--output_dir", str(out),
                        "--should_continue", *TABLE])
    assert err.value.code == 2 and "differ from the run there (data_sha256)" in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "message"), [
    (["--neg_fasta", "{tmp}/missing.fa.gz"], "{tmp}/missing.fa.gz: FASTA file not found"),
    (["--data_path", "{tmp}/nowhere"], "{tmp}/nowhere/pos.fa: FASTA file not found"),
], ids=["missing", "no-folder"])
def test_table_refuses_a_missing_source_before_work(data, tmp_path, capsys, flags, message):
    out = tmp_path / "out"
    argv = ["--data_path", str(data), "--output_dir", str(out), *TABLE] + [f.format(tmp=tmp_path) for f in flags]
    with pytest.raises(SystemExit) as err:
        table_cli.main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    assert err.value.code == 2 and len(lines) == 1 and lines[0].endswith("error: " + message.format(tmp=tmp_path))
    assert not out.exists()
