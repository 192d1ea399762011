"""The accuracy gate's record a quantized bundle must carry to be loaded.

``rapsam-edge quantize`` writes its verdict into the manifest (``export.quantization.gate``)
and moves the bundle into place only once the gate passed (``deploy.staging``). Bundles an
older quantize wrote before its gate ran (left behind when it was interrupted or failed)
carry ``export.quantization`` without a gate: their accuracy is unknown, and ``load_bundle``
refuses them (``check_gate_record``). A bundle gated knowingly nowhere (the gate's backend,
e.g. TensorRT, missing where it was made) says so: ``gate.passed`` null with ``gate.skipped``
naming why; it loads. A bundle without ``export.quantization`` (FP32, or quantized by other
tools) makes no claim and loads as before. The C++ runtime's loader applies the same rule
with the same messages (``check_gate_record`` in csrc/runtime/bundle.cpp).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ManifestError
from .schema import render

__all__ = ["check_gate_record"]

_HINT = "re-run `rapsam-edge quantize` (it moves a bundle into place only after its gate passed)"


def check_gate_record(export: Mapping[str, Any], w: str = "manifest") -> None:
    """Refuse a quantized bundle's ``export`` section without a passed (or knowingly
    skipped) gate.

    Raises:
      ManifestError: naming ``export.quantization.gate`` or ``.gate.passed``.
    """
    if "quantization" not in export:
        return
    where = f"{w}.export.quantization"
    record = export["quantization"]
    gate = record.get("gate") if isinstance(record, Mapping) else None
    if not isinstance(record, Mapping):
        raise ManifestError(f"{where}: expected an object, got {render(record)}")
    if gate is None:
        raise ManifestError(
            f"{where}.gate: missing: this quantized bundle was written before its accuracy "
            "gate ran (an interrupted or failed quantize), its accuracy is unknown",
            hint=_HINT,
        )
    if not isinstance(gate, Mapping):
        raise ManifestError(f"{where}.gate: expected an object, got {render(gate)}")
    passed = gate.get("passed")
    if passed is None and isinstance(gate.get("skipped"), str):
        return
    if passed is not True:
        raise ManifestError(
            f"{where}.gate.passed: {render(passed)}: the bundle did not pass its accuracy gate "
            "(true, or null with gate.skipped naming why it was not verified, is expected)",
            hint=_HINT,
        )
