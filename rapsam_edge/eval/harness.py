"""Evaluate a ``Segmenter`` (any backend, or the torch model) on a dataset in the standard
formats: PQ on COCO panoptic, interactive 1-click mIoU (+ NoC on a subset), and video AP on
YouTube-VIS (task "all": metrics in percent, NoC in clicks); prompted video object
segmentation, DAVIS J&F in [0, 1] (task "vos", ``eval.vos_protocol``). ``TASKS`` is the table
the ``eval`` verb's ``--task`` reads."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .pq import PanopticQuality
from .prompt_iou import InteractiveEval, first_clicks, positive_only
from .vis_ap import VideoInstanceAP

Progress = Callable[[str, int, int], None]


def _no_progress(_task: str, _done: int, _total: int) -> None:
    return None


def _take(n: int, limit: int | None) -> int:
    return n if limit is None else min(n, limit)


def evaluate_panoptic_and_prompts(
    segmenter,
    coco_root: Path,
    split: str,
    *,
    max_images: int | None = None,
    noc_images: int = 0,
    progress: Progress = _no_progress,
) -> dict[str, Any]:
    """PQ over the split's images and 1-click mIoU over every non-crowd GT segment (the click
    at the mask's distance-transform maximum, all clicks of an image in one prompt batch).
    NoC@85/90 on the first ``noc_images`` images (positive clicks only: see eval.prompt_iou).
    """
    from ..data.coco_panoptic import CocoPanopticDataset

    data = CocoPanopticDataset(coco_root, split)
    names, is_thing = _class_names(data.classes)
    pq = PanopticQuality(len(is_thing), is_thing)
    clicks = InteractiveEval()
    # single-click IoU, is thing, GT area, train class id
    per_segment: list[tuple[float, bool, int, int]] = []
    n = _take(len(data), max_images)
    t0 = time.perf_counter()
    for i in range(n):
        sample = data[i]
        result = segmenter.panoptic(sample.image)
        pred_segments = [{"id": int(s["id"]), "class": int(s["class"])} for s in result.segments]
        gt_segments = [
            {"id": s.id, "class": s.class_id, "iscrowd": int(s.iscrowd)} for s in sample.segments
        ]
        pq.update(result.panoptic_map, pred_segments, sample.ids, gt_segments)

        targets = [s for s in sample.segments if not s.iscrowd]
        if targets:
            gt_masks = sample.ids[None] == np.array([s.id for s in targets])[:, None, None]
            points = first_clicks(gt_masks).astype(np.float64) + 0.5  # pixel centres
            emb = segmenter.set_image(sample.image)
            pred = segmenter.prompt(emb, points=points)
            ious = clicks.update_masks(pred.masks, gt_masks)
            per_segment += [
                (float(v), is_thing[t.class_id], int(m.sum()), t.class_id)
                for v, t, m in zip(ious, targets, gt_masks)
                if not math.isnan(v)
            ]
            if i < noc_images:
                clicks.update(gt_masks, positive_only(_best_of_clicks(segmenter, emb)))
        progress("panoptic+prompt", i + 1, n)
    seconds = time.perf_counter() - t0
    out: dict[str, Any] = {**pq.compute(), **clicks.compute(), **miou_breakdown(per_segment)}
    out.pop("per_class", None)
    out.update(miou_by_class(per_segment, names))
    out["num_images"] = n
    out["panoptic_seconds_per_image"] = seconds / max(n, 1)
    return out


#: COCO's object-size ranges (GT area in frame pixels): small < 32^2 <= medium < 96^2 <= large
AREA_RANGES = {"small": (0, 32**2), "medium": (32**2, 96**2), "large": (96**2, math.inf)}


def _class_names(classes: Any) -> tuple[list[str], list[bool]]:
    """The dataset's train classes (``ClassInfo``s or category dicts) -> (names, is thing)."""
    if hasattr(classes[0], "is_thing"):
        return [str(c.name) for c in classes], [bool(c.is_thing) for c in classes]
    return [str(c.get("name", i)) for i, c in enumerate(classes)], [
        bool(c["is_thing"]) for c in classes
    ]


