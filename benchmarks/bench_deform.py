"""Deformable-conv export forms, timed where they run: GridSample vs ONNX DeformConv, per
backend, for the official-layout encoders (rapsam-r18, rapsam-r50), 2 threads, interleaved.

    python benchmarks/bench_deform.py                  # r18 + r50 at 640x480 and 1344x800
    python benchmarks/bench_deform.py --variants rapsam-r18 --sizes 640x480 --repeats 3

Each variant is built with random weights whose DCN offsets are non-zero (as trained ones
are), exported once per form (``deploy/deform_export.py``) into encoder-only bundles (ONNX +
OpenVINO IR), and every (form, backend) encoder runs the same frames round-robin through the
runtime backends (spin-free ONNX Runtime, OpenVINO LATENCY, FP32). Both forms are checked
against torch first (max relative error), so a fast but wrong form cannot win. The faster
exact form per backend is what ``DEFORM_CHOICE`` records. Writes
``benchmarks/results/deform.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine import describe

from rapsam_edge.bundle import load_bundle
from rapsam_edge.deploy.bundle_writer import export_bundle
from rapsam_edge.deploy.deform_export import DEFORM_CHOICE, DEFORM_FORMS
from rapsam_edge.deploy.graphs import make_graph
from rapsam_edge.model.variants import build_model
from rapsam_edge.runtime.selection import create_backend

RESULTS = Path(__file__).resolve().parent / "results"
BACKENDS = {"ort-cpu": {"intra_op_threads": 2}, "openvino": {"num_threads": 2}}


def _model(variant: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(variant, num_classes=8).eval()
    for m in model.modules():
        if hasattr(m, "dcn_offset"):
            torch.nn.init.normal_(m.dcn_offset.weight, std=0.02)
            torch.nn.init.normal_(m.dcn_offset.bias, std=0.7)
    model.decoder.set_class_embeddings(
        torch.nn.functional.normalize(torch.randn(8, 1, 768), dim=-1)
    )
    model.config["classes"] = [{"id": i, "name": f"c{i}", "is_thing": i < 4} for i in range(8)]
    return model


def run(variants: list[str], sizes: list[tuple[int, int]], repeats: int) -> dict:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in variants:
            model = _model(variant)
            bundles = {
                form: load_bundle(
                    export_bundle(
                        model,
                        Path(tmp) / f"{variant}-{form}",
                        name=f"{variant}-{form}",
                        graphs=("encoder",),
                        deform={"onnx": form, "openvino": form},
                    )
                )
                for form in DEFORM_FORMS
            }
            for w, h in sizes:
                image = np.random.default_rng(0).integers(0, 256, (1, h, w, 3), dtype=np.uint8)
                with torch.no_grad():
                    ref = make_graph(model, "encoder")(torch.from_numpy(image)).numpy()
                runs = {}
                for form, bundle in bundles.items():
                    for backend, opts in BACKENDS.items():
                        be = create_backend(bundle, "encoder", backend, **opts)
                        feed = {be.name_of("image"): image}
                        out = be.run(feed)[be.name_of("feats")]
                        err = float(np.abs(out - ref).max() / np.abs(ref).max())
                        runs[(form, backend)] = (be, feed, err, [])
                for _ in range(repeats):  # interleaved: every target once per round
                    for be, feed, _, times in runs.values():
                        t = time.perf_counter()
                        be.run(feed)
                        times.append((time.perf_counter() - t) * 1e3)
                for (form, backend), (be, _, err, times) in runs.items():
                    rows.append(
                        {
                            "variant": variant,
                            "input": f"{w}x{h}",
                            "backend": backend,
                            "form": form,
                            "p50_ms": round(float(np.median(times)), 1),
                            "min_ms": round(float(np.min(times)), 1),
                            "max_rel_err_vs_torch": err,
                        }
                    )
                    be.close()
                    print(rows[-1], flush=True)
    return {"machine": describe(), "repeats": repeats, "rows": rows}


#: deformconv must beat gridsample by this fraction (summed p50) to be chosen: below it the
#: difference is inside this machine's run-to-run spread, and gridsample (opset 17) also runs
#: on TensorRT, which reads the same ONNX file as ONNX Runtime.
TIE = 0.03


def _choice(rows: list[dict]) -> dict[str, str]:
    """Per backend: deformconv where its summed p50 over every (variant, size) is more than
    ``TIE`` below gridsample's, else gridsample."""
    out = {}
    for backend in BACKENDS:
        total = {
            f: sum(r["p50_ms"] for r in rows if r["backend"] == backend and r["form"] == f)
            for f in DEFORM_FORMS
        }
        faster = total["deformconv"] < (1 - TIE) * total["gridsample"]
        out[backend] = "deformconv" if faster else "gridsample"
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="+", default=["rapsam-r18", "rapsam-r50"])
    p.add_argument("--sizes", nargs="+", default=["640x480", "1344x800"])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--render", action="store_true", help="only rewrite deform.md from .json")
    args = p.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes]
    if args.render:
        res = json.loads((RESULTS / "deform.json").read_text())
        args.repeats = res["repeats"]
    else:
        res = run(args.variants, sizes, args.repeats)
    res["faster_form"] = _choice(res["rows"])
    res["deform_choice_in_code"] = dict(DEFORM_CHOICE)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "deform.json").write_text(json.dumps(res, indent=2) + "\n")
    lines = [
        "# Deformable-conv export forms: encoder p50 (ms), 2 threads, FP32",
        "",
        f"Machine: {res['machine']}. {args.repeats} interleaved rounds per target.",
        "",
        "| variant | input | backend | gridsample p50 | deformconv p50 | deformconv / gridsample "
        "| max rel err (gs / dc) |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    by = {(r["variant"], r["input"], r["backend"], r["form"]): r for r in res["rows"]}
    for v, i, b, f in by:
        if f != "gridsample":
            continue
        g, d = by[(v, i, b, "gridsample")], by[(v, i, b, "deformconv")]
        lines.append(
            f"| {v} | {i} | {b} | {g['p50_ms']} | {d['p50_ms']} | "
            f"{d['p50_ms'] / g['p50_ms']:.2f} | "
            f"{g['max_rel_err_vs_torch']:.1e} / {d['max_rel_err_vs_torch']:.1e} |"
        )
    lines += [
        "",
        f"Chosen per backend (deformconv only when > {TIE:.0%} faster in summed p50): "
        f"{res['faster_form']}; `DEFORM_CHOICE` in the code (by bundle format; ONNX Runtime "
        f"and TensorRT read the onnx file): {res['deform_choice_in_code']}.",
        "",
    ]
    (RESULTS / "deform.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
