"""Where the m6A site is, bounded memory, and the escapes that are not errors (issue 18, section 6).

One site rule (:mod:`m6abert.sites`) for get_input.py's crop and ``--pos_relative_to_site``: a
window cut at its 5' end has its site at ``len - 251`` for both, a ``site=N`` header overrides it for
both, and both runs record where they placed each site. A record far longer than the model
takes is refused from its length; variants are scored a batch at a time; ``encode_many`` builds the
same ids as the k-mer-by-k-mer definition. Tangermeme's refusal of identical shuffles of a
low-complexity row no longer stops the default attribution, and ``predictions.tsv`` follows the
umask. Bad input is in tests/test_errors_escapes.py.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from toy import random_seq, tiny_classifier, write_split_dir

from m6abert import io, kmer, sites
from m6abert.io.sequences import RecordTooLong

ROOT = Path(__file__).resolve().parents[1]


def seq_with(length: int, motifs: dict[int, str], seed: int = 0) -> str:
    """A random sequence without ``AC`` (G/T and single A/C), with ``motifs`` written at their indices."""
    rng = np.random.RandomState(seed)
    seq = list(rng.choice(list("GT"), size=length))
    for i, m in motifs.items():
        seq[i : i + len(m)] = m
    return "".join(seq)


# ---------------------------------------------------------------------------- the rule
@pytest.mark.parametrize("length, motifs, declared, expected", [
    (501, {}, None, (250, "window")),  # a whole window: 250 whatever its letters
    (400, {250: "AC"}, None, (250, "3' cut")),
    (400, {149: "AC"}, None, (149, "5' cut")),  # len - 251
    (400, {250: "AC", 149: "AC"}, None, (250, "undecided")),  # AC at both: read as cut at the 3' end
    (400, {}, None, (250, "undecided")),  # AC at neither
    (700, {250: "AC"}, None, (349, "centre")),  # longer than a window: its centre, not a stray AC at 250
    (250, {}, None, (None, "none")),  # cut at both ends
    (400, {149: "AC"}, 30, (30, "header")),  # a header's site=N wins
])
def test_site_rule(length, motifs, declared, expected):
    assert tuple(sites.site_of(seq_with(length, motifs), declared)) == expected


def test_site_rule_of_a_cropped_window():
    """With ``flank`` (a window get_input.py cropped to ``--extend_len``) the same rule finds the site again."""
    seq = seq_with(400, {149: "AC"})  # cut at its 5' end: the site at 149
    crop = sites.crop(seq, sites.site_of(seq), 100)
    assert crop == seq[49:250] and sites.site_of(crop, flank=100) == (100, "window")
    short = sites.crop(seq, sites.site_of(seq), 200)  # only 149 nt upstream are there
    assert sites.site_of(short, flank=200) == (149, "5' cut")


def test_declared_site_must_name_an_a():
    seq = seq_with(501, {250: "AC"})
    assert sites.check_declared("r", seq, 250, "x.fa") == 250
    with pytest.raises(Exception, match=r"x\.fa: record r: site=251 in its header is 'C', not the m6A A"):
        sites.check_declared("r", seq, 251, "x.fa")


def test_site_rule_on_the_papers_windows(real_data_dir):
    """5,746 whole windows; of the 341 shorter, 82 cut at the 5' end are placed at len - 251."""
    counts = {}
    for name in ("pos.fa", "neg.fa"):
        for how, n in sites.count(sites.site_of(r.seq) for r in io.read_fasta(real_data_dir / name)).items():
            counts[how] = counts.get(how, 0) + n
    assert counts == {"window": 5746, "3' cut": 231, "5' cut": 82, "undecided": 26, "none": 2}


def test_header_sites_are_read(tmp_path):
    path = tmp_path / "x.fa"
    path.write_text(">a site=12 chr1:+\nACGT\n>b note\nGG\n>c SITE=0\nA\n")
    found: dict[str, int] = {}
    assert io.read_fasta(path, found) == [("a", "ACGT"), ("b", "GG"), ("c", "A")]
    assert found == {"a": 12, "c": 0}
    chunked: dict[str, int] = {}
    assert [r for c in io.iter_fasta_chunks(path, 2, sites=chunked) for r in c] == io.read_fasta(path)
    assert chunked == found