def miou_by_class(
    per_segment: list[tuple[float, bool, int, int]], names: list[str]
) -> dict[str, Any]:
    """Single-click mIoU (percent) per class, from the same first clicks as ``miou``.

    Arguments:
      per_segment: (IoU in [0, 1], is thing, GT area, train class id) per evaluated segment.
      names: train class id -> class name.
    Returns:
      ``miou_per_class``: class name -> {"miou", "n" (segments scored), "is_thing"}, for
      every class with at least one segment scored (the n sum to ``num_segments``);
      ``miou_worst_thing_class``: {"name", "miou", "n"} of the thing class with the lowest
      mIoU (ties: the first in class order), None when no thing segment was scored.
    """
    groups: dict[int, list[float]] = {}
    kinds: dict[int, bool] = {}
    for iou, thing, _area, cls in per_segment:
        groups.setdefault(int(cls), []).append(iou)
        kinds[int(cls)] = bool(thing)
    table: dict[str, dict[str, Any]] = {}
    worst: dict[str, Any] | None = None
    for cls in sorted(groups):
        ious = groups[cls]
        name = names[cls] if 0 <= cls < len(names) else str(cls)
        if name in table:  # two classes of one name: keep both apart
            name = f"{name} ({cls})"
        entry = {
            "miou": 100.0 * math.fsum(ious) / len(ious),
            "n": len(ious),
            "is_thing": kinds[cls],
        }
        table[name] = entry
        if entry["is_thing"] and (worst is None or entry["miou"] < worst["miou"]):
            worst = {"name": name, "miou": entry["miou"], "n": entry["n"]}
    return {"miou_per_class": table, "miou_worst_thing_class": worst}


def miou_breakdown(per_segment: Sequence[tuple[Any, ...]]) -> dict[str, float]:
    """Single-click mIoU (percent) by kind and by COCO size range, to show what limits it.

    Arguments:
      per_segment: (IoU in [0, 1], is thing, GT area in pixels[, class id]) per evaluated
        segment.
    Returns:
      ``miou_th`` / ``miou_st`` (things / stuff) and ``miou_small`` / ``miou_medium`` /
      ``miou_large`` (``AREA_RANGES``); NaN where a group is empty.
    """

    def mean(rows: list[tuple[Any, ...]]) -> float:
        return 100.0 * math.fsum(r[0] for r in rows) / len(rows) if rows else float("nan")

    out = {
        "miou_th": mean([r for r in per_segment if r[1]]),
        "miou_st": mean([r for r in per_segment if not r[1]]),
    }
    for name, (lo, hi) in AREA_RANGES.items():
        out[f"miou_{name}"] = mean([r for r in per_segment if lo <= r[2] < hi])
    return out


def _best_of_clicks(segmenter, emb) -> Callable[[np.ndarray], np.ndarray]:
    """Several positive clicks on one object -> the mask of the click whose prompt has the
    highest predicted IoU (the model decodes each prompt on its own)."""

    def predict(points: np.ndarray) -> np.ndarray:
        res = segmenter.prompt(emb, points=np.asarray(points, dtype=np.float64) + 0.5)
        return res.masks[int(np.argmax(res.iou))]

    return predict


def evaluate_video(
    segmenter,
    ytvis_root: Path,
    split: str,
    *,
    max_videos: int | None = None,
    progress: Progress = _no_progress,
) -> dict[str, Any]:
    """Online tracking over each video; YouTube-VIS AP of the resulting tracks, plus ID
    switches per 100 GT-instance frames (a GT instance's matched track changes)."""
    from ..data.ytvis import YtvisDataset

    data = YtvisDataset(ytvis_root, split)
    ap = VideoInstanceAP()
    n = _take(len(data), max_videos)
    switches, instance_frames = 0, 0
    for v in range(n):
        video = data[v]
        segmenter.reset_tracks()
        tracks: dict[int, dict[str, Any]] = {}
        track_maps = []
        for frame in video.images:
            r = segmenter.track(frame)
            track_maps.append(r.track_map)
            for tid, cls, score in zip(
                r.track_ids.tolist(), r.track_classes.tolist(), r.track_scores.tolist()
            ):
                entry = tracks.setdefault(tid, {"scores": [], "classes": []})
                entry["scores"].append(score)
                entry["classes"].append(cls)
        maps = np.stack(track_maps)
        ids = list(tracks)
        pred_masks = [maps == tid for tid in ids]
        pred_classes = [int(np.bincount(tracks[t]["classes"]).argmax()) for t in ids]
        pred_scores = [float(np.mean(tracks[t]["scores"])) for t in ids]
        gt = [inst for inst in video.instances if not inst.iscrowd]
        ap.update(
            [g.masks for g in gt], [g.class_id for g in gt], pred_masks, pred_classes, pred_scores
        )
        s, f = _id_switches(maps, gt)
        switches, instance_frames = switches + s, instance_frames + f
        progress("video", v + 1, n)
    out = ap.compute()
    out.pop("per_category", None)
    out["num_videos"] = n
    out["id_switches"] = switches
    out["id_switches_per_100_frames"] = (
        100.0 * switches / instance_frames if instance_frames else math.nan
    )
    return out


