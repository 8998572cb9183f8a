"""Record ids and genome coordinates through every output (issue 21, second part).

Windows are cut from a tiny genome in the test (two exons each, across a junction, on '+' and '-'),
their headers carrying ``chrom:pos:strand site= transcript= blocks=``; the test maps window bases to
the genome with its own code (not :func:`m6abert.io.genome_positions`) and follows the ids and
coordinates through get_input.py (``records.tsv``), prediction (``predictions.tsv``,
``predictions.bed``), visualize_all.py (``*.ids.tsv``, the QC table, ``--fasta``, bedGraph tracks),
merges of shards and motif tables.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from toy import MOTIF, tiny_classifier

from m6abert import io
from m6abert.kmer import kmer2seq

COMP = str.maketrans("ACGT", "TGCA")
W, SITE = 61, 30  # window length, site index
PRED = ["--max_seq_length", "64", "--no_cuda"]


# ---------------------------------------------------------------------------- a tiny genome and its windows
def positions(blocks, strand: str) -> list[int]:
    """The genome position of each window base, in window order (the test's own mapping)."""
    out = []
    for s, e in blocks:
        out += list(range(s, e)) if strand == "+" else list(range(e - 1, s - 1, -1))
    return out


def window_blocks(start: int, strand: str) -> tuple[tuple[int, int], ...]:
    """Two exons of a 61-nt window in [start, start + 200): 30 nt, an intron of 70, 31 nt; in window order."""
    first, second = (start, start + 30), (start + 100, start + 131)
    return (first, second) if strand == "+" else (second, first)


class Genome:
    """Random chromosomes; windows are cut after every edit of a site base (the m6A A)."""

    def __init__(self, seed: int = 0, length: int = 6000):
        rng = np.random.RandomState(seed)
        self.chroms = {c: list(rng.choice(list("ACGT"), length)) for c in ("chr2", "chr10")}
        self.windows: list[dict] = []

    def add(self, rid: str, chrom: str, blocks, strand: str, label: int, with_blocks: bool = True,
            plant: bool = False) -> None:
        where = positions(blocks, strand)
        base = "A" if strand == "+" else "T"  # the window's A at the site
        self.chroms[chrom][where[SITE]] = base
        if plant:  # the motif at window positions 15..22 (kept by a crop of 20 nt each side of the site)
            for j, letter in enumerate(MOTIF):
                self.chroms[chrom][where[15 + j]] = letter if strand == "+" else letter.translate(COMP)
        self.windows.append(dict(id=rid, chrom=chrom, blocks=tuple(blocks), strand=strand, label=label,
                                 with_blocks=with_blocks))

    def seq(self, w: dict) -> str:
        bases = "".join(self.chroms[w["chrom"]][p] for p in positions(w["blocks"], w["strand"]))
        return bases if w["strand"] == "+" else bases.translate(COMP)

    def header(self, w: dict, label: bool = False) -> str:
        pos = positions(w["blocks"], w["strand"])[SITE] + 1
        words = [w["id"], f"{w['chrom']}:{pos}:{w['strand']}", f"site={SITE}", f"transcript=T{w['id']}"]
        if w["with_blocks"]:
            words.append("blocks=" + ",".join(f"{s}-{e}" for s, e in w["blocks"]))
        return " ".join(words + ([f"label={w['label']}"] if label else []))

    def fasta(self, path: Path, windows, label: bool = False, plain: bool = False) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f">{w['id'] + f' site={SITE}' if plain else self.header(w, label)}\n{self.seq(w)}\n"
                                for w in windows))
        return path


