"""Hostile or broken checkpoints (issue 10): exit status 2, one line on stderr, nothing on disk changed.

A checkpoint's ``config.json`` is checked before any model is built: types and ranges of its keys,
and its sizes against the shapes of its weights, so a 150 KB checkpoint that claims ten million
layers or a 10**9-wide feed-forward layer is refused at once instead of allocating until memory runs
out. Unreadable files (a folder, a symlink loop, text that is not UTF-8) and weights holding NaN or
infinite values are refused too. The cases run through the real commands' ``main`` under a cap on
the address space, so a loader that still allocated would fail here rather than exhaust the machine.

:data:`CASES` holds ``(script, Case)`` pairs; ``python tests/test_errors_checkpoints.py`` prints
them as rows of docs/errors.md. The files of a saved checkpoint follow the umask, and
:func:`m6abert.model.check_positions` is tested at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import stat
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "tests"):  # for `python tests/test_errors_checkpoints.py`
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from test_errors import FT_FAST, Case, check_error, markdown_rows, run_case  # noqa: E402
from toy import tiny_classifier, tiny_pretrained, write_corpus, write_fasta, write_split_dir  # noqa: E402

from m6abert import io  # noqa: E402
from m6abert.utils import InputError  # noqa: E402

EXTRA_ADDRESS_SPACE = 2 << 30  # a refused load may map at most this much more memory
LOOP = "Too many levels of symbolic links"

# ---------------------------------------------------------------------------- the spoilers
# id -> (config.json key, bad value, what, message); the message's {file} is the checkpoint's config.json
CONFIG_SPOILS = {
    "layers-huge": ("num_hidden_layers", 10_000_000, "`config.json` claiming 10000000 layers (2 in the weights)",
                    "{file}: num_hidden_layers 10000000, but the weights hold 2 layers"),
    "intermediate-huge": ("intermediate_size", 1_000_000_000, "`intermediate_size` 1000000000 (256 in the weights)",
                          "{file}: intermediate_size 1000000000, but the weights' feed-forward layers are 256 wide"),
    "positions-huge": ("max_position_embeddings", 100_000_000, "`max_position_embeddings` 100000000",
                       "{file}: max_position_embeddings 100000000, but the weights hold 512 positions"),
    "types-huge": ("type_vocab_size", 1_000_000, "`type_vocab_size` 1000000",
                   "{file}: type_vocab_size 1000000, but the weights hold 2 token types"),
    "hidden-mismatch": ("hidden_size", 128, "`hidden_size` 128 for 64-wide weights",
                        "{file}: hidden_size 128, but the weights are 64 wide"),
    "hidden-string": ("hidden_size", "64", '`hidden_size` "64" (a string)',
                      '{file}: hidden_size must be a whole number, not "64"'),
    "layers-float": ("num_hidden_layers", 2.0, "`num_hidden_layers` 2.0 (a float)",
                     "{file}: num_hidden_layers must be a whole number, not 2.0"),
    "intermediate-float": ("intermediate_size", 1e9, "`intermediate_size` 1e9 (a float)",
                           "{file}: intermediate_size must be a whole number, not 1000000000.0"),
    "hidden-negative": ("hidden_size", -64, "`hidden_size` -64",
                        "{file}: hidden_size must be at least 1, not -64"),
    "hidden-act": ("hidden_act", "evil", '`hidden_act` "evil"',
                   '{file}: hidden_act "evil" is not an activation transformers knows (e.g. gelu, gelu_new, relu, silu, tanh)'),
    "heads-zero": ("num_attention_heads", 0, "`num_attention_heads` 0",
                   "{file}: num_attention_heads must be at least 1, not 0"),
    "heads-divide": ("num_attention_heads", 3, "`num_attention_heads` 3 for `hidden_size` 64",
                     "{file}: hidden_size 64 is not a multiple of num_attention_heads 3"),
    "pad-token": ("pad_token_id", 1000, "`pad_token_id` 1000 (69 tokens)",
                  "{file}: pad_token_id 1000 is outside the vocabulary (0..68)"),
    "dropout": ("hidden_dropout_prob", 1.5, "`hidden_dropout_prob` 1.5",
                "{file}: hidden_dropout_prob must be between 0 and 1, not 1.5"),
    "layer-norm-eps": ("layer_norm_eps", -1.0, "`layer_norm_eps` -1.0",
                       "{file}: layer_norm_eps must be above 0, not -1.0"),
}
# id -> (file of the checkpoint, how it is spoilt, what, message); {file} is that file
FILE_SPOILS = {
    "config-dir": ("config.json", "dir", "`config.json` is a directory",
                   "{file}: is a directory, expected a checkpoint config.json"),
    "config-loop": ("config.json", "loop", "`config.json` is a symlink loop",
                    f"{{file}}: cannot read checkpoint config.json ({LOOP})"),
    "config-not-utf8": ("config.json", "latin1", "`config.json` not UTF-8",
                        "{file}: not UTF-8 text at byte …, expected a checkpoint config.json"),
    "vocab-dir": ("vocab.txt", "dir", "`vocab.txt` is a directory", "{file}: is a directory, expected a k-mer vocabulary"),
    "vocab-loop": ("vocab.txt", "loop", "`vocab.txt` is a symlink loop",
                   f"{{file}}: cannot read k-mer vocabulary ({LOOP})"),
    "vocab-not-utf8": ("vocab.txt", "latin1", "`vocab.txt` not UTF-8",
                       "{file}: not UTF-8 text at byte …, expected a k-mer vocabulary"),
    "weights-loop": ("model.safetensors", "loop", "`model.safetensors` is a symlink loop",
                     f"{{file}}: cannot read weights file ({LOOP})"),
}
NAN_MESSAGE = ("{file}: weights hold NaN or infinite values (1 of %d tensors, first: %s); "
               "the checkpoint is not usable")
NAN_CLASSIFIER = "bert.encoder.layer.1.output.dense.bias"  # of 41 tensors in tiny_classifier
INF_PRETRAINED = "bert.embeddings.word_embeddings.weight"  # of 42 tensors in tiny_pretrained


def spoil_checkpoint(case: str, ckpt: Path) -> None:
    """Spoil the checkpoint folder ``ckpt`` as case ``case`` (a CONFIG_SPOILS, FILE_SPOILS or nan id)."""
    case = case.removesuffix("-fasta").removesuffix("-tsv")
    if case in CONFIG_SPOILS:
        key, value = CONFIG_SPOILS[case][:2]
        cfg = json.loads((ckpt / "config.json").read_text())
        (ckpt / "config.json").write_text(json.dumps({**cfg, key: value}, indent=2))
    elif case in FILE_SPOILS:
        name, how = FILE_SPOILS[case][:2]
        path = ckpt / name
        if how == "latin1":
            path.write_bytes(path.read_bytes().replace(b"\n", " # caf\xe9\n".encode("latin-1"), 1))
            return
        path.unlink()
        if how == "dir":
            path.mkdir()
            (path / "note.txt").write_text("a folder where a file should be\n")
        else:  # two links pointing at each other
            os.symlink(f"{name}.other", path)
            os.symlink(name, ckpt / f"{name}.other")
    elif case in ("nan", "inf"):
        import torch
        from safetensors.torch import load_file, save_file

        weights = load_file(ckpt / "model.safetensors")
        name = NAN_CLASSIFIER if case == "nan" else INF_PRETRAINED
        weights[name] = weights[name].clone()
        weights[name].view(-1)[3] = float("nan") if case == "nan" else float("inf")
        save_file(weights, ckpt / "model.safetensors", metadata={"format": "pt"})
        assert torch.isfinite(weights["bert.embeddings.LayerNorm.weight"]).all()
    else:
        raise AssertionError(case)


def config_case(case: str, folder: str, suffix: str = "") -> Case:
    _, _, what, message = CONFIG_SPOILS[case]
    return Case(case + suffix, what, message, f"{folder}/config.json")


def file_case(case: str, folder: str) -> Case:
    name, _, what, message = FILE_SPOILS[case]
    return Case(case, what, message, f"{folder}/{name}")


# ---------------------------------------------------------------------------- the table
PREDICT = [
    *(config_case(c, "OUTPUT_DIR") for c in CONFIG_SPOILS),
    *(file_case(c, "OUTPUT_DIR") for c in FILE_SPOILS),
    Case("nan-fasta", "weights holding NaN, `--predict_fasta`", NAN_MESSAGE % (41, NAN_CLASSIFIER), "OUTPUT_DIR"),
    Case("nan-tsv", "weights holding NaN, labelled `test.tsv`", NAN_MESSAGE % (41, NAN_CLASSIFIER), "OUTPUT_DIR"),
]
VISUALIZE = [
    config_case("layers-huge", "MODEL_PATH"),
    config_case("intermediate-huge", "MODEL_PATH"),
    file_case("config-dir", "MODEL_PATH"),
    Case("nan", "weights holding NaN", NAN_MESSAGE % (41, NAN_CLASSIFIER), "MODEL_PATH"),
]
FINETUNE = [
    config_case("layers-huge", "MODEL_PATH"),
    config_case("hidden-act", "MODEL_PATH"),
    file_case("vocab-loop", "MODEL_PATH"),
    Case("inf", "pretrained weights holding inf", NAN_MESSAGE % (42, INF_PRETRAINED), "MODEL_PATH"),
]
PRETRAIN = [
    config_case("layers-huge", "MODEL_PATH"),
    config_case("heads-zero", "MODEL_PATH"),
    Case("inf", "weights holding inf", NAN_MESSAGE % (42, INF_PRETRAINED), "MODEL_PATH"),
    Case("config-name-string", '`--config_name` JSON with `hidden_size` "64"',
         '{file}: hidden_size must be a whole number, not "64"', "config.json"),
    Case("config-name-huge", "`--config_name` JSON with 10000000 layers",
         "{file}: the sizes ask for a model of about 4.9e+11 parameters (num_hidden_layers 10000000, hidden_size 64, "
         "intermediate_size 256, max_position_embeddings 512), over the limit of 1e+10", "config.json"),
]
CASES = [
    *(("run_predict_degradation.py", c) for c in PREDICT),
    *(("visualize_all.py", c) for c in VISUALIZE),
    *(("run_finetune_degradation.py", c) for c in FINETUNE),
    *(("run_pretrain.py", c) for c in PRETRAIN),
]


# ---------------------------------------------------------------------------- the builders
def build_predict(case: str, tmp: Path) -> list[str]:
    data, model, pred = tmp / "DATA_DIR", tmp / "OUTPUT_DIR", tmp / "PREDICT_DIR"
    write_split_dir(data, n=8)
    tiny_classifier(model)
    io.save_npy(pred / "pred_results.npy", np.zeros(3, dtype=np.float32))  # an earlier run's outputs
    io.write_text(pred / "predictions.tsv", "row\tprobability\tpredicted_label\n0\t0.5\t0\n")
    argv = ["--data_dir", str(data), "--output_dir", str(model), "--predict_dir", str(pred), "--do_predict",
            "--max_seq_length", "64"]
    if case.endswith("-fasta"):
        write_fasta(tmp / "new.fa", [io.FastaRecord("r1", "ACGT" * 10), io.FastaRecord("r2", "TTGCA" * 8)])
        argv += ["--predict_fasta", str(tmp / "new.fa")]
    spoil_checkpoint(case, model)
    return argv


def build_visualize(case: str, tmp: Path) -> list[str]:
    data, model, out = tmp / "DATA_DIR", tmp / "MODEL_PATH", tmp / "OUTPUT_DIR"
    write_split_dir(data, n=8)
    tiny_classifier(model)
    io.save_npy(out / "atten_dev.npy", np.zeros((2, 3)))  # an earlier run's output
    spoil_checkpoint(case, model)
    return ["--model_path", str(model), "--data_dir", str(data), "--data_name", "dev", "--vis_task", "attn",
            "--output_dir", str(out), "--max_seq_length", "64"]


def build_finetune(case: str, tmp: Path) -> list[str]:
    data, out, model = tmp / "DATA_DIR", tmp / "OUTPUT_DIR", tmp / "MODEL_PATH"
    write_split_dir(data, n=8)
    tiny_pretrained(model)
    spoil_checkpoint(case, model)
    return [*FT_FAST, "--model_name_or_path", str(model), "--do_train", "--data_dir", str(data), "--output_dir",
            str(out), "--max_steps", "1"]


def build_pretrain(case: str, tmp: Path) -> list[str]:
    data, out, model = tmp / "DATA_DIR", tmp / "OUTPUT_DIR", tmp / "MODEL_PATH"
    train = write_corpus(data / "train.txt", 8, seed=1)
    common = ["--train_data_file", str(train), "--do_train", "--output_dir", str(out), "--max_steps", "1",
              "--per_gpu_train_batch_size", "4", "--seed", "1"]
    if case.startswith("config-name-"):
        key, value = ("hidden_size", "64") if case == "config-name-string" else ("num_hidden_layers", 10_000_000)
        cfg = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 256,
               "max_position_embeddings": 512, "vocab_size": 69, key: value}
        (tmp / "config.json").write_text(json.dumps(cfg))
        return ["--config_name", str(tmp / "config.json"), "--tokenizer_name", "dna3", *common]
    tiny_pretrained(model)
    spoil_checkpoint(case, model)
    return ["--model_name_or_path", str(model), *common]


# ---------------------------------------------------------------------------- the checks
def vm_size() -> int:
    """The address space this process has mapped, in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise OSError("no VmSize in /proc/self/status")


