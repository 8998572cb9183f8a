"""Every installed ``m6abert-*`` console command runs a tiny job end to end and exits 0.

A console script ends with ``sys.exit(main())``: a ``main`` that returned its result dict made every
successful run exit 1 (the dict printed on stderr), which stops ``&&`` chains, ``set -e`` scripts and
SLURM ``afterok`` dependencies. Here the whole pipeline runs as one ``set -e`` bash script of the
installed commands, in the order a user chains them: windows to splits, pretraining, fine-tuning,
prediction (test.tsv, and a FASTA in two shards merged), scores (two shards merged), motifs and the
comparison table. Bad input still exits 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from toy import planted_records, write_fasta

from m6abert import io

BIN = Path(sys.executable).parent
COMMANDS = ("m6abert-get-input", "m6abert-pretrain", "m6abert-finetune", "m6abert-predict", "m6abert-visualize",
            "m6abert-motifs", "m6abert-merge", "m6abert-table", "m6abert-leakage", "m6abert-windows")
TINY = {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64,
        "max_position_embeddings": 512}

PIPELINE = r"""
set -euo pipefail
m6abert-windows --sites genome/pos.bed --genome genome/genome.fa --extend_len 50 --out raw/pos.fa
m6abert-windows --sites genome/neg.bed --genome genome/genome.fa --extend_len 50 --out raw/neg.fa
m6abert-get-input --kmer 3 --extend_len 50 --task finetune --do_val --data_dir raw --save_dir splits --seed 1
m6abert-get-input --kmer 3 --extend_len 50 --task pretrain --data_dir raw --fasta raw/neg.fa --save_dir corpus
m6abert-pretrain --tokenizer_name dna3 --config_name tiny.json --train_data_file corpus/pre/3.txt \
  --output_dir pretrained --max_steps 2 --per_gpu_train_batch_size 8 --save_steps 0 --no_cuda
m6abert-finetune --model_name_or_path pretrained --do_train --do_eval --evaluate_during_training \
  --data_dir splits --output_dir finetuned --max_steps 2 --logging_steps 1 --save_steps 1 --no_cuda
m6abert-predict --output_dir finetuned --data_dir splits --predict_dir predicted --no_cuda
for i in 0 1; do
  m6abert-predict --output_dir finetuned --predict_fasta raw/pos.fa --chunk_records 8 --shard $i --num_shards 2 \
    --predict_dir pred_shard_$i --no_cuda
  m6abert-visualize --model_path finetuned --data_dir splits --data_name test --vis_task attn --no_plot \
    --shard $i --num_shards 2 --output_dir vis_shard_$i --no_cuda
done
m6abert-merge --output_dir pred_merged pred_shard_0 pred_shard_1
m6abert-merge --output_dir vis_merged vis_shard_0 vis_shard_1
m6abert-motifs --data_dir splits --npy_dir vis_merged --data_name test --vis_task attn --save_file_dir motifs \
  --min_len 3 --min_n_motif 1 --pval_cutoff 1