def genome_of(n_pos: int = 12, n_neg: int = 12, seed: int = 0) -> Genome:
    """Windows spaced 200 nt apart, alternating strand and chromosome; every third one without ``blocks=``
    (contiguous), so its exons are one block; positives carry the planted motif."""
    g = Genome(seed)
    for i in range(n_pos + n_neg):
        strand, chrom = "+-"[i % 2], ("chr2", "chr10")[(i // 2) % 2]
        contiguous = i % 3 == 2
        blocks = ((i * 200, i * 200 + W),) if contiguous else window_blocks(i * 200, strand)
        g.add(f"p{i}" if i < n_pos else f"n{i}", chrom, blocks, strand, int(i < n_pos), not contiguous,
              plant=i < n_pos)
    return g


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """The genome, pos.fa / neg.fa with coordinates (and a copy without), get_input.py's splits, a model."""
    base = tmp_path_factory.mktemp("ids")
    g = genome_of()
    pos = [w for w in g.windows if w["label"] == 1]
    neg = [w for w in g.windows if w["label"] == 0]
    g.fasta(base / "data" / "pos.fa", pos)
    (base / "data" / "neg.fa").write_text(
        g.fasta(base / "tmp_neg.fa", neg).read_text() + f">plain1 site={SITE}\n{'G' * SITE}A{'C' * (W - SITE - 1)}\n")
    g.fasta(base / "plain" / "pos.fa", pos, plain=True)
    g.fasta(base / "plain" / "neg.fa", neg, plain=True)
    (base / "plain" / "neg.fa").write_text((base / "plain" / "neg.fa").read_text()
                                           + f">plain1 site={SITE}\n{'G' * SITE}A{'C' * (W - SITE - 1)}\n")
    import get_input

    common = ["--kmer", "3", "--extend_len", "20", "--task", "finetune", "--do_val"]
    for name in ("data", "plain"):
        assert get_input.main([*common, "--data_dir", str(base / name), "--save_dir", str(base / f"{name}_splits")]) == 0
    tiny_classifier(base / "model")
    return {"base": base, "genome": g, "by_id": {w["id"]: w for w in g.windows}}


def _read(path: Path) -> dict[str, list[str]]:
    return io.read_columns(path)


# ---------------------------------------------------------------------------- get_input.py
def test_records_tsv_names_every_row_and_maps_the_cropped_window_back(job):
    base, g, by_id = job["base"], job["genome"], job["by_id"]
    splits = base / "data_splits"
    for name in ("train", "dev", "test"):  # the TSVs are those of the same windows without coordinates
        assert (splits / f"{name}.tsv").read_bytes() == (base / "plain_splits" / f"{name}.tsv").read_bytes(), name
    rec = _read(splits / "records.tsv")
    assert list(rec) == ["id", "part", "row", "label", "site", "chrom", "pos", "strand", "transcript", "blocks"]
    assert not (base / "plain_splits" / "records.tsv").read_text().startswith("id\tpart\trow\tlabel\tsite\tchrom")
    for name in ("train", "dev", "test"):
        tsv = io.read_tsv(splits / f"{name}.tsv")
        rows = [i for i, p in enumerate(rec["part"]) if p == name]
        assert [int(rec["row"][i]) for i in rows] == list(range(len(tsv.sentences)))
        for i, sentence, label in zip(rows, tsv.sentences, tsv.labels, strict=True):
            assert rec["label"][i] == str(label) and rec["site"][i] == "20"  # cropped to 20 nt each side
            seq = kmer2seq(sentence)
            if rec["id"][i] == "plain1":
                assert rec["chrom"][i] == rec["blocks"][i] == ""
                continue
            w = by_id[rec["id"][i]]
            assert seq == g.seq(w)[SITE - 20 : SITE + 21]
            written = [tuple(map(int, b.split("-"))) for b in rec["blocks"][i].split(",")]
            where = positions(written, w["strand"])
            assert where == positions(w["blocks"], w["strand"])[SITE - 20 : SITE + 21]
            bases = "".join(g.chroms[w["chrom"]][p] for p in where)
            assert seq == (bases if w["strand"] == "+" else bases.translate(COMP))  # base for base
            assert (rec["chrom"][i], rec["strand"][i], rec["transcript"][i]) == (w["chrom"], w["strand"], f"T{w['id']}")
            assert int(rec["pos"][i]) == positions(w["blocks"], w["strand"])[SITE] + 1


def test_records_tsv_of_folds(job, tmp_path):
    import get_input

    out = tmp_path / "cv"
    assert get_input.main(["--kmer", "3", "--extend_len", "30", "--task", "finetune", "--n_folds", "3", "--data_dir",
                           str(job["base"] / "data"), "--save_dir", str(out)]) == 0
    rec = _read(out / "records.tsv")
    parts = {p for p in rec["part"]}
    assert parts == {f"fold_{i}/{n}" for i in range(3) for n in ("train", "dev")}
    for part in parts:
        n = len(io.read_tsv(out / f"{part}.tsv").sentences)
        assert sorted(int(r) for r, p in zip(rec["row"], rec["part"], strict=True) if p == part) == list(range(n))
    dev_ids = [i for i, p in zip(rec["id"], rec["part"], strict=True) if p.endswith("/dev")]
    assert sorted(dev_ids) == sorted(set(rec["id"]))  # every record is in one fold's dev set
    assert {s for s in rec["site"]} == {str(SITE)}  # whole windows
    got = io.part_records(out / "fold_1" / "dev.tsv", len(io.read_tsv(out / "fold_1" / "dev.tsv").sentences))
    assert got.ids == [i for i, p in zip(rec["id"], rec["part"], strict=True) if p == "fold_1/dev"]


# ---------------------------------------------------------------------------- prediction
def _bed(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()]


def _check_bed(bed: list[list[str]], table: dict[str, list[str]], probs: np.ndarray, by_id: dict) -> None:
    """BED6 sorted by chrom then start; every record with coordinates once, score = round(P x 1000)."""
    assert [(r[0], int(r[1])) for r in bed] == sorted((r[0], int(r[1])) for r in bed)
    p_of = dict(zip(table["id"], probs, strict=True))
    assert sorted(r[3] for r in bed) == sorted(i for i in table["id"] if i in by_id)
    for chrom, start, end, name, score, strand in bed:
        w = by_id[name]
        site = positions(w["blocks"], w["strand"])[SITE]
        assert (chrom, int(start), int(end), strand) == (w["chrom"], site, site + 1, w["strand"])
        assert int(score) == round(float(p_of[name]) * 1000)


def test_prediction_of_a_split_names_its_records(job, tmp_path):
    import run_predict_degradation

    base, by_id = job["base"], job["by_id"]
    bare = tmp_path / "bare"
    shutil.copytree(base / "data_splits", bare)
    (bare / "records.tsv").unlink()
    for data, out in ((base / "data_splits", tmp_path / "p"), (bare, tmp_path / "bare_p")):
        run_predict_degradation.main(["--data_dir", str(data), "--output_dir", str(base / "model"), "--predict_dir",
                                      str(out), *PRED])
    assert (tmp_path / "p" / "pred_results.npy").read_bytes() == (tmp_path / "bare_p" / "pred_results.npy").read_bytes()
    table = _read(tmp_path / "p" / "predictions.tsv")
    assert list(table) == ["row", "id", "chrom", "pos", "strand", "transcript", "probability", "predicted_label",
                           "true_label"]
    assert list(_read(tmp_path / "bare_p" / "predictions.tsv")) == ["row", "probability", "predicted_label",
                                                                     "true_label"]
    rec = _read(base / "data_splits" / "records.tsv")
    assert table["id"] == [i for i, p in zip(rec["id"], rec["part"], strict=True) if p == "test"]
    probs = np.load(tmp_path / "p" / "pred_results.npy")
    _check_bed(_bed(tmp_path / "p" / "predictions.bed"), table, probs, by_id)
    assert not (tmp_path / "bare_p" / "predictions.bed").exists()


def _pred_fasta(job, out: Path, *extra: str) -> None:
    import run_predict_degradation

    run_predict_degradation.main(["--output_dir", str(job["base"] / "model"), "--predict_fasta",
                                  str(job["base"] / "data" / "neg.fa"), "--predict_dir", str(out), "--chunk_records",
                                  "3", *PRED, *extra])


def test_prediction_of_a_fasta_with_coordinates_and_its_shards(job, tmp_path):
    _pred_fasta(job, tmp_path / "whole")
    table = _read(tmp_path / "whole" / "predictions.tsv")
    assert list(table) == ["id", "chrom", "pos", "strand", "transcript", "probability", "predicted_label"]
    assert table["id"][-1] == "plain1" and table["chrom"][-1] == table["transcript"][-1] == ""
    probs = np.load(tmp_path / "whole" / "pred_results.npy")
    bed = _bed(tmp_path / "whole" / "predictions.bed")
    assert len(bed) == len(table["id"]) - 1  # plain1 has no coordinates
    _check_bed(bed, table, probs, job["by_id"])
    for i in range(3):  # 13 records in chunks of 3: 5 chunks over 3 shards
        _pred_fasta(job, tmp_path / f"s{i}", "--shard", str(i), "--num_shards", "3")
        assert not (tmp_path / f"s{i}" / "predictions.bed").exists()  # the merge writes it
    import merge_shards

    merge_shards.main(["--output_dir", str(tmp_path / "m"), *(str(tmp_path / f"s{i}") for i in (2, 0, 1))])
    for name in ("pred_results.npy", "predictions.tsv", "predictions.bed"):
        assert (tmp_path / "m" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name


# ---------------------------------------------------------------------------- scores
VIS = {"attn": [], "attr": ["--n_steps", "4", "--n_baselines", "1", "--batch_size", "4"],
       "ism": ["--ism_batch_size", "256"]}


def _visualize(job, out: Path, task: str, *data: str) -> None:
    import visualize_all

    visualize_all.main(["--model_path", str(job["base"] / "model"), "--vis_task", task, "--max_seq_length", "64",
                        "--output_dir", str(out), "--no_cuda", *VIS[task], *data])


def test_scores_of_a_split_carry_ids(job, tmp_path):
    base = job["base"]
    split = ["--data_dir", str(base / "data_splits"), "--data_name", "test"]
    rec = _read(base / "data_splits" / "records.tsv")
    ids = [i for i, p in zip(rec["id"], rec["part"], strict=True) if p == "test"]
    _visualize(job, tmp_path / "attr", "attr", *split)
    table = _read(tmp_path / "attr" / "attributions_test.ids.tsv")
    assert list(table) == ["row", "id", "label", "site", "chrom", "pos", "strand", "transcript", "blocks"]
    assert table["id"] == ids and table["row"] == [str(i) for i in range(len(ids))] and set(table["site"]) == {"20"}
    qc = _read(tmp_path / "attr" / "attributions_test_qc.tsv")
    assert list(qc)[:3] == ["row", "id", "label"] and qc["id"] == ids
    assert (tmp_path / "attr" / "attributions_signed_test.bedgraph").stat().st_size > 0
    _visualize(job, tmp_path / "attn", "attn", *split, "--no_plot")
    assert _read(tmp_path / "attn" / "atten_test.ids.tsv")["id"] == ids
    # without records.tsv the ids are the row numbers, and no coordinates
    shutil.copytree(base / "plain_splits", tmp_path / "plain")
    (tmp_path / "plain" / "records.tsv").unlink()
    _visualize(job, tmp_path / "bare", "attn", "--data_dir", str(tmp_path / "plain"), "--data_name", "test",
               "--no_plot")
    bare = _read(tmp_path / "bare" / "atten_test.ids.tsv")
    assert list(bare) == ["row", "id", "label", "site"] and bare["id"] == bare["row"]


def test_fasta_scores_unlabelled_and_refused_by_motifs(job, tmp_path, capsys):
    fasta = job["base"] / "data" / "neg.fa"  # no label= words
    _visualize(job, tmp_path / "v", "attr", "--fasta", str(fasta), "--data_name", "cands")
    out = tmp_path / "v"
    meta = json.loads((out / "attributions_cands.npy.json").read_text())
    assert "label 1 (degraded)" in meta["labels"] and meta["sources"][0]["fasta"] == "neg.fa"
    table = _read(out / "attributions_cands.ids.tsv")
    assert table["id"][-1] == "plain1" and set(table["label"]) == {""} and set(table["site"]) == {str(SITE)}
    assert set(_read(out / "attributions_cands_qc.tsv")["label"]) == {"1"}  # the target
    assert not list(out.glob("*.png"))  # no labels: no heatmaps or profiles
    import find_motifs

    with pytest.raises(SystemExit) as exc:
        find_motifs.main(["--fasta", str(fasta), "--npy_dir", str(out), "--data_name", "cands", "--vis_task", "attr",
                          "--save_file_dir", str(tmp_path / "motifs")])
    assert exc.value.code == 2 and "no label=1 / label=0 in its headers" in capsys.readouterr().err
    assert not (tmp_path / "motifs").exists()


def test_fasta_scores_of_shards_merge_like_one_run(job, tmp_path):
    fasta = job["genome"].fasta(tmp_path / "lab.fa", job["genome"].windows[:10], label=True)
    for task in ("attr", "ism"):
        _visualize(job, tmp_path / task / "whole", task, "--fasta", str(fasta), "--no_plot")
        for i in range(2):
            _visualize(job, tmp_path / task / f"s{i}", task, "--fasta", str(fasta), "--no_plot", "--shard", str(i),
                       "--num_shards", "2")
        assert not list((tmp_path / task / "s0").glob("*.bedgraph"))
        import merge_shards

        merge_shards.main(["--output_dir", str(tmp_path / task / "m"), str(tmp_path / task / "s1"),
                           str(tmp_path / task / "s0")])
        whole = sorted(p.name for p in (tmp_path / task / "whole").iterdir() if p.name != "visualize_args.json")
        assert whole == sorted(p.name for p in (tmp_path / task / "m").iterdir() if p.name != "merge_args.json")
        for name in whole:
            assert (tmp_path / task / "m" / name).read_bytes() == (tmp_path / task / "whole" / name).read_bytes(), name
    ids = _read(tmp_path / "ism" / "m" / "ism_lab.ids.tsv")
    assert ids["id"] == [w["id"] for w in job["genome"].windows[:10]]


def _peaks_at(seqs: list[str], width: int) -> np.ndarray:
    """Scores of 1 on every planted motif, 0 elsewhere: the motif search finds it wherever it is."""
    scores = np.zeros((len(seqs), width))
    for i, seq in enumerate(seqs):
        at = seq.find(MOTIF)
        if at >= 0:
            scores[i, at : at + len(MOTIF)] = 1.0
    return scores


def test_motif_instances_name_their_records(job, tmp_path):
    import find_motifs

    g = job["genome"]
    labelled = g.fasta(tmp_path / "lab.fa", g.windows, label=True)
    io.save_npy(tmp_path / "v" / "atten_lab.npy", _peaks_at([g.seq(w) for w in g.windows], W + 3))
    args = ["--vis_task", "attn", "--min_n_motif", "2", "--min_len", "4", "--window_size", "10"]
    find_motifs.main(["--fasta", str(labelled), "--npy_dir", str(tmp_path / "v"), "--save_file_dir",
                      str(tmp_path / "m"), *args])
    table = _read(tmp_path / "m" / "motifs_pos.tsv")
    assert list(table)[-2:] == ["positions", "ids"] and table["motif"]
    rec = json.loads((tmp_path / "m" / "motifs_pos.json").read_text())["motifs"]
    for motif, ids, where in zip(table["motif"], table["ids"], table["positions"], strict=True):
        assert ids.split(",") == rec[motif]["ids"] and len(ids.split(",")) == len(where.split(","))
        assert sorted(rec[motif]["ids"]) == sorted(w["id"] for w in g.windows if w["label"] == 1)
        for k, (rid, (s, _), p) in enumerate(zip(rec[motif]["ids"], rec[motif]["regions"], rec[motif]["positions"],
                                                  strict=True)):
            w, (a, b) = job["by_id"][rid], rec[motif]["windows"][k]
            assert p == s - SITE and g.seq(w)[a:b] == rec[motif]["seqs"][k]
    # a split: the instances name records.tsv's ids
    split = job["base"] / "data_splits"
    seqs = [kmer2seq(s) for s in io.read_tsv(split / "train.tsv").sentences]
    io.save_npy(tmp_path / "sv" / "atten_train.npy", _peaks_at(seqs, 41))
    find_motifs.main(["--data_dir", str(split), "--npy_dir", str(tmp_path / "sv"), "--data_name", "train",
                      "--save_file_dir", str(tmp_path / "sm"), "--site_index", "20", *args])
    rec = json.loads((tmp_path / "sm" / "motifs_pos.json").read_text())["motifs"]
    ids = [i for m in rec.values() for i in m["ids"]]
    assert ids and all(job["by_id"][i]["label"] == 1 for i in ids)
    for m in rec.values():  # each instance lies in the record its id names
        assert all(m["seqs"][k] in job["genome"].seq(job["by_id"][i]) for k, i in enumerate(m["ids"]))


# ---------------------------------------------------------------------------- bedGraph, base for base
def test_bedgraph_maps_each_value_to_its_genome_base(tmp_path):
    """Windows across a junction on '+' and '-' (two overlapping), one contiguous, one without coordinates:
    each window's value at a base is a function of that base's genome position and of the window; the
    bedGraph holds every covered base once, sorted, with the mean of the windows covering it."""
    from m6abert.commands.visualize import track_writer

    g = Genome(seed=5, length=1000)
    g.add("a", "chr2", ((50, 80), (150, 181)), "+", 1)
    g.add("b", "chr2", ((160, 200), (60, 81)), "-", 0)  # overlaps a on both exons
    g.add("c", "chr10", ((300, 361),), "+", 1, with_blocks=False)
    g.add("d", "chr10", ((500, 530), (600, 631)), "-", 1)
    fasta = g.fasta(tmp_path / "w.fa", g.windows, label=True)
    (tmp_path / "w.fa").write_text(fasta.read_text() + f">free label=0\n{'C' * SITE}A{'G' * (W - SITE - 1)}\n")
    from m6abert.data import read_fasta_rows

    rows = read_fasta_rows(tmp_path / "w.fa")
    values = np.full((len(rows.ids), W + 5), np.nan)  # wider than the windows, as score arrays are
    expected: dict[tuple[str, int], list[float]] = {}
    for i, w in enumerate(g.windows):
        for j, p in enumerate(positions(w["blocks"], w["strand"])):
            v = p / 7 + i
            values[i, j] = v if w["label"] == 1 else -v  # oriented: a label-0 row is sign-flipped back
            expected.setdefault((w["chrom"], p), []).append(v)
    values[-1, :W] = 99.0  # the window without coordinates is left out
    spec = {"file": "t.bedgraph", "values": "x.npy", "oriented": True, "range": None}
    track_writer(spec, values, rows)(tmp_path / "t.bedgraph")
    lines = [line.split("\t") for line in (tmp_path / "t.bedgraph").read_text().splitlines()]
    got = [(c, int(s), int(e), float(v)) for c, s, e, v in lines]
    assert [(c, s) for c, s, _, _ in got] == sorted(expected)  # one line per base, sorted by chrom, start
    for chrom, start, end, value in got:
        assert end == start + 1 and value == pytest.approx(np.mean(expected[(chrom, start)]), rel=1e-5)
    # the overlap of a and b is averaged; each window's bases are the genome's (reverse complement on '-')
    assert sum(len(v) == 2 for v in expected.values()) == 20 + 21
    for w, seq in zip(g.windows, rows.seqs[:-1], strict=True):
        bases = "".join(g.chroms[w["chrom"]][p] for p in positions(w["blocks"], w["strand"]))
        assert seq == (bases if w["strand"] == "+" else bases.translate(COMP))


def test_ism_bedgraph_of_a_fasta_end_to_end(job, tmp_path):
    """visualize_all.py --fasta --vis_task ism: the summary's bedGraph holds, at each genome base, the mean ISM
    summary of the windows covering it (mapped by the test's own code)."""
    g = job["genome"]
    fasta = g.fasta(tmp_path / "w.fa", g.windows[:4])
    _visualize(job, tmp_path / "v", "ism", "--fasta", str(fasta), "--plot_ids", "1")
    summary = np.load(tmp_path / "v" / "ism_summary_w.npy")
    expected: dict[tuple[str, int], list[float]] = {}
    for i, w in enumerate(g.windows[:4]):
        for j, p in enumerate(positions(w["blocks"], w["strand"])):
            expected.setdefault((w["chrom"], p), []).append(summary[i, j])
    lines = [line.split("\t") for line in (tmp_path / "v" / "ism_summary_w.bedgraph").read_text().splitlines()]
    assert [(c, int(s)) for c, s, _, _ in lines] == sorted(expected)
    for c, s, _, v in lines:
        assert float(v) == pytest.approx(np.mean(expected[(c, int(s))]), rel=1e-5, abs=1e-9)
    assert (tmp_path / "v" / "ism_w_map_1.png").exists()
    meta = json.loads((tmp_path / "v" / "ism_summary_w.npy.json").read_text())
    assert meta["site_index"] == SITE and meta["bedgraph"]["file"] == "ism_summary_w.bedgraph"


def test_fasta_records_with_different_sites_are_aligned(job, tmp_path, capsys):
    """Sites at different indices: figures align the rows on them, profile_peak too; --ism_window is refused."""
    g = job["genome"]
    text = g.fasta(tmp_path / "x.fa", g.windows[:6], label=True).read_text().splitlines()
    text[1] = "GGG" + text[1]  # p0's site moves to index 33
    text[0] = " ".join(w for w in text[0].replace(f"site={SITE}", f"site={SITE + 3}").split()
                       if not w.startswith("blocks="))  # contiguous around its site
    (tmp_path / "x.fa").write_text("\n".join(text) + "\n")
    _visualize(job, tmp_path / "v", "attn", "--fasta", str(tmp_path / "x.fa"))
    assert (tmp_path / "v" / "atten_x_heatmap.png").exists()
    assert _read(tmp_path / "v" / "atten_x.ids.tsv")["site"][:2] == [str(SITE + 3), str(SITE)]
    from m6abert.commands.motifs import profile_peak_of_files

    assert isinstance(profile_peak_of_files(None, tmp_path / "v", "x", "attn", fasta=tmp_path / "x.fa"), int)
    import visualize_all

    with pytest.raises(SystemExit) as exc:
        visualize_all.main(["--model_path", str(job["base"] / "model"), "--vis_task", "ism", "--fasta",
                            str(tmp_path / "x.fa"), "--ism_window", "-5:5", "--output_dir", str(tmp_path / "w"),
                            "--max_seq_length", "64"])
    assert exc.value.code == 2 and "sites lie at 2 different indices" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()
