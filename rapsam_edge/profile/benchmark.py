"""The FPS table of ``rapsam-edge benchmark`` (``commands.benchmark``): which targets a bundle
runs as here, one row per profiled target, and the Markdown / JSON forms of the table.
Torch-free: fresh variants are exported by the command, not here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..contract.graphs import ENCODER
from .runner import ProfileConfig, Target, run_profile

__all__ = ["benchmark_bundle", "bundle_targets", "runtime_precisions", "table", "write_table"]

#: per-stage columns, in pipeline order (those no row has are left out)
STAGES = ("prepare", ENCODER, "decoder", "postprocess", "tracking")


def runtime_precisions(backend: str) -> list[str]:
    """Runtime precisions ``backend`` offers on this machine (fp32 always)."""
    if backend != "openvino":
        return ["fp32"]
    import openvino as ov

    caps = set(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    return ["fp32"] + [p for p, cap in (("bf16", "BF16"), ("fp16", "FP16")) if cap in caps]


def bundle_targets(
    spec: str, backends: list[str] | None, precisions: list[str] | None
) -> tuple[Target, ...]:
    """The targets of bundle ``spec``: every backend usable here for all its graphs (or those
    of ``backends`` that are); a reduced-precision bundle runs as it was gated, an FP32 one at
    every runtime precision of the backend (or those of ``precisions`` it offers)."""
    from ..bundle import load_bundle
    from ..runtime.registry import BACKENDS, available_backends

    bundle = load_bundle(spec)
    usable = [
        n
        for n in available_backends(bundle)
        if BACKENDS[n].rank is not None
        and all(n in available_backends(bundle, g) for g in bundle.graphs)
    ]
    names = [n for n in (backends or usable) if n in usable]
    if any(g.precision != "fp32" for g in bundle.graphs.values()):
        return tuple(Target(spec, n, None) for n in names)
    return tuple(
        Target(spec, n, p)
        for n in names
        for p in runtime_precisions(n)
        if not precisions or p in precisions
    )


def _row(result: dict[str, Any]) -> dict[str, Any]:
    st = result["stages"]
    return {
        **{k: result["target"][k] for k in ("bundle", "variant", "backend", "precision")},
        "fps_p50": 1000.0 / st["end_to_end"]["p50"],
        **{f"{k}_p50_ms": v["p50"] for k, v in st.items()},
        # 1.00 when nothing but the stages takes time (no threads fighting between stages):
        # mean end to end over the sum of the stage means
        "e2e_over_stages": st["end_to_end"]["mean"]
        / sum(v["mean"] for k, v in st.items() if k != "end_to_end"),
    }


def benchmark_bundle(
    targets: tuple[Target, ...], config: ProfileConfig
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Profile ``targets`` (one bundle's, interleaved) with ``config``'s settings.

    Returns:
      (one row per target, the environment the report names)."""
    from dataclasses import replace

    report = run_profile(replace(config, targets=targets))
    return [_row(r) for r in report["compare"]], report["environment"]


def table(rows: list[dict[str, Any]], config: ProfileConfig, env: dict[str, Any], note: str) -> str:
    """The Markdown table of ``rows``, under a heading and a line saying how they were timed
    (``note``: the command line and what the fresh variants are)."""
    h, w = config.input_hw
    stages = [s for s in STAGES if any(f"{s}_p50_ms" in r for r in rows)]
    lines = [
        f"# Benchmark: {config.mode}, {w}x{h} frames at network long side {config.input_size}",
        "",
        f"Machine: {env['cpu']}, {env['usable_cores']} usable cores, "
        f"{env['threads_per_graph']} threads per graph; {config.iters} timed iterations after "
        f"{config.warmup} warm-ups, targets of one bundle interleaved; {note} Every bundle "
        "runs at the frame's network long side, whatever its own default.",
        "",
        "| model | bundle | backend | precision | FPS (e2e p50) | e2e p50 ms | "
        + " | ".join(f"{s} p50 ms" for s in stages)
        + " | e2e / sum of stages (means) |",
        "|---|---|---|---|---:|---:|" + "---:|" * (len(stages) + 1),
    ]
    for r in rows:
        cells = " | ".join(f"{r.get(f'{s}_p50_ms', float('nan')):.2f}" for s in stages)
        lines.append(
            f"| {r['variant']} | {r['bundle']} | {r['backend']} | {r['precision']} | "
            f"{r['fps_p50']:.1f} | {r['end_to_end_p50_ms']:.2f} | {cells} | "
            f"{r['e2e_over_stages']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def write_table(
    out: Path, text: str, rows: list[dict[str, Any]], config: ProfileConfig, env: dict[str, Any]
) -> tuple[Path, Path]:
    """Write ``OUT.md`` (``text``) and ``OUT.json`` (the rows and settings); returns both."""
    out.parent.mkdir(parents=True, exist_ok=True)
    md, js = out.with_suffix(".md"), out.with_suffix(".json")
    md.write_text(text)
    payload = {
        "mode": config.mode,
        "input_hw": list(config.input_hw),
        "long_side": config.input_size,
        "environment": env,
        "rows": rows,
    }
    js.write_text(json.dumps(payload, indent=1) + "\n")
    return md, js
