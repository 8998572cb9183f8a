"""Every kind of bad input, script by script: exit status 2, one line on stderr naming the problem
(and the file), no traceback, and nothing on disk changed.

Each script has a table of :class:`Case` rows and a builder that writes a good set of inputs, then
spoils one thing. The test snapshots the whole test folder (names and bytes) before the run and
compares after it, so a refused run has neither removed, overwritten nor partially written
anything, in its output folder or elsewhere (a pickle that ran code would leave its marker file).
The scripts run in-process through ``main(argv)`` (fast); one case per script runs in a real
process to prove the exit status.

``python tests/test_errors.py`` prints ``docs/errors.md``, every table as Markdown;
``test_readme_lists_every_case`` keeps the two in step.
"""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "tests"):  # for `python tests/test_errors.py` (pytest sets both itself)
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from toy import (  # noqa: E402
    planted_records,
    tiny_classifier,
    tiny_pretrained,
    write_corpus,
    write_fasta,
    write_split_dir,
)

from m6abert import io  # noqa: E402
from m6abert.kmer import seq2kmer  # noqa: E402


class Case(NamedTuple):
    """One bad input: ``message`` is what follows ``SCRIPT: error:`` on stderr.

    In ``message``, ``{file}`` stands for ``file`` (a path relative to the test folder, whose first
    part is named after the flag that points there) and ``…`` for any text.
    """

    id: str
    what: str
    message: str
    file: str | None = None


# ---------------------------------------------------------------------------- spoilers
def evil_pickle(path: Path, marker: Path) -> Path:
    """A pickle whose loading would run ``touch marker`` (a PyTorch-1.x style pytorch_model.bin).

    Protocol 2, as ``torch.save`` writes: the weights-only unpickler reaches the ``os.system``
    global and must refuse it (a protocol-4 pickle is refused earlier, at its first FRAME opcode).
    """

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump({"bert.embeddings.word_embeddings.weight": Evil()}, fh, protocol=2)
    return path


def evil_checkpoint(folder: Path, tmp: Path) -> Path:
    """A checkpoint folder: a valid config.json and a pytorch_model.bin that would run code."""
    folder.mkdir(parents=True)
    io.write_text(folder / "config.json", (tiny_pretrained(tmp / "_cfg") / "config.json").read_text())
    evil_pickle(folder / "pytorch_model.bin", tmp / "PWNED")
    return folder