# ---------------------------------------------------------------------------- get_input.py and the variants agree
def fasta_pair(data: Path, special: dict[str, tuple[str, str]]) -> None:
    """pos.fa (12 records) and neg.fa (20) of whole windows; ``special`` replaces records: id -> (header, seq)."""
    rng = np.random.RandomState(5)
    for name, prefix, n in (("pos.fa", "p", 12), ("neg.fa", "n", 20)):
        recs = {f"{prefix}{i}": ("", seq_with(501, {250: "AC"}, seed=int(rng.randint(1 << 30)))) for i in range(1, n + 1)}
        recs.update({rid: v for rid, v in special.items() if rid in recs})
        data.mkdir(parents=True, exist_ok=True)
        (data / name).write_text("".join(f">{rid}{h}\n{s}\n" for rid, (h, s) in recs.items()))


def rows_of(save: Path, k: int = 3) -> set[str]:
    return {kmer.kmer2seq(s) for name in ("train", "dev") for s in io.read_tsv(save / f"{name}.tsv").sentences}


def predict_variant(tmp: Path, fasta: Path, row: str) -> tuple[list[dict], dict]:
    """``--pos_relative_to_site`` effects of one variants row, and predict_args.json."""
    import run_predict_degradation  # noqa: F401 (the script the README names)
    from m6abert.cli import predict as predict_cli

    if not (tmp / "model").exists():
        tiny_classifier(tmp / "model")
    io.write_text(tmp / "variants.tsv", row + "\n")
    effects = predict_cli.run(["--data_dir", str(tmp), "--output_dir", str(tmp / "model"), "--predict_dir",
                               str(tmp / "pred"), "--max_seq_length", "512", "--predict_fasta", str(fasta),
                               "--variants", str(tmp / "variants.tsv"), "--pos_relative_to_site"])
    return effects, json.loads((tmp / "pred" / "predict_args.json").read_text())


def test_get_input_and_pos_relative_to_site_place_a_5_prime_cut_window_alike(tmp_path):
    """A 400-nt window cut at its 5' end (site at 149): get_input.py crops around 149, and
    ``--pos_relative_to_site`` position 0 is the same A; both runs record it."""
    import get_input

    cut5 = seq_with(400, {149: "AC"}, seed=7)
    fasta_pair(tmp_path / "data", {"p3": ("", cut5)})
    get_input.main(["--kmer", "3", "--extend_len", "10", "--task", "finetune", "--data_dir", str(tmp_path / "data"),
                    "--save_dir", str(tmp_path / "save")])
    assert cut5[139:160] in rows_of(tmp_path / "save")  # site ± 10, the A at the middle
    record = json.loads((tmp_path / "save" / "get_input_args.json").read_text())["sites"]
    assert record["counts"] == {"window": 23, "5' cut": 1} and record["site_index"] == {}  # 12 + 12 records
    effects, args = predict_variant(tmp_path, tmp_path / "data" / "pos.fa", "p3\t0\tA\tG")
    assert effects[0]["pos"] == 0 and args["sites"] == {"p3": [149, "5' cut"]}
    effects, _ = predict_variant(tmp_path, tmp_path / "data" / "pos.fa", "p3\t1\tC\tT")  # the C after it
    assert effects[0]["ref"] == "C"


def test_a_header_site_is_used_by_both_and_recorded(tmp_path):
    """``site=100`` in a 501-nt window's header: the crop and relative position 0 both use index 100."""
    import get_input

    seq = seq_with(501, {100: "AG", 250: "AC"}, seed=3)
    fasta_pair(tmp_path / "data", {"p4": (" site=100", seq)})
    get_input.main(["--kmer", "3", "--extend_len", "20", "--task", "finetune", "--data_dir", str(tmp_path / "data"),
                    "--save_dir", str(tmp_path / "save")])
    assert seq[80:121] in rows_of(tmp_path / "save")
    record = json.loads((tmp_path / "save" / "get_input_args.json").read_text())["sites"]
    assert record["counts"] == {"window": 23, "header": 1}
    effects, args = predict_variant(tmp_path, tmp_path / "data" / "pos.fa", "p4\t0\tA\tC")
    assert args["sites"] == {"p4": [100, "header"]} and effects[0]["ref"] == "A"


def test_the_site_record_of_the_papers_command(real_data_dir, tmp_path):
    """get_input_args.json of the paper's command: how the 970 records' sites were placed, and the 17
    whose site is not at index 250 of their row (all cut at their 5' end)."""
    import get_input

    get_input.main(["--do_val", "--kmer", "3", "--extend_len", "250", "--task", "finetune",
                    "--data_dir", str(real_data_dir), "--save_dir", str(tmp_path / "out")])
    record = json.loads((tmp_path / "out" / "get_input_args.json").read_text())["sites"]
    assert record["counts"] == {"window": 899, "3' cut": 48, "5' cut": 17, "undecided": 6}
    seqs = {r.id: r.seq for name in ("pos.fa", "neg.fa") for r in io.read_fasta(real_data_dir / name)}
    assert len(record["site_index"]) == 17
    assert all(i == len(seqs[rid]) - 251 and seqs[rid][i:i + 2] == "AC" for rid, i in record["site_index"].items())


