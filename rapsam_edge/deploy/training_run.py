"""What a training run directory says about the model it holds, for export.

A run's ``config.json`` records the model's architecture, including ``input_size``: the
variant's default long side, not necessarily the size the run was trained at (the shipped
edge-s teacher's says 640; it was trained at 320). The size the weights were trained at is
``image_size`` of the run's ``train_config.json`` (written by ``rapsam-edge train`` and
``rapsam-edge distill``); an export that does not name a size uses it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..errors import ConfigError

__all__ = ["TRAIN_CONFIG", "export_input_size", "trained_input_size"]

log = logging.getLogger(__name__)

#: the training command's record of its settings, beside the weights
TRAIN_CONFIG = "train_config.json"


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"{path}: cannot read it as JSON ({e})",
            hint="restore the file from the run, or pass --input-size explicitly",
        ) from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a JSON object is expected", hint="pass --input-size")
    return data


def _run_dir(weights: str | Path) -> Path:
    path = Path(weights)
    return path.parent if path.suffix == ".safetensors" else path


def trained_input_size(weights: str | Path) -> int | None:
    """``image_size`` of the run's ``train_config.json`` (the long side the weights were
    trained at), or None when the run has no training record (weights saved by hand)."""
    path = _run_dir(weights) / TRAIN_CONFIG
    if not path.is_file():
        return None
    size = _read_json(path).get("image_size")
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ConfigError(
            f"{path}: image_size {size!r} is not a positive int",
            hint="pass --input-size explicitly",
        )
    return size


def export_input_size(weights: str | Path, requested: int | None = None) -> int | None:
    """The long side to export the run at: ``requested`` when given, else the size it was
    trained at (``trained_input_size``), else None (the model's default, ``config.json``).

    Logs a WARNING, when no size is requested, if the run's ``config.json`` records another ``input_size`` than the
    size the run was trained at (naming both, and which one the export uses): ``config.json``
    holds the model's build settings, whose ``input_size`` is the variant's default long side
    (``model.variants``), not the size of the training crops (``train_config.json``)."""
    trained = trained_input_size(weights)
    config_path = _run_dir(weights) / "config.json"
    recorded = _read_json(config_path).get("input_size") if config_path.is_file() else None
    chosen = requested if requested is not None else trained
    if requested is None and trained is not None and recorded is not None and recorded != trained:
        log.warning(
            "%s records input_size %s, but the run was trained at %s (%s image_size): "
            "exporting at %s (config.json's input_size is the variant's default long side, "
            "saved with the weights, not a record of training)",
            *(config_path, recorded, trained, TRAIN_CONFIG, chosen),
        )
    return chosen
