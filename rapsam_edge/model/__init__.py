"""RAP-SAM in plain PyTorch (training side; imports torch when its parts are used).

``build_model(name)`` builds a variant from ``VARIANTS``; ``RapSam`` documents the forward
contract; ``save_model`` / ``load_model`` read and write safetensors + config.json.

The names below are imported on first use (PEP 562): importing this package alone does not
import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> submodule defining it
_LAZY = {
    "VARIANTS": "variants",
    "Variant": "variants",
    "build_model": "variants",
    "RapSam": "rapsam",
    "load_model": "io",
    "save_model": "io",
    "points_to_boxes": "prompt_encoder",
}

# written out for static tools (ruff, mypy, IDEs); tests/test_model_forward.py checks it names _LAZY
__all__ = [
    "VARIANTS",
    "RapSam",
    "Variant",
    "build_model",
    "load_model",
    "points_to_boxes",
    "save_model",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
