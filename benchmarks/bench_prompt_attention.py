"""The prompt adapter's cross-attention, projected vs absorbed (issue 14, prompt <= 2 ms):
latency of the shipped default's prompt decoder graph by prompt count, both forms interleaved.

The projected form is the reference's (keys and values = the L feature tokens times Wk, Wv:
2 x L x D x D multiply-adds whatever the prompt count); the absorbed form
(``model.attention.Attention.forward_feats``, what the model runs now) moves the projections
to the query side (2 x heads x P x L x D). Both graphs are traced from the same weights
(``models/edge-s-synthetic``), converted to OpenVINO, reshaped static to the features of a
640x480 frame at the bundle's 320 network (as ``static_shapes="auto"`` serves a camera), and
quantized by NNCF on those features for the INT8 rows (the shipped INT8 twin's prompt decoder is
NNCF INT8). Inputs: the features of a sample-clip frame and P random boxes; p50 of raw
``infer`` (CPU plugin, LATENCY hint, 2 threads), every graph interleaved in one loop. The
largest |difference| of the FP32 mask logits between the forms is printed as a check.

    python benchmarks/bench_prompt_attention.py     # writes results/prompt_attention.md/.json
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager

import numpy as np
import openvino as ov
import torch
from machine import clip_frames, describe, ov_cpu_config, write_results

from rapsam_edge.assets import default_bundle
from rapsam_edge.bundle import load_bundle
from rapsam_edge.deploy.graphs import EncoderGraph, PromptDecoderGraph
from rapsam_edge.model.decoder import PromptAdapter
from rapsam_edge.model.heads import mask_product
from rapsam_edge.model.io import load_model
from rapsam_edge.ops import letterbox

PROMPTS = (1, 4, 16, 64, 256)


@contextmanager
def projected_keys():
    """PromptAdapter.forward as the reference writes it (features projected to K and V)."""

    def forward(self, feats, queries):
        keys = feats.transpose(1, 2)
        q = self.norm(queries + self.cross_attn(queries, keys, keys))
        return q, mask_product(q, feats), self.iou_head(q).squeeze(-1)

    absorbed = PromptAdapter.forward
    PromptAdapter.forward = forward
    try:
        yield
    finally:
        PromptAdapter.forward = absorbed


def _frame_features(bundle, model) -> tuple[np.ndarray, tuple[int, int]]:
    """The encoder features of one letterboxed sample-clip frame, and the padded image size."""
    frame = clip_frames(1, (480, 640), rgb=True)[0]
    image, _, _ = letterbox(frame, bundle.input.long_side, pad_divisor=bundle.input.pad_divisor)
    with torch.no_grad():
        feats = EncoderGraph(model)(torch.from_numpy(image[None])).numpy()
    return feats, image.shape[:2]


def _convert_both_forms(model, feats: np.ndarray) -> dict:
    """The prompt decoder graph as OpenVINO models, absorbed (as the model runs) and projected."""
    example = (torch.from_numpy(feats), torch.zeros(1, 3, 4))
    graphs = {}
    with torch.no_grad():
        graphs["absorbed"] = ov.convert_model(PromptDecoderGraph(model), example_input=example)
        with projected_keys():
            graphs["projected"] = ov.convert_model(PromptDecoderGraph(model), example_input=example)
    return graphs


def _compile_all(graphs: dict, feats: np.ndarray, image_hw, config) -> tuple[dict, dict, dict]:
    """Per prompt count: static FP32 and NNCF INT8 infer requests of both forms, their feeds,
    and the FP32 mask logits for the check."""
    import nncf

    core = ov.Core()
    rng = np.random.default_rng(0)
    hp, wp = image_hw

    def random_boxes(p: int) -> np.ndarray:
        xy = rng.uniform(0, [wp - 40, hp - 40], (1, p, 2))
        return np.concatenate([xy, xy + rng.uniform(4, 40, (1, p, 2))], -1).astype(np.float32)

    targets, feeds, check = {}, {}, {}
    for p in PROMPTS:
        feeds[p] = [feats, random_boxes(p)]
        calib = [[feats, random_boxes(p)] for _ in range(8)]
        for form, g in graphs.items():
            m = g.clone()
            m.reshape({m.inputs[0]: list(feats.shape), m.inputs[1]: [1, p, 4]})
            fp32 = core.compile_model(m, "CPU", config).create_infer_request()
            targets[(form, "fp32", p)] = fp32
            check[(form, p)] = fp32.infer(feeds[p])[0].copy()
            q = nncf.quantize(m, nncf.Dataset(calib), subset_size=len(calib))
            targets[(form, "int8", p)] = core.compile_model(q, "CPU", config).create_infer_request()
    return targets, feeds, check


def _interleaved_times(targets: dict, feeds: dict, iters: int, warmup: int) -> dict:
    times = {k: [] for k in targets}
    for i in range(warmup + iters):
        for (form, prec, p), req in targets.items():
            t0 = time.perf_counter()
            req.infer(feeds[p])
            if i >= warmup:
                times[(form, prec, p)].append((time.perf_counter() - t0) * 1e3)
    return times


def _rows(times: dict, check: dict) -> list[dict]:
    rows = []
    for prec in ("fp32", "int8"):
        for p in PROMPTS:
            proj = float(np.median(times[("projected", prec, p)]))
            absd = float(np.median(times[("absorbed", prec, p)]))
            diff = float(np.abs(check[("absorbed", p)] - check[("projected", p)]).max())
            rows.append(
                {
                    "precision": prec,
                    "prompts": p,
                    "projected_ms": proj,
                    "absorbed_ms": absd,
                    "speedup": proj / absd,
                    "max_abs_diff_fp32": diff,
                }
            )
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    bundle = load_bundle(default_bundle())
    model = load_model(bundle.root).eval()
    feats, image_hw = _frame_features(bundle, model)
    config = ov_cpu_config(args.threads)
    graphs = _convert_both_forms(model, feats)
    targets, feeds, check = _compile_all(graphs, feats, image_hw, config)
    rows = _rows(_interleaved_times(targets, feeds, args.iters, args.warmup), check)
    lines = [
        "# Prompt decoder: projected vs absorbed cross-attention",
        "",
        f"Machine: {describe()}; OpenVINO {ov.get_version()} CPU plugin, {args.threads} threads, "
        f"LATENCY hint, f32 inference precision; bundle {bundle.name} weights, features "
        f"of a 640x480 sample-clip frame ({feats.shape[2]} x {feats.shape[3]} tokens), static "
        f"shapes; p50 of {args.iters} interleaved runs after {args.warmup} warm-ups. INT8: NNCF "
        "on the frame's features and the run's boxes. Command "
        "`python benchmarks/bench_prompt_attention.py`.",
        "",
        "| precision | prompts | projected ms | absorbed ms | speed-up | max abs diff (FP32 logits) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['precision']} | {r['prompts']} | {r['projected_ms']:.3f} | "
            f"{r['absorbed_ms']:.3f} | {r['speedup']:.2f} | {r['max_abs_diff_fp32']:.2e} |"
        )
    write_results("prompt_attention", lines, {"rows": rows})


if __name__ == "__main__":
    main()