@contextlib.contextmanager
def address_space_cap(extra: int = EXTRA_ADDRESS_SPACE):
    """Let the block map at most ``extra`` more bytes: a loader that allocates what a hostile config
    asks for fails with MemoryError here instead of exhausting the machine."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    try:
        limit = vm_size() + extra
    except OSError:
        yield
        return
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def snapshot_links(folder: Path) -> dict[str, object]:
    """``test_errors.snapshot``, with symlinks (loops included) recorded by their target."""
    out: dict[str, object] = {}
    for p in sorted(folder.rglob("*")):
        name = str(p.relative_to(folder))
        out[name] = ("->", os.readlink(p)) if p.is_symlink() else None if p.is_dir() else p.read_bytes()
    return out


def run_case_links(main, build, case: Case, tmp: Path, capsys) -> None:
    """:func:`test_errors.run_case` for a test folder holding symlink loops (which ``snapshot`` cannot read)."""
    argv = build(case.id, tmp)
    before = snapshot_links(tmp)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    check_error(err, case, tmp)
    assert snapshot_links(tmp) == before, "files changed"


SCRIPTS = {
    "run_predict_degradation.py": ("run_predict_degradation", build_predict),
    "visualize_all.py": ("visualize_all", build_visualize),
    "run_finetune_degradation.py": ("run_finetune_degradation", build_finetune),
    "run_pretrain.py": ("run_pretrain", build_pretrain),
}


def _params() -> list:
    ids = [f"{script.removesuffix('.py')}-{c.id}" for script, c in CASES]
    assert len(set(ids)) == len(ids)
    return [pytest.param(script, c, id=i) for i, (script, c) in zip(ids, CASES, strict=True)]


@pytest.mark.parametrize("script, case", _params())
def test_bad_checkpoint(script, case, tmp_path, capsys):
    import importlib

    module, build = SCRIPTS[script]
    main = importlib.import_module(module).main
    with address_space_cap():
        if "loop" in case.id:
            run_case_links(main, build, case, tmp_path, capsys)
        else:
            run_case(main, build, case, tmp_path, capsys)


@pytest.mark.parametrize("case", ["layers-huge", "intermediate-huge", "positions-huge"])
def test_huge_config_is_refused_at_once(case, tmp_path):
    """Nothing is built: the refusal is quick (well under a second on an idle machine) and needs no memory to speak of."""
    from m6abert.model import load_model

    ckpt = tiny_classifier(tmp_path / "ckpt")
    load_model(str(ckpt), "classification")  # warm: transformers' lazy imports
    spoil_checkpoint(case, ckpt)
    with address_space_cap(256 << 20):
        start = time.perf_counter()
        with pytest.raises(InputError, match=CONFIG_SPOILS[case][0]):
            load_model(str(ckpt), "classification", fine_tuned=True)
        assert time.perf_counter() - start < 5  # generous for a loaded CI machine; the memory cap is the real check


def test_config_values_are_checked_and_plain_json_numbers_accepted():
    from m6abert.model import check_config_values

    ok = check_config_values({"hidden_size": 64, "layer_norm_eps": 1, "initializer_range": 0}, "c.json")
    assert ok == {"hidden_size": 64, "layer_norm_eps": 1.0, "initializer_range": 0.0}
    assert all(isinstance(ok[key], float) for key in ("layer_norm_eps", "initializer_range"))
    for cfg, message in (({"hidden_size": True}, "hidden_size must be a whole number, not true"),
                         ({"vocab_size": None}, "vocab_size must be a whole number, not null"),
                         ({"initializer_range": float("nan")}, "initializer_range must be a finite number, not NaN"),
                         ({"classifier_dropout": -0.1}, "classifier_dropout must be between 0 and 1, not -0.1"),
                         ({"hidden_act": ["gelu"]}, 'hidden_act \\["gelu"\\] is not an activation')):
        with pytest.raises(InputError, match=f"^c.json: {message}"):
            check_config_values(cfg, "c.json")
    assert check_config_values({"classifier_dropout": None, "pad_token_id": None}, "c.json")


def test_integer_layer_norm_eps_and_initializer_range_load(tmp_path):
    """JSON writes 1.0 as 1 in some tools: a float key given as an integer is still a float."""
    from m6abert.model import load_model

    ckpt = tiny_classifier(tmp_path / "ckpt")
    cfg = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps({**cfg, "initializer_range": 1, "layer_norm_eps": 1}))
    model, k = load_model(str(ckpt), fine_tuned=True)
    assert k == 3 and model.config.layer_norm_eps == 1.0 and isinstance(model.config.layer_norm_eps, float)
    assert isinstance(model.config.initializer_range, float)


# ---------------------------------------------------------------------------- file modes
@pytest.mark.parametrize("umask, mode", [(0o002, 0o664), (0o077, 0o600)], ids=["umask-002", "umask-077"])
def test_saved_checkpoint_files_follow_the_umask(tmp_path, umask, mode):
    import torch

    from m6abert.model import load_model

    old = os.umask(umask)
    try:
        ckpt = tiny_classifier(tmp_path / "src")
        model, k = load_model(str(ckpt), fine_tuned=True)
        io.save_checkpoint(tmp_path / "checkpoint-2", model, k, state={"optimizer.pt": {"step": torch.zeros(1)}},
                           extra_json={"trainer_state.json": {"global_step": 2}})
        io.save_model_files(tmp_path / "final", model, k)
    finally:
        os.umask(old)
    for folder in (ckpt, tmp_path / "checkpoint-2", tmp_path / "final"):
        modes = {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in folder.iterdir()}
        assert "model.safetensors" in modes and set(modes.values()) == {oct(mode)}, (folder.name, modes)
        assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~umask


# ---------------------------------------------------------------------------- check_positions
def test_check_positions(tmp_path):
    from m6abert.model import build_config, check_positions, new_model

    cfg = build_config("tiny", 3, max_position_embeddings=32)
    check_positions(cfg, 32, "ckpt")
    with pytest.raises(InputError, match=r"^--max_seq_length 61 exceeds the model's 32 positions \(MODEL_PATH\)$"):
        check_positions(cfg, 61, "MODEL_PATH")
    model = new_model(cfg, "classification")
    check_positions(model, 20, "ckpt")
    with pytest.raises(InputError, match=r"exceeds the model's 32 positions \(x/checkpoint-4\)"):
        check_positions(model, 33, "x/checkpoint-4")


# ---------------------------------------------------------------------------- the README rows
if __name__ == "__main__":
    print(markdown_rows(CASES), end="")
