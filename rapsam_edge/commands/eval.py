"""`rapsam-edge eval [--task all|vos] [--bundle DIR | --weights FILE] --data DIR --json FILE`.

Task ``all`` (default): PQ, 1-click mIoU (+ NoC) and video AP of a model on a make-data style
dataset (COCO panoptic + YouTube-VIS); metrics in percent under the keys ``pq``, ``miou``,
``vis_ap`` (plus the detailed ones). Task ``vos``: the prompt tracker on the YouTube-VIS videos
(``DIR/ytvis`` or ``DIR`` itself), DAVIS J&F in [0, 1] under ``jf_box``, ``jf_click`` and
``jf_oracle_box`` (each with ``j``, ``f``, ``jf``), plus ``id_switches``, ``per_object_ms`` and
``counts`` (``eval.vos_protocol``), and the panoptic video tracker on the same videos for
comparison: ``panoptic_tracker`` (the J&F of the track best matching each object on its first
frame) and ``id_switches["panoptic_tracker"]`` (one ID-switch rule for both trackers), and
``wrong_object_frames`` (object-frames shown on another object). Default model: the shipped
default bundle."""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..apps.checks import nonneg_int, require, side

if TYPE_CHECKING:
    from ..runtime.segmenter import Segmenter

#: --task -> (what it measures, the keys printed on stdout; the --json file holds everything).
#: The functions are ``eval.harness.TASKS`` (imported only when the verb runs).
TASKS = {
    "all": ("PQ, 1-click mIoU (+ NoC) and video AP, in percent", ("pq", "miou", "vis_ap")),
    "vos": (
        "the prompt tracker: DAVIS J&F in [0, 1] from a box, a click and a ground-truth box on "
        "every frame, ID switches (and the panoptic tracker's, for comparison), per-object "
        "step cost",
        (
            "jf_box",
            "jf_click",
            "jf_oracle_box",
            "panoptic_tracker",
            "id_switches",
            "wrong_object_frames",
        ),
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--task",
        choices=tuple(TASKS),
        default="all",
        help="what to measure (default %(default)s): "
        + "; ".join(f"{name}: {what}" for name, (what, _) in TASKS.items()),
    )
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
        help="evaluate only the first N images (0: none, videos only; default: all; "
        "--task all only)",
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
        help="images on which to run the NoC click protocol (slow; --task all only; "
        "default %(default)s)",
    )
    parser.add_argument(
        "--input-size", type=side, help="network long side in pixels (default: the bundle's)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _progress(quiet: bool) -> Callable[[str, int, int], None]:
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


def _check_task(args: argparse.Namespace) -> None:
    """Options of another task, and what --task vos needs, refused before any work."""
    if args.task == "all":
        return
    from ..errors import ConfigError

    for flag, given in (
        ("--max-images", args.max_images is not None),
        ("--noc-images", args.noc_images != 0),
    ):
        if given:
            raise ConfigError(f"{flag} applies to --task all, not --task {args.task}")
    from ..eval.harness import require_prompt_tracker
    from ..eval.vos_protocol import find_ytvis_root, open_vos_split
    from ..runtime.segmenter import Segmenter

    # its fields checked before the model loads; the evaluation uses this very split
    args.vos_split = open_vos_split(find_ytvis_root(args.data, args.split), args.split)
    require_prompt_tracker(Segmenter)


def _clean(value: Any) -> Any:
    """NaN -> None (JSON null), through nested dicts and lists."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _evaluate(seg: Segmenter, args: argparse.Namespace) -> dict:
    from ..eval.harness import TASKS as RUN

    if args.task == "all":
        return RUN["all"](
            seg,
            args.data,
            split=args.split,
            max_images=args.max_images,
            max_videos=args.max_videos,
            noc_images=args.noc_images,
            progress=_progress(args.quiet),
        )
    return RUN[args.task](
        seg,
        args.data,
        split=args.split,
        max_videos=args.max_videos,
        progress=_progress(args.quiet),
        dataset=args.vos_split,
    )


def run(args: argparse.Namespace) -> int:
    require(args.weights, "--weights")
    require(args.data, "--data", "dir")
    _check_task(args)
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
        metrics = _evaluate(seg, args)
    metrics["task"] = args.task
    metrics["model"] = str(args.weights or bundle)
    metrics["backend"] = seg.backend_name
    clean = _clean(metrics)
    text = json.dumps(clean, indent=1, sort_keys=True)
    if args.json:
        from ..apps.writers import check_written

        args.json.write_text(text + "\n")  # its folder made by check_output; OSError: one line
        check_written(args.json, "the metrics file")
    headline = {k: clean.get(k) for k in TASKS[args.task][1]}
    if args.task == "vos":
        headline = {
            k: v if k.startswith(("id_", "wrong_")) else (v or {}).get("jf")
            for k, v in headline.items()
        }
    print(json.dumps(headline))
    return 0
