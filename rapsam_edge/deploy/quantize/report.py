"""Reporting for quantization: the worst-tensor table of an INT8 error report, the JSON
report file, and the one-line gate summary ``rapsam-edge quantize`` prints.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["format_report", "gate_line", "write_report_json"]


def _fmt(value: float | None) -> str:
    return "       -" if value is None else f"{value:8.2f}"


def format_report(report: Sequence[Mapping[str, Any]], *, rows: int = 10) -> str:
    """A short fixed-width table of the worst ``rows`` report rows."""
    lines = [f"{'sqnr_dB':>8} {'drop_dB':>8} {'rel_l2':>8}  {'op_type':<20} node -> tensor"]
    for r in list(report)[:rows]:
        lines.append(
            f"{r['sqnr_db']:8.2f} {_fmt(r.get('sqnr_drop_db'))}  {r['relative_l2']:8.4f}  "
            f"{r.get('op_type') or '-':<20} {r.get('node') or '-'} -> {r['tensor']}"
        )
    return "\n".join(lines)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_report_json(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` (numpy scalars and paths allowed) as indented JSON; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")
    return path


def gate_line(report: Mapping[str, Any], reverted: Sequence[str]) -> str:
    """One line with the gate's verdict and numbers (and the graphs kept in FP32)."""
    state = "PASS" if report["passed"] else "FAIL"
    return (
        f"gate {state}: PQ drop {report['pq_drop']:.2f}, 1-click mIoU drop {report['miou_drop']:.2f}, "
        f"median mask IoU vs FP32 {report['mask_iou_median']:.3f}, label agreement "
        f"{report['label_agreement']:.4f}"
        + (f" (FP32 kept for {list(reverted)})" if reverted else "")
    )
