"""Soak test of the video path: ``Segmenter.stream`` with tracking over an endless source.

Frames come from the shipped sample clip played forwards and backwards in a loop (real
decoded video, objects that move and reverse), through the capture thread, the three graphs,
the C++ post-processing and the tracker, as a robot app runs them. Every frame records the
process RSS, the tracker's live tracks and the end-to-end latency. The shipped model names
few objects at the shipped thresholds, so the soak runs with ``--score-threshold 0.1`` (also
the tracker's birth score) to keep tracks starting, living and dying (it exercises the
bookkeeping, not the accuracy).

    python tools/soak.py --frames 10000 --json soak.json      # the long soak (note figures)
    python tools/soak.py --frames 300                          # what CI runs (tests/test_soak.py)

Reported: RSS after the warm-up and at the end (growth in %), live tracks (max, final) and
tracks started, p50 latency over the first and the last 10 % of the frames (drift ratio).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from rapsam_edge import Segmenter
from rapsam_edge.assets import sample_clip
from rapsam_edge.profile.memory import current_rss_mib
from rapsam_edge.runtime.tracker import TrackerConfig

#: the soak keeps every weak segment (many tracks, the most work), far below the bundle default
SOAK_SCORE = 0.1


def clip_frames(n: int) -> Iterator[np.ndarray]:
    """``n`` BGR frames: the sample clip forwards, backwards, forwards, ... (decoded once)."""
    cap = cv2.VideoCapture(str(sample_clip()))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if not frames:
        raise RuntimeError(f"cannot decode {sample_clip()}")
    loop = frames + frames[-2:0:-1]
    for i in range(n):
        yield loop[i % len(loop)]


def soak(
    frames: int,
    *,
    bundle: str | Path | None = None,
    backend: str = "auto",
    warmup: int = 100,
    score_threshold: float = SOAK_SCORE,
) -> dict:
    seg = Segmenter(
        bundle,
        backend=backend,
        score_threshold=score_threshold,
        color_order="BGR",
        tracker=TrackerConfig(birth_score=score_threshold),
    )
    tracker = seg.new_tracker()
    if current_rss_mib() is None:
        raise RuntimeError("the soak reads the resident set size from /proc (Linux)")
    rss, live, latency = [], [], []
    t_last = time.perf_counter()
    for _, result in seg.stream(clip_frames(frames), tracker=tracker):
        now = time.perf_counter()
        latency.append((now - t_last) * 1e3)
        t_last = now
        rss.append(current_rss_mib())
        live.append(len(tracker.tracks))
        del result
    seg.close()
    tenth = max(1, frames // 10)
    base = rss[min(warmup, len(rss) - 1)]
    first, last = (
        float(np.median(latency[warmup : warmup + tenth])),
        float(np.median(latency[-tenth:])),
    )
    return {
        "frames": frames,
        "bundle": seg.bundle.name,
        "backend": seg.backend_name,
        "score_threshold": score_threshold,
        "rss_after_warmup_mb": round(base, 1),
        "rss_end_mb": round(rss[-1], 1),
        "rss_max_mb": round(max(rss[warmup:]), 1),
        "rss_growth_pct": round(100.0 * (rss[-1] - base) / base, 2),
        "live_tracks_max": int(max(live)),
        "live_tracks_final": int(live[-1]),
        "tracks_started": int(tracker.tracks_started),
        "latency_p50_first_ms": round(first, 2),
        "latency_p50_last_ms": round(last, 2),
        "latency_drift": round(last / first, 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=10_000)
    p.add_argument("--bundle", default=None, help="bundle (default: the shipped one)")
    p.add_argument("--backend", default="auto")
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--score-threshold", type=float, default=0.1)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    report = soak(
        args.frames,
        bundle=args.bundle,
        backend=args.backend,
        warmup=args.warmup,
        score_threshold=args.score_threshold,
    )
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
