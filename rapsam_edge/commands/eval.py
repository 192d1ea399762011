"""`rapsam-edge eval [--bundle DIR | --weights FILE] --data DIR --json FILE`: PQ, 1-click
mIoU (+ NoC) and video AP of a model on a make-data style dataset (COCO panoptic +
YouTube-VIS). Default model: the shipped default bundle. Metrics are in percent under the keys
``pq``, ``miou``, ``vis_ap`` (plus the detailed ones)."""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

from ..apps.checks import nonneg_int, require, side


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--bundle", type=Path, help="model bundle (default: the shipped one)")
    src.add_argument(
        "--weights",
        type=Path,
        help="model.safetensors (+ config.json) to test instead of a bundle (default: none)",
    )
    parser.add_argument(
        "--backend",
        default=None,
        help="runtime backend (default: auto for bundles, torch for --weights)",
    )
    parser.add_argument("--data", type=Path, required=True, help="dataset root (make-data layout)")
    parser.add_argument("--split", default="val", help="dataset split (default %(default)s)")
    parser.add_argument(
        "--json", type=Path, help="write the metrics here (default: print only pq, miou, vis_ap)"
    )
    parser.add_argument(
        "--max-images",
        type=nonneg_int,
        help="evaluate only the first N images (0: none, videos only; default: all)",
    )
    parser.add_argument(
        "--max-videos",
        type=nonneg_int,
        help="evaluate only the first N videos (0: none, images only; default: all)",
    )
    parser.add_argument(
        "--noc-images",
        type=nonneg_int,
        default=0,
        help="images on which to run the NoC click protocol (slow; default %(default)s)",
    )
    parser.add_argument(
        "--input-size", type=side, help="network long side in pixels (default: the bundle's)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _progress(quiet: bool):
    bars: dict = {}
    if quiet:
        return lambda _task, _done, _total: None
    from tqdm import tqdm  # a required dependency

    def update(task: str, done: int, total: int) -> None:
        bar = bars.get(task) or bars.setdefault(task, tqdm(total=total, desc=task, unit="it"))
        bar.update(done - bar.n)
        if done == total:
            bar.close()

    return update


def run(args: argparse.Namespace) -> int:
    require(args.weights, "--weights")
    require(args.data, "--data", "dir")
    if args.json is not None:  # before the run, not after it
        from ..apps.writers import check_output

        check_output(args.json, "the metrics file")
    from ..runtime.segmenter import Segmenter

    with tempfile.TemporaryDirectory() as tmp:
        if args.weights is not None:
            from ..deploy.reference_bundle import export_reference_bundle

            bundle = export_reference_bundle(args.weights, Path(tmp) / "bundle", name="eval")
            backend = args.backend or "torch"
        else:
            from ..assets import default_bundle

            bundle = args.bundle or default_bundle()
            backend = args.backend or "auto"
        seg = Segmenter(bundle, backend=backend, input_size=args.input_size)
        print(f"evaluating {bundle} on backend {seg.backend_name}", file=sys.stderr)
        from ..eval.harness import evaluate

        metrics = evaluate(
            seg,
            args.data,
            split=args.split,
            max_images=args.max_images,
            max_videos=args.max_videos,
            noc_images=args.noc_images,
            progress=_progress(args.quiet),
        )
    metrics["model"] = str(args.weights or bundle)
    metrics["backend"] = seg.backend_name
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}
    text = json.dumps(clean, indent=1, sort_keys=True)
    if args.json:
        from ..apps.writers import check_written

        args.json.write_text(text + "\n")  # its folder made by check_output; OSError: one line
        check_written(args.json, "the metrics file")
    print(json.dumps({k: clean.get(k) for k in ("pq", "miou", "vis_ap")}))
    return 0