def _id_switches(track_maps: np.ndarray, gt_instances) -> tuple[int, int]:
    """(switches, GT-visible frames) over a video's T x H x W track maps: ``eval.vos``'s
    ``IdSwitches`` per GT instance over all its frames, no initial id (the first match sets
    it): the track matching it with IoU >= 0.5 on each frame (on an id map's disjoint masks,
    the one with the highest IoU); a switch is a change of that track between matched
    frames."""
    from .vos import IdSwitches, index_map_predictions

    switches, frames = 0, 0
    for inst in gt_instances:
        counter = IdSwitches()
        for t in range(len(track_maps)):
            counter.update(inst.masks[t], index_map_predictions(track_maps[t], inst.masks[t]))
        switches, frames = switches + counter.switches, frames + counter.visible
    return switches, frames


def evaluate(
    segmenter,
    data_root: str | Path,
    *,
    split: str = "val",
    max_images: int | None = None,
    max_videos: int | None = None,
    noc_images: int = 0,
    progress: Progress = _no_progress,
) -> dict[str, Any]:
    """All metrics on a make-data style root (``coco/`` and, if present, ``ytvis/``). Keys:
    ``pq``, ``miou``, ``vis_ap`` (percent) and the detailed ones."""
    root = Path(data_root)
    metrics: dict[str, Any] = {"split": split}
    metrics.update(
        evaluate_panoptic_and_prompts(
            segmenter,
            root / "coco",
            split,
            max_images=max_images,
            noc_images=noc_images,
            progress=progress,
        )
    )
    if (root / "ytvis").exists():
        video = evaluate_video(
            segmenter, root / "ytvis", split, max_videos=max_videos, progress=progress
        )
        metrics.update(
            {f"vis_{k}" if not k.startswith(("id_", "num_")) else k: v for k, v in video.items()}
        )
    return metrics


def require_prompt_tracker(segmenter: Any) -> None:
    """Raise unless ``segmenter`` (an instance or its class) has ``prompt_tracker()``.

    Raises:
      ConfigError: it has none (this build has no prompt tracker)."""
    if not callable(getattr(segmenter, "prompt_tracker", None)):
        name = segmenter.__name__ if isinstance(segmenter, type) else type(segmenter).__name__
        raise ConfigError(
            f"--task vos needs a prompt tracker, and {name} has no prompt_tracker() in this "
            "build of rapsam-edge",
            hint="update rapsam-edge to a release with the prompt tracker, or use --task all",
        )


def evaluate_vos_task(
    segmenter: Any,
    data_root: str | Path,
    *,
    split: str = "val",
    max_videos: int | None = None,
    progress: Progress = _no_progress,
    dataset: Any = None,
) -> dict[str, Any]:
    """Task "vos": ``eval.vos_protocol.evaluate_vos`` with ``segmenter.prompt_tracker`` on the
    YouTube-VIS data under ``data_root`` (``data_root/ytvis`` or ``data_root`` itself), and
    the panoptic video tracker (``segmenter.track``) on the same videos for comparison.
    ``dataset``: that split already opened (``vos_protocol.open_vos_split``), not read again."""
    from .vos_protocol import box_prompt_of, evaluate_vos, find_ytvis_root, panoptic_tracker_of

    require_prompt_tracker(segmenter)
    out = evaluate_vos(
        segmenter.prompt_tracker,
        find_ytvis_root(data_root, split) if dataset is None else dataset,
        split,
        box_prompt=box_prompt_of(segmenter),
        panoptic=panoptic_tracker_of(segmenter),
        max_videos=max_videos,
        progress=progress,
    )
    return {"split": split, **out}


#: ``eval --task NAME`` -> its function: (segmenter, data root, **options) -> metrics
#: (``commands.eval.TASKS`` says what each measures)
TASKS: dict[str, Callable[..., dict[str, Any]]] = {"all": evaluate, "vos": evaluate_vos_task}