def test_longer_windows_are_cropped_around_their_centre_with_a_count(tmp_path, caplog):
    import get_input

    long = seq_with(701, {250: "AC", 350: "AC"}, seed=2)  # a stray AC at 250 no longer decides
    fasta_pair(tmp_path / "data", {"p1": ("", long), "p2": ("", long[::-1])})
    get_input.main(["--kmer", "3", "--extend_len", "250", "--task", "finetune", "--data_dir", str(tmp_path / "data"),
                    "--save_dir", str(tmp_path / "save")])
    rows = rows_of(tmp_path / "save")
    assert long[100:601] in rows and long[::-1][100:601] in rows
    assert "2 records longer than a 501-nt window cropped to their centre ± 250 nt" in caplog.text


# ---------------------------------------------------------------------------- memory
def test_a_record_too_long_is_measured_not_kept(tmp_path):
    path = tmp_path / "big.fa"
    path.write_text(">a\nACGT\n>b x\n" + "ACGTACGTAC\n" * 100_000 + ">c\nAC\n")
    with pytest.raises(RecordTooLong) as exc:
        list(io.iter_fasta_chunks(path, max_length=5000))
    assert (exc.value.record_id, exc.value.number, exc.value.length) == ("b", 2, 1_000_000)


def test_a_long_sequence_is_refused_before_it_is_k_merised(monkeypatch):
    from m6abert import data

    monkeypatch.setattr(data.kmer, "encode_many", lambda *a: pytest.fail("k-merised"))
    with pytest.raises(Exception, match=r"^x\.fa: row 2: 1000000 tokens with \[CLS\]/\[SEP\] exceed --max_seq_length 512$"):
        data.dataset_from_seqs(["ACGTACGT", "A" * 1_000_000], 3, max_seq_length=512, path="x.fa")


def test_encode_many_equals_the_definition():
    """The vectorised encoder against a k-mer-by-k-mer vocabulary lookup (any letters, empty and short rows)."""
    rng = np.random.RandomState(0)
    letters = list("ACGTacgtUuNX-\u00e9\u2211")
    for _ in range(200):
        seqs = ["".join(rng.choice(letters, size=rng.randint(0, 14))) for _ in range(rng.randint(1, 6))]
        for k in kmer.KMER_SIZES:
            table = {t: i for i, t in enumerate(kmer.vocab(k))}
            want = [table.get(kmer.normalise(s[i:i + k]), kmer.UNK_ID) for s in seqs for i in range(len(s) - k + 1)]
            enc = kmer.encode_many(seqs, k)
            assert enc.ids.tolist() == want and enc.n_unknown == want.count(kmer.UNK_ID)
            assert np.diff(enc.offsets).tolist() == [max(len(s) - k + 1, 0) for s in seqs]


def test_variants_are_scored_a_batch_at_a_time():
    """chunk_effects never scores more than ``per_batch`` mutants at once, and gives what one batch gives."""
    from m6abert.variants import chunk_effects

    rng = np.random.RandomState(1)
    recs = [io.FastaRecord(f"r{i}", random_seq(rng, 30)) for i in range(3)]
    alt = {"A": "G", "C": "T", "G": "A", "T": "C"}
    table = [(n, io.Variant(r.id, p, r.seq[p - 1], alt[r.seq[p - 1]], n + 1))
             for n, (r, p) in enumerate((r, p) for r in recs for p in range(1, 31))]
    sizes = []

    def score(seqs, names):
        sizes.append(len(seqs))
        return np.array([[s.count("G") / 10, s.count("A") / 7] for s in seqs])

    ref = score([r.seq for r in recs], [r.id for r in recs])
    sizes.clear()
    batched = chunk_effects(score, recs, ref, table, per_batch=7)
    assert max(sizes) <= 7 and sum(sizes) == 90
    assert batched == chunk_effects(score, recs, ref, table, per_batch=1000)


