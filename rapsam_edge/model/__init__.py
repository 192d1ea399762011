"""RAP-SAM in plain PyTorch (training side only; imports torch).

``build_model(name)`` builds a variant from ``VARIANTS``; ``RapSam`` documents the forward
contract; ``save_model`` / ``load_model`` read and write safetensors + config.json.
"""

from .io import load_model, save_model
from .prompt_encoder import points_to_boxes
from .rapsam import RapSam
from .variants import VARIANTS, Variant, build_model

__all__ = [
    "VARIANTS",
    "RapSam",
    "Variant",
    "build_model",
    "load_model",
    "points_to_boxes",
    "save_model",
]
