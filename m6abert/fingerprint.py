"""What determines a trained model, as a JSON record: a resumed run goes on only when its record matches.

A record holds a settings dataclass's fields and its optimisation settings (``.train``), less those
that only say where and how often results are written; the starting model by its identity
(:func:`~m6abert.io.checkpoints.model_identity`: config.json and weights, not its path); a
``--config_name`` file by its content; and the SHA-256 of each data file. Fine-tuning keeps it in
``run_settings.json``, cross-validation in ``cv_settings.json``, pretraining in ``run_settings.json``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path

from . import io
from .io.checkpoints import model_identity

RUN_SETTINGS = "run_settings.json"
NOT_MODEL_TRAIN = ("logging_dir", "save_steps", "save_total_limit")  # where and how often it is saved, not what
RUN_LENGTH = ("max_steps", "num_train_epochs")  # a resumed run may be made longer (or shorter)


def settings_record(settings, exclude: Iterable[str], base_model: str | None, config_name: str | None,
                    data: dict[str, Path], train_exclude: Iterable[str] = NOT_MODEL_TRAIN) -> dict:
    """The JSON record of ``settings`` (a settings dataclass with a ``train`` field), the starting model
    ``base_model`` by identity (None: a new model), a config file by content, and ``data`` by SHA-256."""
    from .model import PRESETS

    exclude, train_exclude = set(exclude) | {"train", "run_args"}, set(train_exclude)
    fp = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings) if f.name not in exclude}
    fp.update({f.name: getattr(settings.train, f.name) for f in dataclasses.fields(settings.train)
               if f.name not in train_exclude})
    fp["model_identity"] = model_identity(base_model) if base_model else None
    if config_name and config_name not in PRESETS:  # a config.json by its content
        fp.update(config_name=None, config_sha256=io.file_sha256(config_name))
    fp["data_sha256"] = {name: io.file_sha256(path) for name, path in data.items()}
    return json.loads(io.json_dumps(fp))


def differences(old: dict, new: dict) -> list[str]:
    """The keys whose values differ between two records."""
    return [key for key in (*new, *(key for key in old if key not in new)) if old.get(key) != new.get(key)]


def check_resume(folder: str | Path, record: dict, what: str) -> None:
    """A resumed run in ``folder`` goes on only when ``record`` equals the run's ``run_settings.json``
    (its length aside); without that record (an older version, or checkpoints copied alone) with a warning."""
    from .utils import InputError, log

    path = Path(folder) / RUN_SETTINGS
    if not path.exists():
        log.warning("%s: missing: cannot check that the checkpoints were trained with these settings and data", path)
        return
    old = {key: v for key, v in io.read_json(path, f"{what} settings").items() if key not in RUN_LENGTH}
    changed = differences(old, {key: v for key, v in record.items() if key not in RUN_LENGTH})
    if changed:
        raise InputError(f"{folder}: --should_continue with {what} settings or data that differ from the run there "
                         f"({', '.join(changed)}); start over with --overwrite_output_dir or use another --output_dir")