m6abert-table --data_path raw --output_dir table --models gc_lr --n_folds 2 --n_bootstrap 200
m6abert-leakage --data_dir splits --output leak/leakage.json
echo PIPELINE-DONE
"""


def _installed() -> None:
    missing = [c for c in COMMANDS if not (BIN / c).exists()]
    if missing:
        pytest.skip(f"console commands not installed next to {sys.executable}: {missing} (run `make install`)")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    _installed()
    tmp = tmp_path_factory.mktemp("console")
    pos, neg = planted_records(16, 48, length=101, offset=40, seed=5)
    pos, neg = ([io.FastaRecord(r.id, r.seq[:50] + "A" + r.seq[51:]) for r in group] for group in (pos, neg))
    # the windows as sites of a genome: each record laid on chrG (the - strand for every other one), its base 50 the site
    comp, chrom = str.maketrans("ACGT", "TGCA"), ""
    for name, group in (("pos", pos), ("neg", neg)):
        bed = []
        for i, r in enumerate(group):
            strand = "+" if i % 2 == 0 else "-"
            start = len(chrom) + 20
            chrom += "C" * 20 + (r.seq if strand == "+" else r.seq.translate(comp)[::-1])
            bed.append(f"chrG\t{start + 50}\t{start + 51}\t{r.id}\t0\t{strand}\n")
        io.write_text(tmp / "genome" / f"{name}.bed", "".join(bed))
    io.write_text(tmp / "genome" / "genome.fa", f">chrG\n{chrom}\n")
    (tmp / "seqs.txt").write_text("\n".join(r.seq for r in pos))
    (tmp / "tiny.json").write_text(json.dumps(TINY))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", "-c", PIPELINE], cwd=tmp, env=env, capture_output=True, text=True, timeout=900)
    return tmp, proc


def test_the_pipeline_of_installed_commands_exits_0(pipeline):
    """One `set -euo pipefail` script of every m6abert-* command: it reaches its end and exits 0."""
    tmp, proc = pipeline
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.strip().splitlines()[-1] == "PIPELINE-DONE"
    assert "Traceback" not in proc.stderr and "{'" not in proc.stderr  # no result dict printed by sys.exit


def test_the_pipeline_wrote_each_commands_outputs(pipeline):
    tmp, proc = pipeline
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert [(r.id, r.seq) for r in io.read_fasta(tmp / "raw" / "pos.fa")] == [(f"p{i}", s) for i, s in zip(
        range(1, 17), tmp.joinpath("seqs.txt").read_text().split(), strict=True)]  # the windows are the records
    n_test = len((tmp / "splits" / "test.tsv").read_text().splitlines()) - 1
    assert np.load(tmp / "predicted" / "pred_results.npy").shape == (n_test,)
    assert (tmp / "pretrained" / "model.safetensors").exists() and (tmp / "finetuned" / "model.safetensors").exists()
    merged = (tmp / "pred_merged" / "predictions.tsv").read_text().splitlines()
    assert [ln.split("\t")[0] for ln in merged[1:]] == [f"p{i}" for i in range(1, 17)]  # every record, in input order
    assert np.load(tmp / "vis_merged" / "atten_test.npy").shape[0] == n_test
    assert (tmp / "table" / "table.md").exists() and (tmp / "motifs").is_dir()
    # the leakage command agrees with the report get_input wrote beside the split
    mine, gets = (json.loads(p.read_text()) for p in (tmp / "leak" / "leakage.json", tmp / "splits" / "leakage.json"))
    assert mine["cross_part_pairs"] == gets["cross_part_pairs"] and mine["n_windows"] == gets["n_windows"]


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_exits_2_on_bad_input(command, tmp_path):
    """Bad input (a flag value out of range; for the merge, a shard folder that is not there): one line on
    stderr, exit 2 (not 1, not a traceback), nothing written."""
    _installed()
    bad = {"m6abert-get-input": ["--kmer", "9", "--extend_len", "250", "--task", "finetune", "--data_dir", ".", "--save_dir", "o"],
           "m6abert-pretrain": ["--output_dir", "o", "--learning_rate", "-1", "--train_data_file", "x"],
           "m6abert-finetune": ["--data_dir", ".", "--output_dir", "o", "--learning_rate", "-1"],
           "m6abert-predict": ["--output_dir", "m", "--data_dir", ".", "--per_gpu_pred_batch_size", "0"],
           "m6abert-visualize": ["--model_path", "m", "--data_dir", ".", "--data_name", "dev", "--vis_task", "attr",
                                 "--n_steps", "0"],
           "m6abert-motifs": ["--data_dir", ".", "--npy_dir", ".", "--data_name", "dev", "--vis_task", "attn",
                              "--window_size", "0"],
           "m6abert-merge": ["--output_dir", "o", "missing_shard"],
           "m6abert-table": ["--data_path", ".", "--output_dir", "o", "--n_folds", "1"],
           "m6abert-leakage": ["--data_dir", ".", "--group_overlap", "0", "--output", "o/leakage.json"],
           "m6abert-windows": ["--sites", "sites.bed", "--genome", "genome.fa", "--out", "o/w.fa", "--extend_len", "0"]
           }[command]
    proc = subprocess.run([str(BIN / command), *bad], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and proc.stderr.strip().splitlines()[-1].startswith(f"{command}: error: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_shims_exit_0_after_a_good_run(tmp_path):
    """The original script names end the same way: `python get_input.py ...` returns 0 after its work."""
    pos, neg = planted_records(8, 24, length=61, seed=2)
    write_fasta(tmp_path / "raw" / "pos.fa", pos)
    write_fasta(tmp_path / "raw" / "neg.fa", neg)
    proc = subprocess.run([sys.executable, str(ROOT / "get_input.py"), "--kmer", "3", "--extend_len", "30", "--task", "finetune",
                           "--data_dir", str(tmp_path / "raw"), "--save_dir", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "out" / "train.tsv").exists()
