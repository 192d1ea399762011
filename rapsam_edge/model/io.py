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
from safetensors.torch import load_file, save_file

from ..contract.manifest import normalize_classes

__all__ = [
    "CONFIG_NAME",
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
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


def _build_saved(path: str | Path) -> tuple[torch.nn.Module, Path, str]:
    """Check ``config.json`` and build its variant (fresh weights) as the current code
    defines it. Returns (model, weights path, variant name)."""
    from .variants import build_model

    weights, config = _paths(path)
    cfg = json.loads(config.read_text())
    if cfg.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"unsupported format_version {cfg.get('format_version')!r}")
    model = build_model(
        cfg["variant"],
        num_classes=cfg["num_classes"],
        deform=cfg["deform"],
        class_prototypes=cfg["class_prototypes"],
    )
    if cfg.get("classes") is not None:
        model.config["classes"] = [c.to_dict() for c in normalize_classes(cfg["classes"])]
    return model, weights, cfg["variant"]


def read_classes(path: str | Path) -> list[dict[str, Any]] | None:
    """The class vocabulary saved with the weights at ``path`` (None if it has none)."""
    _, config = _paths(path)
    classes = json.loads(config.read_text()).get("classes")
    return None if classes is None else [c.to_dict() for c in normalize_classes(classes)]


def load_model(path: str | Path, *, map_location: str = "cpu") -> torch.nn.Module:
    """Rebuild a model from a directory (or a ``.safetensors`` file with ``config.json``
    beside it) and load its weights strictly. Returns the model in eval mode."""
    model, weights, _ = _build_saved(path)
    model.load_state_dict(load_file(str(weights), device=map_location), strict=True)
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
    model, weights, variant = _build_saved(path)
    saved = load_file(str(weights), device=map_location)
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
        raise ValueError(f"{weights}: tensors the current {variant} lacks: {unused[:5]}")
    return model.to(map_location), fresh
