"""Weights -> a bundle for one target device, following a recipe (``recipes.RECIPES``):
FP32 export, then for quantized recipes ``quantize.pipeline.quantize_bundle`` (the library
behind ``rapsam-edge quantize``) with its accuracy gate, then a check that the bundle loads
and (where this machine has the recipe's backend) runs.

Used by ``export/quantize_and_export.py`` and ``rapsam-edge convert --export``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .recipes import RECIPES
from .staging import check_target

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
    input_size: int | None = None,
    limits=None,
    **quantize_options: Any,
) -> Path:
    """Write the bundle ``out`` for ``recipe`` from a torch ``model`` and check it.

    Arguments:
      input_size: the long side to export at (default: the recipe's, else the model's).
      limits, quantize_options (``fallback``, ``calib_samples``, ``val_images``): as
        ``rapsam-edge quantize`` (quantized recipes only; ``limits`` a ``GateLimits``,
        default its defaults).
    The bundle is staged and moved onto ``out`` only when complete (and gated):
    ``deploy.staging``. ``out`` may hold a previous bundle (replaced), nothing else.

    Raises:
      ConfigError: unknown recipe, a quantized recipe without ``calib``, or options
        ``QuantizeRequest`` refuses (checked before the export).
      OutputExistsError: ``out`` holds something other than a bundle.
      AccuracyGateError: the quantized bundle failed the gate (``out`` is left as it was).
    """
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
    check_target(out, replace=True)  # before any work
    with tempfile.TemporaryDirectory(prefix="rapsam-recipe-") as tmp:
        # the FP32 bundle a quantized recipe starts from
        fp32_dir = Path(tmp) / (out.resolve().name + "-fp32")
        request = None
        if r.precision is not None:  # every option checked (ConfigError) before the export
            request = _quantize_request(r, fp32_dir, out, calib, val, limits, quantize_options)
        bundle_dir = export_bundle(
            model,
            out if request is None else fp32_dir,
            name=out.resolve().name if request is None else fp32_dir.name,
            classes=classes,
            formats=r.formats,
            input_size=input_size or r.input_size,
            provenance={**dict(provenance or {}), "recipe": recipe, "target_backend": r.backend},
        )
        if request is not None:
            from .quantize.pipeline import quantize_bundle

            quantize_bundle(request)
            bundle_dir = out
    _check_runs(bundle_dir, r.backend)
    return bundle_dir


def _quantize_request(
    r: Any, fp32_dir: Path, out: Path, calib: Any, val: Any, limits: Any, options: Any
) -> Any:
    """The ``QuantizeRequest`` of a quantized recipe, checked (options and data) before the
    FP32 export it starts from is written."""
    from .quantize.gate import GateLimits
    from .quantize.pipeline import QuantizeRequest, check_request

    request = QuantizeRequest(
        source=str(fp32_dir),
        out=out,
        name=out.resolve().name,
        to=r.precision,
        backend=str(r.quantize_backend),
        calib=Path(calib),  # not None: checked by the caller
        val=None if val is None else Path(val),
        limits=limits or GateLimits(),
        overwrite=True,
        **options,
    )
    check_request(request)
    return request


def _check_runs(bundle_dir: Path, backend: str) -> None:
    """Run every graph once on ``backend`` when this machine has it; say so either way."""
    import numpy as np

    from ..bundle import load_bundle
    from ..runtime.registry import available_backends
    from ..runtime.segmenter import Segmenter

    bundle = load_bundle(bundle_dir)
    if backend not in available_backends(bundle):
        print(f"{bundle_dir}: written; backend {backend} is not available on this machine")
        return
    seg = Segmenter(bundle, backend=backend)
    frame = np.zeros((240, 320, 3), np.uint8)
    seg.panoptic(frame)
    seg.prompt(seg.set_image(frame), points=[(160, 120)])
    seg.close()
    print(f"{bundle_dir}: every graph runs on {backend}")
