"""`rapsam-edge benchmark`: one table of end-to-end FPS and per-stage p50 for every model x
backend x runtime precision usable here, through the profiler (``profile.run_profile``).

    rapsam-edge benchmark                       # shipped bundle + fresh edge-s and edge-xs
    rapsam-edge benchmark --bundle B1 B2 --no-fresh --backends openvino

Fresh variants are randomly initialised and exported at the benchmark's long side (speed
does not depend on the weights; exporting needs the ``train`` extra). Every bundle runs at
the same network input (``--input`` frame, letterboxed to its long side), so rows compare.
All targets of one bundle are interleaved in one process (ratios are fair); the rows go to
``OUT.md`` and ``OUT.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "run"]

DEFAULT_OUT = Path("benchmarks/results/benchmark")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..profile.cli import _size

    parser.add_argument(
        "--bundle", nargs="*", default=None, help="bundles (default: the shipped one)"
    )
    parser.add_argument(
        "--variants",
        nargs="*",
        default=["edge-s", "edge-xs"],
        help="fresh variants to export and time",
    )
    parser.add_argument(
        "--no-fresh", action="store_true", help="time only the given / shipped bundles"
    )
    parser.add_argument(
        "--backends",
        nargs="*",
        default=None,
        help="backends (default: every usable CPU / GPU backend)",
    )
    parser.add_argument(
        "--precisions",
        nargs="*",
        default=None,
        help="runtime precisions (default: those each backend supports here)",
    )
    parser.add_argument(
        "--input",
        type=_size,
        default=(480, 640),
        metavar="WxH",
        help="frame size (default 640x480)",
    )
    parser.add_argument(
        "--mode", choices=("panoptic", "prompt", "track", "stream"), default="panoptic"
    )
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"writes OUT.md and OUT.json (default {DEFAULT_OUT})",
    )


def _shipped_reduced() -> list[str]:
    """The shipped reduced-precision bundles (INT8 ...), timed beside the FP32 default."""
    from ..assets import DEFAULT_BUNDLE, shipped_bundles

    return [b for b in shipped_bundles() if b != DEFAULT_BUNDLE and b.startswith(DEFAULT_BUNDLE)]


def _precisions(backend: str) -> list[str]:
    """Runtime precisions ``backend`` offers on this machine (fp32 always)."""
    if backend != "openvino":
        return ["fp32"]
    import openvino as ov

    caps = set(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    return ["fp32"] + [p for p, cap in (("bf16", "BF16"), ("fp16", "FP16")) if cap in caps]


def _fresh(variant: str, long_side: int, tmp: Path) -> Path:
    import torch

    from ..data.classes import CLASSES
    from ..model import build_model
    from .bundle_writer import export_bundle

    torch.manual_seed(0)
    model = build_model(variant, deform=False).eval()
    return export_bundle(
        model,
        tmp / variant,
        name=f"{variant}-random",
        classes=CLASSES,
        input_size=long_side,
        formats=("onnx", "openvino"),
        provenance={"weights": "random init, seed 0 (speed only)"},
    )


def run(args: argparse.Namespace) -> int:
    import sys

    args.command_line = (
        "rapsam-edge " + " ".join(sys.argv[1:])
        if sys.argv[1:2] == ["benchmark"]
        else "rapsam-edge benchmark"
    )
    from ..bundle import load_bundle
    from ..profile import ProfileConfig, Target, run_profile
    from ..runtime.registry import BACKENDS, available_backends

    h, w = args.input
    long_side = -(-max(h, w) // 32) * 32
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        bundles = [str(b) for b in args.bundle] if args.bundle else [None, *_shipped_reduced()]
        if not args.no_fresh:
            bundles += [str(_fresh(v, long_side, Path(tmp))) for v in args.variants]
        for b in bundles:
            bundle = load_bundle(b)
            usable = [
                n
                for n in available_backends(bundle)
                if BACKENDS[n].rank is not None
                and all(n in available_backends(bundle, g) for g in bundle.graphs)
            ]
            names = [n for n in (args.backends or usable) if n in usable]
            reduced = any(g.precision != "fp32" for g in bundle.graphs.values())
            targets = tuple(
                # a reduced-precision bundle runs as it was gated; FP32 ones at every runtime precision
                Target(b, n, None if reduced else p)
                for n in names
                for p in (["fp32"] if reduced else _precisions(n))
                if reduced or not args.precisions or p in args.precisions
            )
            if not targets:
                continue
            config = ProfileConfig(
                targets=targets,
                mode=args.mode,
                input_hw=(h, w),
                warmup=args.warmup,
                iters=args.iters,
                input_size=long_side,
            )
            report = run_profile(config)
            for r in report["compare"]:
                st = r["stages"]
                rows.append(
                    {
                        **{
                            k: r["target"][k] for k in ("bundle", "variant", "backend", "precision")
                        },
                        "fps_p50": 1000.0 / st["end_to_end"]["p50"],
                        **{f"{k}_p50_ms": v["p50"] for k, v in st.items()},
                        # 1.00 when nothing but the stages takes time (no threads fighting
                        # between stages): mean end to end over the sum of the stage means
                        "e2e_over_stages": st["end_to_end"]["mean"]
                        / sum(v["mean"] for k, v in st.items() if k != "end_to_end"),
                    }
                )
            env = report["environment"]
    _write(rows, args, env, long_side)
    return 0


def _write(
    rows: list[dict[str, Any]], args: argparse.Namespace, env: dict[str, Any], long_side: int
) -> None:
    h, w = args.input
    stages = [
        s
        for s in ("prepare", "encoder", "decoder", "postprocess", "tracking")
        if any(f"{s}_p50_ms" in r for r in rows)
    ]
    lines = [
        f"# Benchmark: {args.mode}, {w}x{h} frames at network long side {long_side}",
        "",
        f"Machine: {env['cpu']}, {env['usable_cores']} usable cores, {env['threads_per_graph']} threads per graph; "
        f"{args.iters} timed iterations after {args.warmup} warm-ups, targets of one bundle interleaved; "
        f"command `{args.command_line}`."
        + (" Fresh variants are randomly initialised (speed only)." if not args.no_fresh else "")
        + " Every bundle runs at the frame's network long side, whatever its own default.",
        "",
        "| model | bundle | backend | precision | FPS (e2e p50) | e2e p50 ms | "
        + " | ".join(f"{s} p50 ms" for s in stages)
        + " | e2e / sum of stages (means) |",
        "|---|---|---|---|---:|---:|" + "---:|" * (len(stages) + 1),
    ]
    for r in rows:
        cells = " | ".join(f"{r.get(f'{s}_p50_ms', float('nan')):.2f}" for s in stages)
        lines.append(
            f"| {r['variant']} | {r['bundle']} | {r['backend']} | {r['precision']} | {r['fps_p50']:.1f} | "
            f"{r['end_to_end_p50_ms']:.2f} | {cells} | {r['e2e_over_stages']:.3f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    payload = {
        "mode": args.mode,
        "input_hw": [h, w],
        "long_side": long_side,
        "environment": env,
        "rows": rows,
    }
    args.out.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.json')}")
