"""`rapsam-edge demo`: the shipped default bundle on the shipped sample clip, all three tasks.

Writes ``panoptic.png`` (first frame), ``prompts.png`` (clicks and a box on objects of the
first frame), ``tracking.mp4`` (click-to-track: one object clicked on the first frame,
tracked through the clip with its id and state), ``tracks.mp4`` (online video instance
segmentation with track ids, frame index and track count; the same pass over the clip, one
encoder run per frame serving both) and ``timings.json`` (timings, the prompts and their
masks' areas, the clicked object's states, the track count) to ``--out``, and prints
per-stage timings (p50 / p90 / p99), what was clicked, in how many frames the clicked object
was tracked and how many tracks the video gave (and why none, when none). How the clicks
are chosen: ``apps.demo``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..apps.checks import positive_int, require


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, default=Path("demo_out"), help="output directory (default %(default)s)"
    )
    parser.add_argument(
        "--bundle",
        help="bundle directory or a shipped bundle's name (default: the shipped one)",
    )
    parser.add_argument("--source", help="video file (default: the shipped sample clip)")
    parser.add_argument(
        "--backend",
        default="auto",
        help="runtime backend (default %(default)s: a GPU backend if any, else the "
        "fastest CPU backend per graph, timed at start-up)",
    )
    parser.add_argument(
        "--repeats",
        type=positive_int,
        default=20,
        help="timed repeats of each stage (default %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    require(args.source, "--source", "file")
    from ..apps import demo
    from ..apps.draw import draw_panoptic, draw_prompts
    from ..apps.video import ObjectStates, process_stream, tracks_report
    from ..apps.writers import check_written, write_image
    from ..assets import sample_clip
    from ..runtime.segmenter import Segmenter

    source = str(args.source or sample_clip())
    frame = demo.first_frame(source)
    out = _outputs(args.out)  # checked before the bundle loads
    seg = Segmenter(args.bundle, backend=args.backend, color_order="BGR")  # OpenCV frames
    bundle = seg.bundle.root
    print(f"bundle {bundle}\nbackend {seg.backend_name}\nsource {source}")
    report: dict = {"bundle": str(bundle), "backend": seg.backend_name, "source": source}

    # 1. panoptic segmentation of one frame
    pan, pan_times = demo.time_panoptic(seg, frame, args.repeats)
    write_image(out["panoptic"], draw_panoptic(frame, pan), "the panoptic image")
    names = [pan.class_names[c] for c in pan.segments["class"]]
    things = int(pan.segments["is_thing"].sum())
    print(
        f"\n[panoptic] {len(pan.segments)} segments ({things} things): {', '.join(names) or 'none'}"
    )
    print(pan_times.table())

    # 2. interactive: encoder once, then cheap prompt decodes, on objects of the frame
    targets, origin = demo.choose_targets(pan)
    points, boxes, what = demo.plan_prompts(targets, frame.shape[:2])
    res, prompt_times = demo.time_prompts(seg, frame, points, boxes, args.repeats)
    write_image(out["prompts"], draw_prompts(frame, res, points, boxes), "the prompts image")
    prompts, lines = demo.describe_prompts(points, boxes, what, res)
    summary = prompt_times.summary()
    ratio = pan_times.summary()["total"]["p50_ms"] / summary["prompt_1pt"]["p50_ms"]
    print(f"\n[interactive] prompts on {origin}:\n" + "\n".join(lines))
    print(prompt_times.table())
    print(f"one prompt after set_image costs 1/{ratio:.1f} of a full panoptic frame")

    # 3. one pass over the clip: click-to-track and online video instance segmentation
    click, target = demo.track_click(targets, frame.shape[:2])
    states = ObjectStates()
    track_times, n, wall = process_stream(
        seg,
        source,
        task="track",
        out_video=out["tracks"],
        prompts={"points": [click]},
        prompt_video=out["tracking"],
        states=states,
    )
    started, tracks_line = tracks_report(seg)
    print(
        f"\n[click-to-track] clicked (x, y) = {click} on {target} in the first frame:\n  "
        + "\n  ".join(states.lines())
        + f"\n[tracking] {n} frames in {wall:.2f} s = {n / wall:.1f} FPS end to end (one "
        "encoder pass per frame feeds the video tracker and the clicked object's tracker; "
        f"capture + letterbox of frame t+1 overlap inference of frame t)\n{tracks_line}"
    )
    print(track_times.table())

    report.update(
        panoptic=pan_times.summary(),
        interactive=summary,
        prompts=prompts,
        prompt_vs_frame_ratio=ratio,
        tracking=track_times.summary(),
        tracking_fps=n / wall,
        frames=n,
        tracks_started=started,
        click_to_track={"click": list(click), "target": target, "states": states.counts},
    )
    out["timings"].write_text(json.dumps(report, indent=1) + "\n")  # OSError: one line
    check_written(out["timings"], "the timings report")
    print(
        f"\nwrote {args.out}/panoptic.png, prompts.png, tracking.mp4 (the clicked object, "
        f"{n} frames), tracks.mp4 ({n} frames), timings.json"
    )
    return 0


def _outputs(folder: Path) -> dict[str, Path]:
    """The five files ``demo`` writes in ``folder``, each checked (``writers.check_output``:
    not a directory, its folder made)."""
    from ..apps.writers import IMAGE_SUFFIXES, VIDEO_CODECS, check_output

    names = {
        "panoptic": ("panoptic.png", "the panoptic image", IMAGE_SUFFIXES),
        "prompts": ("prompts.png", "the prompts image", IMAGE_SUFFIXES),
        "tracking": ("tracking.mp4", "the click-to-track video", frozenset(VIDEO_CODECS)),
        "tracks": ("tracks.mp4", "the tracks video", frozenset(VIDEO_CODECS)),
        "timings": ("timings.json", "the timings report", None),
    }
    return {k: check_output(folder / name, what, ok) for k, (name, what, ok) in names.items()}
