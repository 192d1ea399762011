"""Weights -> a bundle that the torch reference backend runs (ONNX graphs for the manifest plus
``model.safetensors``): how ``rapsam-edge eval --weights`` tests weights without exporting
them by hand."""

from __future__ import annotations

from pathlib import Path

__all__ = ["export_reference_bundle"]


def export_reference_bundle(weights: str | Path, out: str | Path, *, name: str) -> Path:
    """Write ``out``: the model saved at ``weights`` (safetensors + config.json, with the
    vocabulary saved beside it) as a bundle carrying its weights.

    Returns:
      The bundle directory.
    """
    from ..model.io import load_model
    from .bundle_writer import export_bundle

    model = load_model(weights)
    return export_bundle(model, Path(out), name=name, formats=("onnx",), include_weights=True)
