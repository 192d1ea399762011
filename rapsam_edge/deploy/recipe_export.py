"""Weights -> a bundle for one target device, following a recipe (``recipes.RECIPES``):
FP32 export, then for quantized recipes ``rapsam-edge quantize`` with its accuracy gate, then
a check that the bundle loads and (where this machine has the recipe's backend) runs.

Used by ``export/quantize_and_export.py`` and ``rapsam-edge convert --export``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .recipes import RECIPES

__all__ = ["export_with_recipe"]


def export_with_recipe(
    model,
    out: str | Path,
    *,
    recipe: str,
    calib: str | Path | None = None,
    val: str | Path | None = None,
    provenance: Mapping[str, Any] | None = None,
    classes=None,
) -> Path:
    """Write the bundle ``out`` for ``recipe`` from a torch ``model`` and check it.

    Raises:
      ConfigError: unknown recipe, or a quantized recipe without ``calib``.
      RuntimeError: the quantization gate or the run check failed (message says which).
    """
    import numpy as np

    from ..bundle import load_bundle
    from ..runtime.registry import available_backends
    from ..runtime.segmenter import Segmenter
    from .bundle_writer import export_bundle

    if recipe not in RECIPES:
        raise ConfigError(f"unknown recipe {recipe!r}; known: {sorted(RECIPES)}")
    r = RECIPES[recipe]
    if r.precision is not None and calib is None:
        raise ConfigError(
            f"recipe {recipe} quantizes: calibration data is required",
            hint="pass --calib DATA (and --val DATA for the accuracy gate)",
        )
    out = Path(out)
    tmp = tempfile.TemporaryDirectory()  # the FP32 bundle a quantized recipe starts from
    fp32_out = out if r.precision is None else Path(tmp.name) / (out.name + "-fp32")
    try:
        bundle_dir = export_bundle(
            model,
            fp32_out,
            name=fp32_out.name,
            classes=classes,
            formats=r.formats,
            input_size=r.input_size,
            provenance={**dict(provenance or {}), "recipe": recipe, "target_backend": r.backend},
        )
        if r.precision is not None:
            from ..cli import main as cli

            argv = ["quantize", str(bundle_dir), "--to", r.precision]
            argv += ["--backend", r.quantize_backend, "--calib", str(calib)]
            argv += ["--out", str(out), "--overwrite"]
            if val is not None:
                argv += ["--val", str(val)]
            if cli(argv):
                raise RuntimeError(f"quantization for recipe {recipe} failed (see above)")
            bundle_dir = out
    finally:
        tmp.cleanup()
    bundle = load_bundle(bundle_dir)
    if r.backend in available_backends(bundle):
        seg = Segmenter(bundle, backend=r.backend)
        frame = np.zeros((240, 320, 3), np.uint8)
        seg.panoptic(frame)
        seg.prompt(seg.set_image(frame), points=[(160, 120)])
        seg.close()
        print(f"{bundle_dir}: every graph runs on {r.backend}")
    else:
        print(f"{bundle_dir}: written; backend {r.backend} is not available on this machine")
    return bundle_dir