def truncate(path: Path) -> None:
    """Cut a text file in the middle of its last line (a copy interrupted mid-way)."""
    text = path.read_bytes().rstrip(b"\r\n")
    start = text.rindex(b"\n") + 1
    path.write_bytes(text[: start + (len(text) - start) // 3])


def random_fasta(path: Path, prefix: str, n: int, seed: int, length: int = 501) -> None:
    """``n`` random records of ``length`` nt, each on two lines."""
    rng = np.random.RandomState(seed)
    seqs = ["".join(rng.choice(list("ACGT"), size=length)) for _ in range(n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f">{prefix}{i + 1}\n{s[:250]}\n{s[250:]}\n" for i, s in enumerate(seqs)))


BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
LATIN1 = "seq\tlabel\nACG CGT\t1\n# caf\xe9\n".encode("latin-1")


def set_row(path: Path, row: int, text: str) -> None:
    """Replace data row ``row`` (1-based, after the header) of a TSV."""
    lines = path.read_text().splitlines()
    lines[row] = text
    path.write_text("\n".join(lines) + "\n")


def drop_labels(path: Path) -> None:
    """Keep only the sequence column of a TSV."""
    io.write_text(path, "seq\n" + "".join(s + "\n" for s in io.read_tsv(path).sentences))


def kmer_row(seq: str, label: str | int, k: int = 3) -> str:
    return f"{seq2kmer(seq, k)}\t{label}"


# ---------------------------------------------------------------------------- get_input.py
GET_INPUT = [
    Case("missing", "`pos.fa` missing", "{file}: FASTA file not found", "DATA_DIR/pos.fa"),
    Case("missing-neg", "`neg.fa` missing", "{file}: FASTA file not found", "DATA_DIR/neg.fa"),
    Case("empty", "empty `pos.fa`", "{file}: empty FASTA file", "DATA_DIR/pos.fa"),
    Case("truncated", "`neg.fa` cut after a header line", "{file}: record n16 (line 46): empty sequence",
         "DATA_DIR/neg.fa"),
    Case("binary", "binary `pos.fa`", "{file}: binary file, expected a FASTA file", "DATA_DIR/pos.fa"),
    Case("not-utf8", "`pos.fa` not UTF-8", "{file}: not UTF-8 text at byte …, expected a FASTA file", "DATA_DIR/pos.fa"),
    Case("not-fasta", "`pos.fa` is a TSV", "{file}: line 1: not FASTA (expected a '>' header line first)",
         "DATA_DIR/pos.fa"),
    Case("illegal-letter", "an `X` in a sequence",
         "{file}: record n3: illegal letter 'X' at position 101 (allowed: A, C, G, T, U, N)", "DATA_DIR/neg.fa"),
    Case("shorter-than-k", "a record shorter than k", "{file}: record p_short: sequence of 5 nt is shorter than k=6",
         "DATA_DIR/pos.fa"),
    Case("wrong-k", "`--kmer 7`", "--kmer must be 3, 4, 5 or 6, not 7"),
    Case("few-negatives", "fewer negatives than needed", "{file}: 9 negative records, fewer than the 10 needed",
         "DATA_DIR/neg.fa"),
    Case("folds", "`--n_folds` above the number of positives", "{file}: --n_folds 11 needs 2 <= folds <= 10 positives",
         "DATA_DIR/pos.fa"),
    Case("folds-pretrain", "`--n_folds` with `--task pretrain`", "--n_folds applies to --task finetune"),
    Case("extend-len", "`--extend_len -1`", "--extend_len must be >= 0"),
    Case("pretrain-missing", "`--task pretrain` without `pretrain.fa`", "{file}: FASTA file not found",
         "DATA_DIR/pretrain.fa"),
    Case("pretrain-illegal", "`--fasta` with an illegal letter",
         "{file}: record r2: illegal letter '-' at position 4 (allowed: A, C, G, T, U, N)", "corpus.fa"),
    Case("blocks", "a header's `blocks=` that does not cover its record",
         "{file}: record p2: blocks= in its header cover 100 nt, its sequence has 501", "DATA_DIR/pos.fa"),
]


def build_get_input(case: str, tmp: Path) -> list[str]:
    data, save = tmp / "DATA_DIR", tmp / "SAVE_DIR"
    pos, neg = data / "pos.fa", data / "neg.fa"
    random_fasta(pos, "p", 10, seed=3)
    random_fasta(neg, "n", 15, seed=4)
    io.write_text(save / "train.tsv", "seq\tlabel\nstale output of an earlier run\t1\n")
    argv = ["--kmer", "3", "--extend_len", "250", "--task", "finetune", "--do_val", "--data_dir", str(data),
            "--save_dir", str(save)]
    if case == "missing":
        pos.unlink()
    elif case == "missing-neg":
        neg.unlink()
    elif case == "empty":
        pos.write_text("")
    elif case == "truncated":
        neg.write_text(neg.read_text() + ">n16\n")
    elif case == "binary":
        pos.write_bytes(BINARY)
    elif case == "not-utf8":
        pos.write_bytes(b">p1 caf\xe9\nACGT\n")
    elif case == "not-fasta":
        pos.write_text("seq\tlabel\nACG CGT\t1\n")
    elif case == "illegal-letter":
        lines = neg.read_text().splitlines()
        lines[7] = lines[7][:100] + "X" + lines[7][101:]  # record n3, its first sequence line
        neg.write_text("\n".join(lines) + "\n")
    elif case == "shorter-than-k":
        pos.write_text(pos.read_text() + ">p_short\nACGTA\n")
        argv[1] = "6"
    elif case == "wrong-k":
        argv[1] = "7"
    elif case == "few-negatives":
        random_fasta(neg, "n", 9, seed=4)
    elif case == "folds":
        argv += ["--n_folds", "11"]
    elif case == "folds-pretrain":
        argv[5] = "pretrain"
        argv += ["--n_folds", "5"]
    elif case == "extend-len":
        argv[3] = "-1"
    elif case == "pretrain-missing":
        argv[5] = "pretrain"
    elif case == "pretrain-illegal":
        (tmp / "corpus.fa").write_text(">r1\nACGTACGT\n>r2\nACG-TACGT\n")
        argv[5] = "pretrain"
        argv += ["--fasta", str(tmp / "corpus.fa")]
    elif case == "blocks":
        pos.write_text(pos.read_text().replace(">p2\n", ">p2 chr1:1251:+ blocks=1000-1100\n"))
    else:
        raise AssertionError(case)
    return argv


# ---------------------------------------------------------------------------- run_pretrain.py
RUN_PRETRAIN = [
    Case("missing", "corpus missing", "{file}: corpus not found", "DATA_DIR/train.txt"),
    Case("empty", "empty corpus (blank lines)", "{file}: empty corpus", "DATA_DIR/train.txt"),
    Case("truncated", "corpus cut inside its last k-mer",
         "{file}: line 8: k-mer '…' of length 2, but the model is for k=3", "DATA_DIR/train.txt"),
    Case("binary", "binary corpus (NUL bytes)", "{file}: binary file, expected a corpus", "DATA_DIR/train.txt"),
    Case("not-utf8", "corpus not UTF-8 (e.g. gzipped)", "{file}: not UTF-8 text after line 0, expected a corpus", "DATA_DIR/train.txt"),
    Case("wrong-columns", "a `seq<TAB>label` TSV as corpus",
         "{file}: line 1: k-mer 'label' of length 5, but the model is for k=3", "DATA_DIR/train.txt"),
    Case("illegal-letter", "an `X` in a k-mer",
         "{file}: line 3: illegal letter 'X' in the k-mers (allowed: A, C, G, T, N)", "DATA_DIR/train.txt"),
    Case("wrong-k", "`--tokenizer_name dna4` for a 3-mer corpus",
         "{file}: line 1: k-mers of length 3, but the model is for k=4", "DATA_DIR/train.txt"),
    Case("eval-k", "eval corpus of another k", "{file}: line 1: k-mers of length 4, but the model is for k=3",
         "DATA_DIR/eval.txt"),
    Case("checkpoint-k", "a k=5 checkpoint for a 3-mer corpus",
         "{file}: line 1: k-mers of length 3, but the model is for k=5", "DATA_DIR/train.txt"),
    Case("too-long", "`--block_size` shorter than a sentence",
         "{file}: line 1: 40 tokens with [CLS]/[SEP] exceed --block_size 30 (split long sequences)",
         "DATA_DIR/train.txt"),
    Case("block-size", "`--block_size` above the model's positions", "--block_size 600 exceeds the model's 512 positions"),
    Case("non-empty-output", "non-empty `--output_dir`",
         "{file}: output directory exists and is not empty; use --overwrite_output_dir", "OUTPUT_DIR"),
    Case("overwrite", "`--overwrite_output_dir` over an old run, bad corpus (the old run is kept)",
         "{file}: empty corpus", "DATA_DIR/train.txt"),
    Case("corrupt-config", "corrupt `config.json` of `--model_name_or_path`",
         "{file}: checkpoint config.json is not valid JSON (…)", "MODEL_PATH/config.json"),
    Case("corrupt-config-name", "corrupt `--config_name` JSON", "{file}: --config_name config.json is not valid JSON (…)",
         "config.json"),
    Case("missing-checkpoint", "`--model_name_or_path` missing", "{file}: checkpoint config.json not found",
         "MODEL_PATH/config.json"),
    Case("corrupt-weights", "corrupt `model.safetensors`", "{file}: corrupt weights (…)", "MODEL_PATH/model.safetensors"),
    Case("config-mismatch", "`config.json` with fewer layers than the weights",
         "{file}: num_hidden_layers 1, but the weights hold 2 layers", "MODEL_PATH/config.json"),
    Case("pickle", "`pytorch_model.bin` whose unpickling runs code",
         "{file}: refusing to load checkpoint weights: it holds objects other than tensors (… GLOBAL posix.system …)",
         "MODEL_PATH/pytorch_model.bin"),
    Case("resume-pickle", "`--should_continue`: `optimizer.pt` whose unpickling runs code",
         "{file}: refusing to load optimizer state: it holds objects other than tensors (… GLOBAL posix.system …)",
         "OUTPUT_DIR/checkpoint-1/optimizer.pt"),
    Case("fasta-needs-k", "`--train_fasta` without k",
         "{file}: a FASTA corpus needs k: give --tokenizer_name dna3..dna6 or a checkpoint", "train.fa"),
    Case("fasta-illegal", "`--train_fasta` with an illegal letter",
         "{file}: record r2: illegal letter 'X' at position 3 (allowed: A, C, G, T, U, N)", "train.fa"),
    Case("both-corpora", "`--train_data_file` and `--train_fasta`", "give --train_data_file or --train_fasta, not both"),
    Case("no-eval-file", "`--do_eval` without an eval corpus",
         "--do_eval and --evaluate_during_training need --eval_data_file or --eval_fasta"),
    Case("mlm-probability", "`--mlm_probability 0`", "--mlm_probability must be in (0, 1], not 0.0"),
    Case("model-type", "`--model_type bert`", "--model_type 'bert' is not supported: only 'dna'"),
    Case("fp16-cpu", "`--fp16` without a GPU", "--fp16 needs a CUDA device; use --bf16 on CPU"),
]


def build_run_pretrain(case: str, tmp: Path) -> list[str]:
    data, out, model = tmp / "DATA_DIR", tmp / "OUTPUT_DIR", tmp / "MODEL_PATH"
    train, eval_ = write_corpus(data / "train.txt", 8, seed=1), write_corpus(data / "eval.txt", 4, seed=2)
    new = ["--config_name", "tiny"]
    files = ["--train_data_file", str(train), "--eval_data_file", str(eval_)]
    common = ["--do_train", "--do_eval", "--output_dir", str(out), "--max_steps", "1",
              "--per_gpu_train_batch_size", "4", "--per_gpu_eval_batch_size", "4", "--seed", "1"]
    from_model = ["--model_name_or_path", str(model), *files, *common]
    argv = [*new, *files, *common]
    if case == "missing":
        train.unlink()
    elif case == "empty":
        train.write_text("\n\n")
    elif case == "truncated":
        train.write_bytes(train.read_bytes()[:-2])
    elif case == "binary":
        train.write_bytes(b"AAA AAT\x00\x01\x02 ATG\n" * 4)
    elif case == "not-utf8":
        train.write_bytes(BINARY)
    elif case == "wrong-columns":
        write_split_dir(tmp / "tsv", n=4)
        train.write_bytes((tmp / "tsv" / "train.tsv").read_bytes())
    elif case == "illegal-letter":
        lines = train.read_text().splitlines()
        lines[2] = lines[2][:5] + "X" + lines[2][6:]
        train.write_text("\n".join(lines) + "\n")
    elif case == "wrong-k":
        argv += ["--tokenizer_name", "dna4"]
    elif case == "eval-k":
        write_corpus(eval_, 4, k=4)
    elif case == "checkpoint-k":
        tiny_pretrained(model, k=5)
        argv = from_model
    elif case == "too-long":
        argv += ["--block_size", "30"]
    elif case == "block-size":
        argv += ["--block_size", "600"]
    elif case == "non-empty-output":
        io.write_text(out / "notes.txt", "a previous run")
    elif case == "overwrite":
        io.write_text(out / "checkpoint-4" / "config.json", "{}")
        io.write_text(out / "eval_results.txt", "3.5\n")
        train.write_text("\n")
        argv += ["--overwrite_output_dir"]
    elif case == "corrupt-config":
        tiny_pretrained(model)
        (model / "config.json").write_text("{not json")
        argv = from_model
    elif case == "corrupt-config-name":
        (tmp / "config.json").write_text('{"hidden_size": 32,')
        argv = ["--config_name", str(tmp / "config.json"), *files, *common]
    elif case == "missing-checkpoint":
        argv = from_model
    elif case == "corrupt-weights":
        tiny_pretrained(model)
        (model / "model.safetensors").write_bytes(b"\x00garbage" * 10)
        argv = from_model
    elif case == "config-mismatch":
        tiny_pretrained(model)
        spoil_model(case, model, tmp)
        argv = from_model
    elif case == "pickle":
        evil_checkpoint(model, tmp)
        argv = from_model
    elif case == "resume-pickle":
        ckpt = tiny_pretrained(out / "checkpoint-1")
        io.write_json(ckpt / "trainer_state.json", {"global_step": 1, "epoch": 0, "batch_in_epoch": 1})
        evil_pickle(ckpt / "optimizer.pt", tmp / "PWNED")
        argv = [*files, *common, "--should_continue"]
    elif case == "fasta-needs-k":
        write_fasta(tmp / "train.fa", planted_records(2, 2)[0])
        argv = [*new, "--train_fasta", str(tmp / "train.fa"), "--output_dir", str(out)]
    elif case == "fasta-illegal":
        (tmp / "train.fa").write_text(">r1\nACGTACGT\n>r2\nACXGTACGT\n")
        argv = [*new, "--train_fasta", str(tmp / "train.fa"), "--tokenizer_name", "dna3", "--output_dir", str(out)]
    elif case == "both-corpora":
        argv += ["--train_fasta", str(train)]
    elif case == "no-eval-file":
        argv = [*new, "--train_data_file", str(train), *common]
    elif case == "mlm-probability":
        argv += ["--mlm_probability", "0"]
    elif case == "model-type":
        argv += ["--model_type", "bert"]
    elif case == "fp16-cpu":
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA device is present")
        argv += ["--fp16"]
    else:
        raise AssertionError(case)
    return argv


# ---------------------------------------------------------------------------- run_finetune_degradation.py
FT_FAST = ["--model_type", "dna", "--task_name", "dnaprom", "--max_seq_length", "64", "--per_gpu_train_batch_size", "8",
           "--per_gpu_eval_batch_size", "16", "--learning_rate", "1e-3", "--logging_steps", "2", "--save_steps", "2",
           "--seed", "7"]

# the TSV cases shared by fine-tuning, prediction and visualize_all.py: (id, what, message); {tsv} is the file
TSV_CASES = [
    ("missing", "`{tsv}` missing", "{file}: TSV file not found"),
    ("empty", "empty `{tsv}`", "{file}: empty TSV file"),
    ("header-only", "`{tsv}` with a header only", "{file}: no data rows after the header"),
    ("truncated", "`{tsv}` cut inside its last row", "{file}: row …: expected 2 tab-separated columns, found 1"),
    ("binary", "binary `{tsv}`", "{file}: binary file, expected a TSV file"),
    ("not-utf8", "`{tsv}` not UTF-8", "{file}: not UTF-8 text at byte …, expected a TSV file"),
    ("wrong-columns", "`{tsv}` with 3 columns", "{file}: row 1: expected 2 tab-separated columns (seq, label), found 3"),
    ("label-2", "a label `2`", "{file}: row 3: label '2' is not 0 or 1"),
    ("label-text", "a label `yes`", "{file}: row 1: label 'yes' is not 0 or 1"),
    ("illegal-letter", "an `X` in a k-mer", "{file}: row 2: illegal letter 'X' in the k-mers (allowed: A, C, G, T, N)"),
    ("wrong-k", "4-mers for a k=3 model", "{file}: row 1: k-mers of length 4, but the model is for k=3"),
    ("too-long", "`--max_seq_length` shorter than the data",
     "{file}: row …: 61 tokens with [CLS]/[SEP] exceed --max_seq_length 20"),
]


def spoil_tsv(case: str, tsv: Path, tmp: Path) -> bool:
    """Apply a TSV_CASES spoiler to ``tsv``; False if ``case`` is not one of them."""
    if case == "missing":
        tsv.unlink()
    elif case == "empty":
        tsv.write_text("")
    elif case == "header-only":
        tsv.write_text("seq\tlabel\r\n")
    elif case == "truncated":
        truncate(tsv)
    elif case == "binary":
        tsv.write_bytes(BINARY)
    elif case == "not-utf8":
        tsv.write_bytes(LATIN1)
    elif case == "wrong-columns":
        tsv.write_text("seq\tlabel\tid\n" + kmer_row("ACGTACGT", 1) + "\tr1\n")
    elif case == "label-2":
        set_row(tsv, 3, kmer_row("ACGTACGTAA", 2))
    elif case == "label-text":
        set_row(tsv, 1, kmer_row("ACGTACGTAA", "yes"))
    elif case == "illegal-letter":
        set_row(tsv, 2, kmer_row("ACGTXCGTAA", 1))
    elif case == "wrong-k":
        write_split_dir(tmp / "k4", k=4, n=8)
        tsv.write_bytes((tmp / "k4" / tsv.name).read_bytes())
    elif case == "too-long":
        pass  # the flag does it
    else:
        return False
    return True


def tsv_cases(tsv: str, file: str) -> list[Case]:
    return [Case(i, what.format(tsv=tsv), msg, file) for i, what, msg in TSV_CASES]


# cases of the checkpoint a script reads: (id, what, message, file below the checkpoint folder)
MODEL_CASES = [
    ("missing-model", "checkpoint folder missing", "{file}: checkpoint folder not found", ""),
    ("corrupt-config", "corrupt `config.json`", "{file}: checkpoint config.json is not valid JSON (…)", "config.json"),
    ("config-not-bert", "`config.json` that is no BERT config",
     "{file}: vocab_size is missing or not DNABERT's (69/261/1029/4101)", "config.json"),
    ("config-mismatch", "`config.json` with fewer layers than the weights",
     "{file}: num_hidden_layers 1, but the weights hold 2 layers", "config.json"),
    ("corrupt-weights", "corrupt `model.safetensors`", "{file}: corrupt weights (…)", "model.safetensors"),
    ("no-weights", "no weights file", "{file}: no model.safetensors or pytorch_model.bin in the checkpoint folder", ""),
    ("pickle", "`pytorch_model.bin` whose unpickling runs code",
     "{file}: refusing to load checkpoint weights: it holds objects other than tensors (… GLOBAL posix.system …)", "pytorch_model.bin"),
    ("wrong-vocab", "`vocab.txt` of another k", "{file}: vocab.txt is for k=4 but config.json vocab_size is for k=3", ""),
]


def model_cases(folder: str) -> list[Case]:
    return [Case(i, what, msg, f"{folder}/{f}".rstrip("/")) for i, what, msg, f in MODEL_CASES]


def spoil_model(case: str, model: Path, tmp: Path) -> bool:
    """Apply a MODEL_CASES spoiler to the checkpoint folder ``model`` (already written)."""
    if case == "missing-model":
        import shutil

        shutil.rmtree(model)
    elif case == "corrupt-config":
        (model / "config.json").write_text("{not json")
    elif case == "config-not-bert":
        (model / "config.json").write_text('{"model_type": "gpt2", "n_embd": 64}')
    elif case == "config-mismatch":
        io.write_json(model / "config.json", {**io.read_json(model / "config.json"), "num_hidden_layers": 1})
    elif case == "corrupt-weights":
        (model / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    elif case == "no-weights":
        (model / "model.safetensors").unlink()
    elif case == "pickle":
        (model / "model.safetensors").unlink()
        evil_pickle(model / "pytorch_model.bin", tmp / "PWNED")
    elif case == "wrong-vocab":
        from m6abert.kmer import vocab

        io.write_text(model / "vocab.txt", "\n".join(vocab(4)) + "\n")
    else:
        return False
    return True


RUN_FINETUNE = [
    *tsv_cases("train.tsv", "DATA_DIR/train.tsv"),
    Case("no-labels", "`train.tsv` without labels",
         "{file}: row 1: expected 2 tab-separated columns (seq, label), found 1", "DATA_DIR/train.tsv"),
    Case("missing-dev", "`dev.tsv` missing with `--evaluate_during_training`", "{file}: TSV file not found",
         "DATA_DIR/dev.tsv"),
    Case("tokenizer-k", "`--tokenizer_name dna5` for a k=3 model", "--tokenizer_name dna5 does not match {file} (k=3)",
         "MODEL_PATH"),
    *model_cases("MODEL_PATH"),
    Case("no-encoder", "a checkpoint without encoder weights", "{file}: checkpoint lacks … encoder weights (first: …)",
         "MODEL_PATH"),
    Case("non-empty-output", "non-empty `--output_dir`",
         "{file}: output directory exists and is not empty; use --overwrite_output_dir", "OUTPUT_DIR"),
    Case("overwrite", "`--overwrite_output_dir` over an old run, bad `train.tsv` (the old run is kept)",
         "{file}: row 3: label '2' is not 0 or 1", "DATA_DIR/train.tsv"),
    Case("resume-pickle", "`--should_continue`: `optimizer.pt` whose unpickling runs code",
         "{file}: refusing to load optimizer state: it holds objects other than tensors (… GLOBAL posix.system …)",
         "OUTPUT_DIR/checkpoint-2/optimizer.pt"),
    Case("from-scratch", "`--from_scratch` without `--config_name`",
         "--from_scratch needs --config_name (bert-base, mini, tiny or a config.json)"),
    Case("folds-missing", "`--n_folds 3` without fold folders",
         "{file}: missing; write the folds with get_input.py --n_folds 3", "DATA_DIR/fold_0"),
    Case("dnalong", "`--model_type dnalong`",
         "--model_type 'dnalong' is not supported: only 'dna' (dnalong models are not carried)"),
    Case("visualize", "`--do_visualize`", "--do_visualize is not supported by m6abert: use visualize_all.py …"),
    Case("server-ip", "`--server_ip`", "--server_ip/--server_port (ptvsd remote debugging) are not supported"),
    Case("max-seq-length", "`--max_seq_length 1024`", "--max_seq_length must be in 3..512 (BERT positions), not 1024"),
]


def build_run_finetune(case: str, tmp: Path) -> list[str]:
    data, out, model = tmp / "DATA_DIR", tmp / "OUTPUT_DIR", tmp / "MODEL_PATH"
    write_split_dir(data, n=16)
    tiny_pretrained(model)
    argv = [*FT_FAST, "--model_name_or_path", str(model), "--do_train", "--data_dir", str(data), "--output_dir",
            str(out), "--max_steps", "1"]
    if spoil_tsv(case, data / "train.tsv", tmp) or spoil_model(case, model, tmp):
        if case == "too-long":
            argv += ["--max_seq_length", "20"]
    elif case == "no-labels":
        drop_labels(data / "train.tsv")
    elif case == "missing-dev":
        (data / "dev.tsv").unlink()
        argv += ["--evaluate_during_training"]
    elif case == "tokenizer-k":
        argv += ["--tokenizer_name", "dna5"]
    elif case == "no-encoder":
        from safetensors.torch import load_file, save_file

        weights = load_file(model / "model.safetensors")
        save_file({n: w for n, w in weights.items() if "layer.1.output." not in n}, model / "model.safetensors")
    elif case == "non-empty-output":
        io.write_text(out / "notes.txt", "a previous run")
    elif case == "overwrite":
        io.write_text(out / "checkpoint-4" / "config.json", "{}")
        io.write_text(out / "eval_results.txt", "data 0.5 0.5 0.5 0.0 0.5 0.5\n")
        set_row(data / "train.tsv", 3, kmer_row("ACGTACGTAA", 2))
        argv += ["--overwrite_output_dir"]
    elif case == "resume-pickle":
        ckpt = tiny_classifier(out / "checkpoint-2")
        io.write_json(ckpt / "trainer_state.json", {"global_step": 2, "epoch": 0, "batch_in_epoch": 2})
        evil_pickle(ckpt / "optimizer.pt", tmp / "PWNED")
        argv += ["--should_continue"]
    elif case == "from-scratch":
        argv += ["--from_scratch", "--tokenizer_name", "dna3"]
    elif case == "folds-missing":
        argv += ["--n_folds", "3", "--do_eval"]
    elif case == "dnalong":
        argv += ["--model_type", "dnalong"]
    elif case == "visualize":
        argv += ["--do_visualize"]
    elif case == "server-ip":
        argv += ["--server_ip", "1.2.3.4"]
    elif case == "max-seq-length":
        argv += ["--max_seq_length", "1024"]
    else:
        raise AssertionError(case)
    return argv


# ---------------------------------------------------------------------------- run_predict_degradation.py
RUN_PREDICT = [
    *tsv_cases("test.tsv", "DATA_DIR/test.tsv"),
    Case("tokenizer-k", "`--tokenizer_name dna5` for a k=3 model",
         "--tokenizer_name dna5 does not match the model in {file} (k=3)", "OUTPUT_DIR"),
    *model_cases("OUTPUT_DIR"),
    Case("no-head", "a pretrained model without classifier head",
         "{file}: no classifier head in this checkpoint; give a fine-tuned model …", "OUTPUT_DIR"),
    Case("fasta-missing", "`--predict_fasta` missing", "{file}: FASTA file not found", "new.fa"),
    Case("fasta-illegal", "`--predict_fasta` with an illegal letter",
         "{file}: record r2: illegal letter 'Z' at position 5 (allowed: A, C, G, T, U, N)", "new.fa"),
    Case("fasta-short", "`--predict_fasta` record shorter than k", "{file}: record r2: sequence of 2 nt is shorter than k=3",
         "new.fa"),
    Case("fasta-too-long", "`--predict_fasta` record longer than `--max_seq_length`",
         "{file}: row 1: 200 tokens with [CLS]/[SEP] exceed --max_seq_length 64", "new.fa"),
    Case("records-rows", "a `records.tsv` beside `test.tsv` that lacks one of its rows",
         "{file}: the rows of part test are not rows 0..7 of test.tsv (7 listed); records.tsv does not describe "
         "these TSVs: re-run get_input.py (or remove it)", "DATA_DIR/records.tsv"),
    Case("records-label", "a `records.tsv` whose label of a row differs from `test.tsv`'s",
         "{file}: part test row 0: label …, but row 0 of test.tsv has label …; records.tsv does not describe these "
         "TSVs: re-run get_input.py (or remove it)", "DATA_DIR/records.tsv"),
]


def write_records(data: Path, part: str, drop_last: bool = False, flip_first: bool = False) -> None:
    """A records.tsv for ``data/{part}.tsv`` (ids r0, r1, ...), spoilt as asked."""
    labels = io.read_tsv(data / f"{part}.tsv").labels.tolist()
    rows = [f"r{i}\t{part}\t{i}\t{1 - y if flip_first and i == 0 else y}\t250" for i, y in enumerate(labels)]
    io.write_text(data / "records.tsv", "id\tpart\trow\tlabel\tsite\n" + "".join(
        r + "\n" for r in rows[: -1 if drop_last else None]))


def build_run_predict(case: str, tmp: Path) -> list[str]:
    data, model, pred = tmp / "DATA_DIR", tmp / "OUTPUT_DIR", tmp / "PREDICT_DIR"
    write_split_dir(data, n=16)
    tiny_classifier(model)
    io.save_npy(pred / "pred_results.npy", np.zeros(3, dtype=np.float32))  # an earlier run's outputs
    io.write_text(pred / "predictions.tsv", "row\tprobability\tpredicted_label\n0\t0.5\t0\n")
    argv = ["--data_dir", str(data), "--output_dir", str(model), "--predict_dir", str(pred), "--do_predict",
            "--max_seq_length", "64"]
    if spoil_tsv(case, data / "test.tsv", tmp) or spoil_model(case, model, tmp):
        if case == "too-long":
            argv += ["--max_seq_length", "20"]
    elif case == "tokenizer-k":
        argv += ["--tokenizer_name", "dna5"]
    elif case == "no-head":
        tiny_pretrained(model)
    elif case.startswith("fasta-"):
        records = {"fasta-illegal": ["ACGTACGT", "ACGTZACGT"], "fasta-short": ["ACGTACGT", "AC"],
                   "fasta-too-long": ["ACGT" * 50, "ACGT"]}.get(case)
        if records:
            (tmp / "new.fa").write_text("".join(f">r{i}\n{s}\n" for i, s in enumerate(records, 1)))
        argv += ["--predict_fasta", str(tmp / "new.fa")]
    elif case.startswith("records-"):
        write_records(data, "test", drop_last=case == "records-rows", flip_first=case == "records-label")
    else:
        raise AssertionError(case)
    return argv


# ---------------------------------------------------------------------------- visualize_all.py
VISUALIZE = [
    *tsv_cases("dev.tsv", "DATA_DIR/dev.tsv"),
    Case("attr-no-labels", "`--vis_task attr` on a TSV without labels",
         "{file}: row 1: expected 2 tab-separated columns (seq, label), found 1", "DATA_DIR/dev.tsv"),
    Case("all-missing", "`--data_name all` without `train.tsv`", "{file}: TSV file not found", "DATA_DIR/train.tsv"),
    Case("labels-mixed", "`--data_name all`, only `dev.tsv` without labels",
         "{file}: some of train.tsv, dev.tsv, test.tsv have labels and some not", "DATA_DIR"),
    Case("kmer", "`--kmer 4` for a k=3 model", "--kmer 4 does not match the model in {file} (k=3)", "MODEL_PATH"),
    *model_cases("MODEL_PATH"),
    Case("no-head", "a pretrained model without classifier head",
         "{file}: no classifier head in this checkpoint; give a fine-tuned model …", "MODEL_PATH"),
    Case("layer", "`--layer 5` of a 2-layer model", "--layer 5: the model has 2 layers (0..1)"),
    Case("max-seq-length", "`--max_seq_length 600`", "--max_seq_length must be in 3..512 (BERT positions), not 600"),
    Case("task-name", "`--task_name dna690`", "--task_name 'dna690' is not supported: only 'dnaprom' (binary)"),
    Case("n-steps", "`--n_steps 0`", "--batch_size, --n_steps and --max_ig_steps must be >= 1"),
    Case("max-ig-steps-fixed", "`--max_ig_steps 64` with `--n_steps 16`",
         "--max_ig_steps caps adaptive integration: drop --n_steps (a fixed count)"),
    Case("max-abs-delta", "`--max_abs_delta -1`", "--max_abs_delta must be >= 0, not -1.0"),
    Case("records-rows", "a `records.tsv` beside `dev.tsv` that lacks one of its rows",
         "{file}: the rows of part dev are not rows 0..7 of dev.tsv (7 listed); records.tsv does not describe "
         "these TSVs: re-run get_input.py (or remove it)", "DATA_DIR/records.tsv"),
    Case("fasta-and-data-dir", "`--fasta` with `--data_dir`",
         "--fasta and --data_dir: give one (a FASTA to score, or a folder of split TSVs)"),
    Case("no-data", "neither `--data_dir` nor `--fasta`", "give --data_dir and --data_name (a split), or --fasta FILE"),
    Case("fasta-site-index", "`--site_index` with `--fasta`",
         "--site_index does not apply to --fasta: each record's site is its header's site=N or the window rule's"),
    Case("fasta-labels", "`--fasta` whose records are labelled (`label=1`) only in part",
         "{file}: record r2 has no label= in its header, unlike record r1; label every record (label=1: degraded, "
         "label=0: not) or none", "new.fa"),
    Case("fasta-ism-window", "`--fasta --vis_task ism --ism_window` with records whose sites differ",
         "--ism_window with --fasta {file}: its records' sites lie at 2 different indices (30..40); drop "
         "--ism_window (every position is mutated) or score records that share one site index", "new.fa"),
]


def build_visualize(case: str, tmp: Path) -> list[str]:
    data, model, out = tmp / "DATA_DIR", tmp / "MODEL_PATH", tmp / "OUTPUT_DIR"
    write_split_dir(data, n=16)
    tiny_classifier(model)
    io.save_npy(out / "atten_dev.npy", np.zeros((2, 3)))  # an earlier run's output
    argv = ["--model_path", str(model), "--data_dir", str(data), "--data_name", "dev", "--vis_task", "attn",
            "--output_dir", str(out), "--max_seq_length", "64"]
    if spoil_tsv(case, data / "dev.tsv", tmp) or spoil_model(case, model, tmp):
        if case == "too-long":
            argv += ["--max_seq_length", "20"]
    elif case == "attr-no-labels":
        drop_labels(data / "dev.tsv")
        argv[7] = "attr"
    elif case == "all-missing":
        (data / "train.tsv").unlink()
        argv[5] = "all"
    elif case == "labels-mixed":
        drop_labels(data / "dev.tsv")
        argv[5] = "all"
    elif case == "kmer":
        argv += ["--kmer", "4"]
    elif case == "no-head":
        tiny_pretrained(model)
    elif case == "layer":
        argv += ["--layer", "5"]
    elif case == "max-seq-length":
        argv += ["--max_seq_length", "600"]
    elif case == "task-name":
        argv += ["--task_name", "dna690"]
    elif case == "n-steps":
        argv += ["--vis_task", "attr", "--n_steps", "0"]
    elif case == "max-ig-steps-fixed":
        argv += ["--vis_task", "attr", "--n_steps", "16", "--max_ig_steps", "64"]
    elif case == "max-abs-delta":
        argv += ["--vis_task", "attr", "--max_abs_delta", "-1"]
    elif case == "records-rows":
        write_records(data, "dev", drop_last=True)
    elif case in ("fasta-and-data-dir", "no-data") or case.startswith("fasta-"):
        argv = argv[:2] + argv[6:] + (argv[2:4] if case == "fasta-and-data-dir" else [])
        (tmp / "new.fa").write_text(f">r1 label=1 site=30\n{'C' * 30}A{'C' * 30}\n>r2 site=40\n{'G' * 40}A{'G' * 20}\n")
        argv += [] if case == "no-data" else ["--fasta", str(tmp / "new.fa")]
        argv += {"fasta-site-index": ["--site_index", "30"], "fasta-ism-window": ["--vis_task", "ism", "--ism_window",
                                                                                   "-5:5"]}.get(case, [])
        if case == "fasta-ism-window":
            (tmp / "new.fa").write_text(f">r1 site=30\n{'C' * 30}A{'C' * 30}\n>r2 site=40\n{'G' * 40}A{'G' * 20}\n")
    else:
        raise AssertionError(case)
    return argv


# ---------------------------------------------------------------------------- find_motifs.py
FIND_MOTIFS = [
    Case("missing", "`dev.tsv` missing", "{file}: TSV file not found", "DATA_DIR/dev.tsv"),
    Case("empty", "empty `dev.tsv`", "{file}: empty TSV file", "DATA_DIR/dev.tsv"),
    Case("truncated", "`dev.tsv` cut inside its last row", "{file}: row 6: expected 2 tab-separated columns, found 1",
         "DATA_DIR/dev.tsv"),
    Case("binary", "binary `dev.tsv`", "{file}: binary file, expected a TSV file", "DATA_DIR/dev.tsv"),
    Case("wrong-columns", "`dev.tsv` without labels",
         "{file}: row 1: expected 2 tab-separated columns (seq, label), found 1", "DATA_DIR/dev.tsv"),
    Case("label-2", "a label `2`", "{file}: row 3: label '2' is not 0 or 1", "DATA_DIR/dev.tsv"),
    Case("illegal-letter", "an `X` in a k-mer",
         "{file}: row 2: illegal letter 'X' in the k-mers (allowed: A, C, G, T, N)", "DATA_DIR/dev.tsv"),
    Case("mixed-k", "k-mers of different lengths in a row",
         "{file}: row 4: k-mers of length 3 and 2 in one row (a damaged k-mer sentence)", "DATA_DIR/dev.tsv"),
    Case("missing-npy", "`atten_dev.npy` missing", "{file}: file not found", "NPY_DIR/atten_dev.npy"),
    Case("missing-attr", "`attributions_dev.npy` missing (`--vis_task attr`)", "{file}: file not found",
         "NPY_DIR/attributions_dev.npy"),
    Case("npy-text", "a text file as `atten_dev.npy`", "{file}: not a NumPy array file (…)", "NPY_DIR/atten_dev.npy"),
    Case("npy-truncated", "`atten_dev.npy` cut short", "{file}: not a NumPy array file (…)", "NPY_DIR/atten_dev.npy"),
    Case("npy-pickle", "`atten_dev.npy` holding pickled objects that would run code",
         "{file}: not a NumPy array file (…)", "NPY_DIR/atten_dev.npy"),
    Case("npy-1d", "1-D scores", "{file}: expected a 2-D score array (sequences x positions), found shape (6,)",
         "NPY_DIR/atten_dev.npy"),
    Case("npy-strings", "scores that are not numbers", "{file}: score array has dtype <U1, expected numbers",
         "NPY_DIR/atten_dev.npy"),
    Case("rows", "fewer score rows than sequences",
         "{file}: 2 score rows, but …/DATA_DIR/dev.tsv has 6 sequences", "NPY_DIR/atten_dev.npy"),
    Case("narrow", "scores narrower than the sequences",
         "{file}: scores are 100 positions wide, shorter than the 101-nt sequences of …", "NPY_DIR/atten_dev.npy"),
    Case("no-positives", "no label-1 rows", "{file}: no label-1 rows in 'dev', nothing to search", "DATA_DIR"),
    Case("window-size", "`--window_size 0`", "--window_size, --min_len and --min_n_motif must be >= 1"),
    Case("pval", "`--pval_cutoff 0`", "--pval_cutoff must be in (0, 1]"),
    Case("max-abs-delta", "`--max_abs_delta -1`", "--max_abs_delta must be >= 0, not -1.0"),
    Case("fasta-unlabelled", "`--fasta` without `label=` words in its headers",
         "{file}: no label=1 / label=0 in its headers: motifs and profiles compare the label-1 records with the "
         "label-0 ones", "new.fa"),
    Case("fasta-and-data-dir", "`--fasta` with `--data_dir`",
         "--fasta and --data_dir: give one (the FASTA that visualize_all.py --fasta scored, or the folder of split "
         "TSVs)"),
]


def build_find_motifs(case: str, tmp: Path) -> list[str]:
    data, npy, save = tmp / "DATA_DIR", tmp / "NPY_DIR", tmp / "SAVE_DIR"
    rng = np.random.RandomState(0)
    seqs = ["".join(rng.choice(list("ACGT"), 101)) for _ in range(6)]
    labels = [1, 0] * 3
    io.write_tsv(data / "dev.tsv", [seq2kmer(s, 3) for s in seqs], labels)
    scores = rng.uniform(0, 1, (6, 110))
    io.save_npy(npy / "atten_dev.npy", scores)
    io.write_text(save / "motifs_pos.tsv", "motif\tconsensus\n(an earlier run)\n")
    argv = ["--data_dir", str(data), "--npy_dir", str(npy), "--data_name", "dev", "--vis_task", "attn",
            "--save_file_dir", str(save)]
    tsv, arr = data / "dev.tsv", npy / "atten_dev.npy"
    if case in ("missing", "empty", "truncated", "binary", "label-2", "illegal-letter"):
        spoil_tsv(case, tsv, tmp)
    elif case == "wrong-columns":
        tsv.write_text("seq\n" + "\n".join(seq2kmer(s, 3) for s in seqs) + "\n")
    elif case == "mixed-k":
        set_row(tsv, 4, f"{seq2kmer(seqs[3], 3)[:-1]}\t1")
    elif case == "missing-npy":
        arr.unlink()
    elif case == "missing-attr":
        argv[7] = "attr"
    elif case == "npy-text":
        arr.write_text("0.1 0.2 0.3\n")
    elif case == "npy-truncated":
        arr.write_bytes(arr.read_bytes()[:-100])
    elif case == "npy-pickle":

        class Evil:
            def __reduce__(self):
                return (os.system, (f"touch {tmp / 'PWNED'}",))

        with open(arr, "wb") as fh:
            np.save(fh, np.array([Evil()], dtype=object), allow_pickle=True)
    elif case == "npy-1d":
        io.save_npy(arr, np.zeros(6))
    elif case == "npy-strings":
        io.save_npy(arr, np.full((6, 110), "a"))
    elif case == "rows":
        io.save_npy(arr, scores[:2])
    elif case == "narrow":
        io.save_npy(arr, scores[:, :100])
    elif case == "no-positives":
        io.write_tsv(tsv, [seq2kmer(s, 3) for s in seqs], [0] * 6)
    elif case == "window-size":
        argv += ["--window_size", "0"]
    elif case == "pval":
        argv += ["--pval_cutoff", "0"]
    elif case == "max-abs-delta":
        argv += ["--max_abs_delta", "-1"]
    elif case.startswith("fasta-"):
        (tmp / "new.fa").write_text("".join(f">r{i}\n{s}\n" for i, s in enumerate(seqs)))
        io.save_npy(npy / "atten_new.npy", scores)
        argv = [*argv[2:4], *argv[6:], "--fasta", str(tmp / "new.fa")]  # the outputs' name: new
        argv += ["--data_dir", str(data)] if case == "fasta-and-data-dir" else []
    else:
        raise AssertionError(case)
    return argv


# ---------------------------------------------------------------------------- the checks
def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file and folder below ``folder``: relative name -> bytes (None for a folder)."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in sorted(folder.rglob("*"))}


def message_regex(case: Case, tmp: Path) -> re.Pattern:
    parts = re.split(r"(\{file\}|…)", case.message)
    out = []
    for part in parts:
        if part == "{file}":
            out.append(re.escape(str(tmp / case.file)))
        elif part == "…":
            out.append(".*")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out) + "$")


def check_error(err: str, case: Case, tmp: Path, prog: str = r"\S+") -> None:
    """One non-empty line, ``PROG: error: MESSAGE``, no traceback."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    match = re.match(rf"^{prog}: error: (.*)$", lines[0])
    assert match, lines[0]
    assert message_regex(case, tmp).search(match.group(1)), f"\n  got:  {match.group(1)}\n  want: {case.message}"


def run_case(main, build, case: Case, tmp: Path, capsys) -> None:
    argv = build(case.id, tmp)
    before = snapshot(tmp)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    check_error(err, case, tmp)
    assert not (tmp / "PWNED").exists(), "a pickle ran code"
    assert snapshot(tmp) == before, "files changed"


def _ids(table: list[Case]) -> list:
    assert len({c.id for c in table}) == len(table)
    return [pytest.param(c, id=c.id) for c in table]


@pytest.mark.parametrize("case", _ids(GET_INPUT))
def test_get_input(case, tmp_path, capsys):
    import get_input

    run_case(get_input.main, build_get_input, case, tmp_path, capsys)


@pytest.mark.parametrize("case", _ids(RUN_PRETRAIN))
def test_run_pretrain(case, tmp_path, capsys):
    import run_pretrain

    run_case(run_pretrain.main, build_run_pretrain, case, tmp_path, capsys)


@pytest.mark.parametrize("case", _ids(RUN_FINETUNE))
def test_run_finetune_degradation(case, tmp_path, capsys):
    import run_finetune_degradation

    run_case(run_finetune_degradation.main, build_run_finetune, case, tmp_path, capsys)


@pytest.mark.parametrize("case", _ids(RUN_PREDICT))
def test_run_predict_degradation(case, tmp_path, capsys):
    import run_predict_degradation

    run_case(run_predict_degradation.main, build_run_predict, case, tmp_path, capsys)


@pytest.mark.parametrize("case", _ids(VISUALIZE))
def test_visualize_all(case, tmp_path, capsys):
    import visualize_all

    run_case(visualize_all.main, build_visualize, case, tmp_path, capsys)


@pytest.mark.parametrize("case", _ids(FIND_MOTIFS))
def test_find_motifs(case, tmp_path, capsys):
    import find_motifs

    run_case(find_motifs.main, build_find_motifs, case, tmp_path, capsys)


# script -> (table, builder, the case run in a real process)
SCRIPTS = {
    "get_input.py": (GET_INPUT, build_get_input, "illegal-letter"),
    "run_pretrain.py": (RUN_PRETRAIN, build_run_pretrain, "pickle"),
    "run_finetune_degradation.py": (RUN_FINETUNE, build_run_finetune, "pickle"),
    "run_predict_degradation.py": (RUN_PREDICT, build_run_predict, "pickle"),
    "visualize_all.py": (VISUALIZE, build_visualize, "pickle"),
    "find_motifs.py": (FIND_MOTIFS, build_find_motifs, "npy-pickle"),
}
LOG_RECORD = re.compile(r"^\d\d/\d\d/\d{4} \d\d:\d\d:\d\d - (INFO|WARNING) - ")


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_real_process(script, tmp_path):
    """The real exit status and stderr: log records (INFO, WARNING) may precede the one error line."""
    table, build, case_id = SCRIPTS[script]
    case = next(c for c in table if c.id == case_id)
    argv = build(case.id, tmp_path)
    before = snapshot(tmp_path)
    proc = subprocess.run([sys.executable, script, *argv], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines and all(LOG_RECORD.match(ln) for ln in lines[:-1]), proc.stderr[-2000:]
    check_error(lines[-1], case, tmp_path, prog=re.escape(script))
    assert not (tmp_path / "PWNED").exists(), "a pickle ran code"
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------------------- the README table
# the further tables, each a module-level CASES list of (script, Case) in a test module of its own
MORE_TABLES = ("test_errors_get_input", "test_errors_flags", "test_errors_checkpoints", "test_errors_integrity",
               "test_variants", "test_export", "test_errors_shards", "test_errors_escapes", "test_leakage")


def all_cases() -> list[tuple[str, Case]]:
    """Every case of every table: this module's, then :data:`MORE_TABLES`'."""
    import importlib

    cases = [(script, c) for script, (table, _, _) in SCRIPTS.items() for c in table]
    for name in MORE_TABLES:
        cases += importlib.import_module(name).CASES
    return cases


def markdown_rows(cases: list[tuple[str, Case]]) -> str:
    """The Markdown rows of ``(script, Case)`` pairs: script | bad input | what the user sees."""
    rows = []
    for script, c in cases:
        msg = c.message.replace("{file}", c.file or "").replace("|", "\\|")
        rows.append(f"| `{script}` | {c.what.replace('|', chr(92) + '|')} | `{msg}` |")
    return "".join(row + "\n" for row in rows)


def readme_table() -> str:
    """The Markdown table of every case: script | bad input | what the user sees."""
    header = "| script | bad input | what the user sees (`SCRIPT: error: ` then) |\n|---|---|---|\n"
    return header + markdown_rows(all_cases())


ERRORS_PAGE = ROOT / "docs" / "errors.md"


def errors_page() -> str:
    """``docs/errors.md``, generated: what a refusal looks like, then every case of every table."""
    tables = ", ".join(f"`tests/{name}.py`" for name in MORE_TABLES)
    return f"""# Errors

Bad input ends with one line on stderr naming the file, record and problem, exit status 2, no
traceback, and no partial or overwritten outputs (everything is checked before the first write, and
every file and checkpoint folder is written to a temporary name and renamed into place).

This page is generated (`python tests/test_errors.py > docs/errors.md`; a test keeps it in step).
Each row is a test case of `tests/test_errors.py` or of the tables it names ({tables}): the script
runs on otherwise good inputs with one thing spoilt, and must exit with status 2, print the one line
shown (after `SCRIPT: error: `; paths are named after the flag that gives them, `…` is any text) and
leave every file as it was. A pickle that would run code (`pytorch_model.bin`, `optimizer.pt`, an
object `.npy`) is refused without running it; `training_args.bin` is never opened.

{readme_table()}"""


def test_the_errors_page_lists_every_case():
    assert ERRORS_PAGE.read_text(encoding="utf-8") == errors_page(), (
        "docs/errors.md is out of date: run `python tests/test_errors.py > docs/errors.md`")


if __name__ == "__main__":
    print(errors_page(), end="")


def test_impossible_accumulation_is_refused_before_writing(tmp_path, capsys):
    """More accumulation steps than batches per epoch would never step: refused, nothing written."""
    from toy import tiny_pretrained, write_corpus, write_split_dir

    import run_finetune_degradation
    import run_pretrain

    data = write_split_dir(tmp_path / "data", n=16)
    pre = tiny_pretrained(tmp_path / "pre")
    corpus = write_corpus(tmp_path / "corpus.txt", n=20)
    runs = [(run_finetune_degradation.main, ["--model_name_or_path", str(pre), "--do_train", "--data_dir", str(data),
                                             "--max_seq_length", "64", "--per_gpu_train_batch_size", "8",
                                             "--gradient_accumulation_steps", "5", "--output_dir", str(tmp_path / "a")]),
            (run_pretrain.main, ["--model_type", "dna", "--tokenizer_name", "dna3", "--config_name", "tiny",
                                 "--train_data_file", str(corpus), "--per_gpu_train_batch_size", "8",
                                 "--gradient_accumulation_steps", "50", "--output_dir", str(tmp_path / "b")])]
    for main, argv in runs:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and "gradient_accumulation_steps" in err and len(err.strip().splitlines()) == 1
        assert not Path(argv[-1]).exists()