def peak_rss_mib(code: str) -> tuple[int, float]:
    """Exit status and peak resident memory (MiB) of ``python -c code`` run from the repository root, as
    the child itself reports it at exit (RUSAGE_CHILDREN would be the largest of ALL earlier children)."""
    report = ("import atexit, resource, sys; atexit.register(lambda: print('PEAK_KIB', "
              "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)); ")
    proc = subprocess.run([sys.executable, "-c", report + code], cwd=ROOT, capture_output=True, text=True, timeout=900)
    peak = [ln.split()[1] for ln in proc.stderr.splitlines() if ln.startswith("PEAK_KIB ")]
    assert peak, proc.stderr[-2000:]
    return proc.returncode, int(peak[-1]) / 1024


@pytest.mark.slow
def test_a_200_mb_record_is_refused_in_bounded_memory(tmp_path):
    """Refused from its length while it is read: under 1 GiB (the k-merised record took 12 GB before)."""
    tiny_classifier(tmp_path / "model")
    rng, letters = np.random.RandomState(0), np.frombuffer(b"ACGT", np.uint8)
    with open(tmp_path / "big.fa", "wb") as fh:  # 6 MB at a time: this process stays small (a child's peak
        fh.write(b">r1\nACGTACGTAC\n>big\n")  # can count its parent's pages)
        for _ in range(200_000_000 // 6_000_000 + 1):
            lines = letters[rng.randint(0, 4, size=(100_000, 60), dtype=np.uint8)]  # 100,000 lines of 60 nt
            fh.write(np.hstack([lines, np.full((100_000, 1), ord("\n"), np.uint8)]).tobytes())
    code = ("import sys; sys.argv[0] = 'run_predict_degradation.py'; from m6abert.cli import predict; "
            f"predict.main(['--data_dir', '.', '--output_dir', {str(tmp_path / 'model')!r}, '--predict_dir', "
            f"{str(tmp_path / 'p')!r}, '--predict_fasta', {str(tmp_path / 'big.fa')!r}])")
    status, peak = peak_rss_mib(code)
    assert status == 2 and peak < 1024, peak
    assert not (tmp_path / "p").exists()


# ---------------------------------------------------------------------------- escapes that are not errors
def test_predictions_tsv_follows_the_umask(tmp_path):
    import run_predict_degradation

    tiny_classifier(tmp_path / "model")
    (tmp_path / "in.fa").write_text(">r1\nACGTACGTACGT\n>r2\nGGGCCCAAATTT\n")
    old = os.umask(0o022)
    try:
        run_predict_degradation.main(["--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "model"),
                                      "--predict_dir", str(tmp_path / "p"), "--predict_fasta", str(tmp_path / "in.fa")])
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "p").iterdir()}
    assert modes["predictions.tsv"] == 0o644 and modes["pred_results.npy"] == 0o644


def test_a_log_that_is_not_utf8_is_one_line(tmp_path):
    """eval_results.txt edited into Latin-1: appending to it is refused with one line, the file kept."""
    from m6abert.utils import InputError

    log = tmp_path / "eval_results.txt"
    log.write_bytes("run caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"eval_results\.txt: not UTF-8 text at byte 7; cannot append a line to it"):
        io.append_line(log, "next")
    assert log.read_bytes() == "run caf\xe9\n".encode("latin-1")


def test_low_complexity_rows_under_the_default_attribution(tmp_path):
    """Poly-A and ACAC... have one dinucleotide shuffle, themselves (tangermeme refused to draw it
    twice): the run ends, their references are the rows themselves (F(baseline) = F(input), gap 0),
    so the QC table flags them (relative error inf); every other row keeps its own references."""
    import visualize_all

    data = write_split_dir(tmp_path / "data", n=16)
    tiny_classifier(tmp_path / "model")
    tsv = io.read_tsv(data / "dev.tsv")
    sentences = [kmer.seq2kmer("A" * 61, 3), kmer.seq2kmer("AC" * 30, 3), *tsv.sentences[2:]]
    io.write_tsv(data / "dev.tsv", sentences, tsv.labels)
    visualize_all.main(["--model_path", str(tmp_path / "model"), "--data_dir", str(data), "--data_name", "dev",
                        "--vis_task", "attr", "--output_dir", str(tmp_path / "vis"), "--max_seq_length", "64",
                        "--no_plot", "--n_steps", "4"])
    qc = io.read_columns(tmp_path / "vis" / "attributions_dev_qc.tsv")
    f_in, f_base = np.array(qc["target_input"], float), np.array(qc["target_baseline"], float)
    assert qc["rel_error"][:2] == ["inf", "inf"] and np.array_equal(f_in[:2], f_base[:2])
    assert (np.array(qc["gap"], float)[2:] > 0).all()
