"""Our model format: ``model.safetensors`` (state dict) + ``config.json`` (build arguments
and the class vocabulary ``classes``: [{id, name, is_thing}], which every exporter carries
into the bundle).

Loading never unpickles: weights come from safetensors, the architecture from the variants
table via ``build_model(**config)``; the vocabulary is put in ``model.config["classes"]``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from ..contract import limits as L
from ..contract.files import read_regular
from ..contract.manifest import normalize_classes
from ..errors import ConfigError
from .safe_read import read_safetensors

__all__ = [
    "CONFIG_NAME",
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "WeightsError",
    "load_model",
    "load_model_grown",
    "read_classes",
    "save_model",
]

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
FORMAT_VERSION = 1
_BUILD_KEYS = ("variant", "num_classes", "deform", "class_prototypes")


def _paths(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    if path.suffix == ".safetensors":
        return path, path.with_name(CONFIG_NAME)
    return path / WEIGHTS_NAME, path / CONFIG_NAME


def save_model(model: torch.nn.Module, dir_or_file: str | Path, *, classes: Any = None) -> Path:
    """Write ``model.safetensors`` + ``config.json`` into a directory (created if needed), or
    to ``X.safetensors`` with ``config.json`` beside it. Returns the weights path.

    Arguments:
      classes: the class vocabulary (C entries with id, name, is_thing); default
        ``model.config["classes"]``; None there too writes no vocabulary (exporters then
        need one given explicitly).
    Raises:
      ValueError: the model was not built with ``build_model``; ManifestError: bad classes.
    """
    weights, config = _paths(dir_or_file)
    weights.parent.mkdir(parents=True, exist_ok=True)
    cfg = dict(getattr(model, "config", {}))
    missing = [k for k in _BUILD_KEYS if k not in cfg]
    if missing:
        raise ValueError(f"model.config lacks {missing}; build models with build_model()")
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(weights), metadata={"format_version": str(FORMAT_VERSION)})
    info = {
        "format_version": FORMAT_VERSION,
        **{k: cfg[k] for k in _BUILD_KEYS},
        "input_size": model.input_size,
        "pad_divisor": model.pad_divisor,
        "feat_stride": model.feat_stride,
        "num_queries": model.num_queries,
    }
    if classes is None:
        classes = cfg.get("classes")
    if classes is not None:
        entries = normalize_classes(classes)
        if len(entries) != model.num_classes:
            raise ValueError(f"{len(entries)} classes for a model with {model.num_classes}")
        info["classes"] = [c.to_dict() for c in entries]
    config.write_text(json.dumps(info, indent=2) + "\n")
    return weights


class WeightsError(ConfigError):
    """Saved weights (``model.safetensors`` + ``config.json``) that cannot be read."""

    default_hint = (
        "give a directory written by `rapsam-edge train` / `convert --out` (model.safetensors "
        "+ config.json), or a bundle's weights"
    )


def _read_config(config: Path) -> dict[str, Any]:
    """``config.json`` beside the weights: a regular file under ``MAX_CONFIG_BYTES``, JSON
    nested at most ``MAX_NESTING`` deep, an object."""
    raw = read_regular(config, "weights config", WeightsError, max_bytes=L.MAX_CONFIG_BYTES)
    if L.json_nesting(raw) > L.MAX_NESTING:
        raise WeightsError(f"{config}: JSON nested deeper than {L.MAX_NESTING} levels")
    try:
        cfg = json.loads(raw)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise WeightsError(f"{config}: not JSON ({e})") from None
    if not isinstance(cfg, dict):
        raise WeightsError(f"{config}: not a JSON object")
    return cfg


def _load_weights(weights: Path) -> dict[str, torch.Tensor]:
    return read_safetensors(weights, "weights", WeightsError, max_bytes=L.MAX_CHECKPOINT_BYTES)


def _build_saved(path: str | Path) -> tuple[torch.nn.Module, dict[str, torch.Tensor], str]:
    """Check ``config.json``, read the weights (sizes checked, ``safe_read``), check the
    size of the model the config describes (built on the meta device) against the weights'
    (a config cannot ask for a model much larger than its weights), and build the variant (fresh weights) as the current
    code defines it. Returns (model, saved tensors, variant name).

    Raises:
      WeightsError: unreadable / malformed config or weights, or a config the weights
        contradict."""
    from .variants import build_model

    weights, config = _paths(path)
    cfg = _read_config(config)
    if cfg.get("format_version") != FORMAT_VERSION:
        raise WeightsError(f"{config}: unsupported format_version {cfg.get('format_version')!r}")
    missing = [k for k in _BUILD_KEYS if k not in cfg]
    if missing:
        raise WeightsError(f"{config}: lacks {missing}")
    saved = _load_weights(weights)
    args = {k: cfg[k] for k in ("num_classes", "deform", "class_prototypes")}
    try:
        with torch.device("meta"):  # sizes only: nothing allocated yet
            need = sum(t.nbytes for t in build_model(cfg["variant"], **args).state_dict().values())
        have = sum(t.nbytes for t in saved.values())
        if need > 2 * have + 2**26:
            raise WeightsError(
                f"{config}: describes a model of {need} bytes for {have} bytes of weights"
            )
        model = build_model(cfg["variant"], **args)
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, WeightsError):
            raise
        raise WeightsError(f"{config}: cannot build the model it describes ({e})") from e
    if cfg.get("classes") is not None:
        model.config["classes"] = [c.to_dict() for c in normalize_classes(cfg["classes"])]
    return model, saved, cfg["variant"]


def read_classes(path: str | Path) -> list[dict[str, Any]] | None:
    """The class vocabulary saved with the weights at ``path`` (None if it has none)."""
    _, config = _paths(path)
    classes = _read_config(config).get("classes")
    return None if classes is None else [c.to_dict() for c in normalize_classes(classes)]


def load_model(path: str | Path, *, map_location: str = "cpu") -> torch.nn.Module:
    """Rebuild a model from a directory (or a ``.safetensors`` file with ``config.json``
    beside it) and load its weights strictly. Returns the model in eval mode."""
    model, saved, _ = _build_saved(path)
    try:
        model.load_state_dict(saved, strict=True)
    except RuntimeError as e:  # missing / unexpected / mis-shaped tensors
        raise WeightsError(f"{path}: weights do not fit the model ({str(e)[:300]})") from e
    return model.to(map_location).eval()


def load_model_grown(
    path: str | Path, *, map_location: str = "cpu"
) -> tuple[torch.nn.Module, list[str]]:
    """Build the saved model's variant as the CURRENT code defines it and carry the saved
    weights over, for fine-tuning after the architecture gained inputs or modules.

    A tensor with the same name and shape is copied; one whose only change is a larger input
    dimension (dim 1, e.g. a 1x1 conv that gained input channels) gets the saved values in its
    leading slice and zeros in the new part, so the carried-over function is unchanged; any
    other tensor keeps its fresh initialisation. Returns (model in train mode, the names of
    the tensors that were not fully carried over).
    """
    model, saved, variant = _build_saved(path)
    state = model.state_dict()
    fresh = []
    for name, target in state.items():
        old = saved.get(name)
        if old is not None and old.shape == target.shape:
            target.copy_(old)
        elif (
            old is not None
            and old.dim() >= 2
            and old.shape[0] == target.shape[0]
            and old.shape[2:] == target.shape[2:]
            and old.shape[1] < target.shape[1]
        ):
            target.zero_()
            target[:, : old.shape[1]].copy_(old)
            fresh.append(name)
        else:
            fresh.append(name)
    unused = sorted(set(saved) - set(state))
    if unused:
        raise WeightsError(f"{path}: tensors the current {variant} lacks: {unused[:5]}")
    return model.to(map_location), fresh
