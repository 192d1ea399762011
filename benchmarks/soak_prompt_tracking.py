"""Soak of click-to-track (issue 27: nothing grows without bound over a 10,000-frame run):
``PromptTracker.step`` on the real-time INT8 bundle over the benchmark's synthetic 640x480
video played forwards and backwards in a loop, 3 objects (the largest things of frame 0,
from their true boxes), with the bookkeeping a live session does:

- every ``--churn`` frames the oldest object is removed and the largest thing of the current
  frame added (new ids keep coming; ids are never reused);
- every 1000 frames, ``BLANK_RUN`` blank frames (everything occluded, then lost after
  ``max_occluded``), after which the objects come back or stay lost;
- every 1000 frames, the first object is refined by a click at the centre of its true box.

Every ``--every`` frames it records the process's resident memory (VmRSS), the tracker's
state (objects, their states, the bytes of their arrays, the size of its object table, its
attributes, the last embedding, the next id), the Python objects alive (``gc``), the
OpenVINO backends' shape caches (static copies, shape counters, compiles pending) and the
median step time of the window. Memory is flat when the RSS at the end is within allocator
noise of the RSS after the warm-up (the first record).

    python benchmarks/soak_prompt_tracking.py      # writes results/prompt_tracking_soak.md/.json
    python benchmarks/soak_prompt_tracking.py --frames 1000 --every 100 --no-write
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time

import numpy as np
from bench_prompt_tracking import (
    INT8_BUNDLE,
    THREADS,
    load,
    pin_threads,
    ping_pong,
    thing_boxes,
    video,
    wait_for_load,
)
from machine import describe, write_results

from rapsam_edge import Segmenter
from rapsam_edge.errors import InputError
from rapsam_edge.profile.memory import current_rss_mib

#: blank frames in a row every 1000 frames: more than the default ``max_occluded`` (15)
BLANK_RUN = 20
#: RSS growth (end over the first record, %) counted as flat: allocator noise
FLAT_PCT = 3.0


def tracker_state(pt) -> dict:
    """What the tracker keeps, by size (its internals, read for the soak only)."""
    objs = pt._objects
    states = [o.state for o in objs.values()]
    return {
        "objects": len(objs),
        "states": {s: states.count(s) for s in ("tracked", "occluded", "lost")},
        "object_array_bytes": sum(
            o.box.nbytes + o.memory.nbytes + o.prompt.nbytes for o in objs.values()
        ),
        "object_table_bytes": sys.getsizeof(objs),
        "tracker_attributes": len(vars(pt)),
        "embedding_bytes": 0 if pt._emb is None else int(pt._emb.feats.nbytes),
        "next_id": pt._next_id,
    }


def backend_caches(seg) -> dict:
    """Per graph: static shape copies, shape counters and compiles pending (OpenVINO)."""
    out = {}
    for name, g in seg.graphs.items():
        if hasattr(g, "_compiled"):
            out[name] = [len(g._compiled), len(g._seen), len(g._pending)]
    return out


def _true_box(vid, index: int) -> list[float] | None:
    try:
        return thing_boxes(vid.segments[index], 1)[0]
    except RuntimeError:  # no thing on that frame
        return None


def soak(frames: int, every: int, churn: int, bundle: str) -> list[dict]:
    """Run the soak; one record per ``every`` frames."""
    pin_threads(THREADS)
    vid = video()
    order = ping_pong(len(vid.images))
    blank = np.full_like(vid.images[0], 127)
    seg = Segmenter(bundle, color_order="RGB")
    pt = seg.prompt_tracker()
    pt.add(vid.images[0], boxes=thing_boxes(vid.segments[0], 3))
    records: list[str] = []
    window: list[float] = []
    refused: list[str] = []
    for t in range(1, frames + 1):
        index = order[t % len(order)]
        frame = blank if 600 <= t % 1000 < 600 + BLANK_RUN else vid.images[index]
        t0 = time.perf_counter()
        pt.step(frame)
        window.append((time.perf_counter() - t0) * 1e3)
        box = _true_box(vid, index) if frame is not blank else None
        try:
            if t % churn == churn // 2 and box is not None:
                pt.remove(pt.ids[0])
                pt.add(None, boxes=[box])
            if t % 1000 == 300 and pt.ids and box is not None:
                pt.refine(pt.ids[0], points=[((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)])
        except InputError as e:  # a prompt whose mask is empty on this frame: counted
            refused.append(f"frame {t}: {e}")
        if t % every == 0:
            gc.collect()
            record = {
                "frame": t,
                "rss_mib": round(current_rss_mib() or float("nan"), 1),
                **tracker_state(pt),
                "gc_objects": len(gc.get_objects()),
                "ov_caches_static_seen_pending": backend_caches(seg),
                "step_p50_ms": round(float(np.median(window)), 2),
                "prompts_refused": len(refused),
            }
            print(record, flush=True)
            # kept as JSON text: strings are not gc-tracked, so the soak's own records do
            # not add to the Python objects it counts
            records.append(json.dumps(record))
            window = []
    seg.close()
    return [json.loads(r) for r in records]


def summary(records: list[dict]) -> dict:
    """RSS growth from the first record and from the settled one (the first at >= 1/5 of the
    frames: by then the prompt counts the tracker makes have been seen and OpenVINO's
    static copies of them, at most ``max_cached_shapes`` per graph, compiled); the largest
    tracker state seen."""
    first, last = records[0], records[-1]
    settled = next(r for r in records if r["frame"] >= last["frame"] // 5)
    rss = [r["rss_mib"] for r in records if r["frame"] >= settled["frame"]]

    def growth(base: dict) -> float:
        return round(100.0 * (last["rss_mib"] - base["rss_mib"]) / base["rss_mib"], 2)

    keys = ("objects", "object_array_bytes", "object_table_bytes", "tracker_attributes")
    static = [r["ov_caches_static_seen_pending"].get("prompt_decoder", [0])[0] for r in records]
    return {
        "rss_first_mib": first["rss_mib"],
        "settled_frame": settled["frame"],
        "rss_settled_mib": settled["rss_mib"],
        "rss_end_mib": last["rss_mib"],
        "rss_max_after_settled_mib": max(rss),
        "rss_growth_from_first_pct": growth(first),
        "rss_growth_from_settled_pct": growth(settled),
        "flat": bool(growth(settled) < FLAT_PCT and max(rss) <= rss[0] * (1 + FLAT_PCT / 100)),
        "prompt_decoder_static_copies_first_settled_end": [
            static[0],
            static[records.index(settled)],
            static[-1],
        ],
        "state_max": {k: max(r[k] for r in records) for k in keys},
        "state_same_first_last": all(first[k] == last[k] for k in keys),
        "gc_objects_first_last": [first["gc_objects"], last["gc_objects"]],
        "ids_given": last["next_id"] - 1,
    }


def table(records: list[dict], s: dict, facts: dict) -> list[str]:
    lines = [
        f"# Click-to-track soak: {facts['frames']:,} frames, memory and state",
        "",
        f"Machine: {facts['machine']}; load average {facts['load_before']} at the start, "
        f"{facts['load_after']} at the end; {facts['bundle']}, {facts['frames']} frames "
        f"(640x480, the benchmark's video looped), 3 objects, one removed and one added every "
        f"{facts['churn']} frames, {BLANK_RUN} blank frames and one refine every 1000; "
        f"{facts['wall_s']} s. Command `python benchmarks/soak_prompt_tracking.py`.",
        "",
        f"RSS (VmRSS) at frame {records[0]['frame']} {s['rss_first_mib']} MiB, at frame "
        f"{s['settled_frame']} {s['rss_settled_mib']} MiB, at the end {s['rss_end_mib']} MiB "
        f"(max after frame {s['settled_frame']}: {s['rss_max_after_settled_mib']} MiB): "
        f"growth {s['rss_growth_from_settled_pct']} % from frame {s['settled_frame']} -> "
        f"**{'flat' if s['flat'] else 'NOT flat'}** (flat: < {FLAT_PCT:.0f} %); "
        f"{s['rss_growth_from_first_pct']} % from frame {records[0]['frame']}, the steps "
        "being OpenVINO's static copies of the prompt decoder, one per prompt count seen "
        "twice (first, settled, end: "
        f"{s['prompt_decoder_static_copies_first_settled_end']}; an LRU of at most "
        "`max_cached_shapes`, 8 by default). Tracker state at the first and last record "
        f"the same size: {s['state_same_first_last']}; largest: {s['state_max']}. Ids given: "
        f"{s['ids_given']}. Python objects alive (first, last record): "
        f"{s['gc_objects_first_last']}.",
        "",
        "| frame | RSS MiB | objects | tracked / occluded / lost | object arrays B | "
        "object table B | tracker attrs | embedding B | next id | Python objects | "
        "OpenVINO caches (static, seen, pending) | step p50 ms |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in records:
        st = " / ".join(str(r["states"][k]) for k in ("tracked", "occluded", "lost"))
        caches = "; ".join(f"{g} {v}" for g, v in r["ov_caches_static_seen_pending"].items())
        lines.append(
            f"| {r['frame']} | {r['rss_mib']} | {r['objects']} | {st} | "
            f"{r['object_array_bytes']} | {r['object_table_bytes']} | "
            f"{r['tracker_attributes']} | {r['embedding_bytes']} | {r['next_id']} | "
            f"{r['gc_objects']} | {caches} | {r['step_p50_ms']} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=500, help="frames between records")
    parser.add_argument("--churn", type=int, default=500, help="frames between remove+add")
    parser.add_argument("--bundle", default=INT8_BUNDLE)
    parser.add_argument("--max-load", type=float, default=3.0, help="wait for a lower load")
    parser.add_argument("--patience", type=float, default=300.0, help="seconds to wait")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    load_before = wait_for_load(args.max_load, args.patience)
    t0 = time.perf_counter()
    records = soak(args.frames, args.every, args.churn, args.bundle)
    facts = {
        "machine": describe(),
        "load_before": load_before,
        "load_after": load(),
        "bundle": args.bundle,
        "frames": args.frames,
        "churn": args.churn,
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    s = summary(records)
    lines = table(records, s, facts)
    print("\n".join(lines))
    if not args.no_write:
        write_results(
            "prompt_tracking_soak", lines, {"facts": facts, "summary": s, "records": records}
        )


if __name__ == "__main__":
    main()
