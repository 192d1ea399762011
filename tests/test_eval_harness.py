"""The evaluation harness end to end on generated data: an oracle segmenter that answers with
the ground truth must score 100 everywhere (and a degraded one less)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from rapsam_edge import ops
from rapsam_edge.data.coco_panoptic import CocoPanopticDataset
from rapsam_edge.data.generate import make_dataset
from rapsam_edge.data.ytvis import YtvisDataset
from rapsam_edge.eval.harness import evaluate
from rapsam_edge.runtime.results import PanopticResult, PromptResult, TrackResult


def _key(image: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


class OracleSegmenter:
    """Looks the ground truth up by image content; ``drop_every`` > 0 forgets segments."""

    def __init__(self, root: Path, split: str, drop_every: int = 0) -> None:
        self.drop_every = drop_every
        self.images = {}
        for sample in CocoPanopticDataset(root / "coco", split):
            self.images[_key(sample.image)] = sample
        self.frames = {}
        for video in YtvisDataset(root / "ytvis", split):
            ids = video.ids()
            for t, frame in enumerate(video.images):
                self.frames[_key(frame)] = (ids[t], [i.class_id for i in video.instances])

    def panoptic(self, image: np.ndarray) -> PanopticResult:
        sample = self.images[_key(image)]
        segs = [
            s
            for i, s in enumerate(sample.segments)
            if not s.iscrowd and not (self.drop_every and i % self.drop_every == 0)
        ]
        keep = np.isin(sample.ids, [s.id for s in segs])
        label_map = np.where(keep, sample.ids, 0).astype(np.int32)
        records = [
            (s.id, s.class_id, 0, 1.0, int((label_map == s.id).sum()), s.is_thing) for s in segs
        ]
        return PanopticResult(label_map, np.array(records, dtype=ops.SEGMENT_DTYPE), [])

    def set_image(self, image: np.ndarray):
        return self.images[_key(image)]  # the handle prompt() takes

    def prompt(self, emb, points=None, boxes=None) -> PromptResult:
        ids = emb.ids
        pts = np.asarray(points, dtype=float).astype(int)
        masks = np.stack([ids == ids[y, x] for x, y in pts])
        if self.drop_every:
            masks[:: self.drop_every] = False
        n = len(masks)
        return PromptResult(masks, np.ones(n, np.float32), np.ones(n, np.float32))

    def reset_tracks(self) -> None:
        pass

    def track(self, frame: np.ndarray) -> TrackResult:
        ids, classes = self.frames[_key(frame)]
        track_ids = np.array([k for k in np.unique(ids) if k > 0], dtype=np.int32)
        cls = np.array([classes[k - 1] for k in track_ids], dtype=np.int32)
        return TrackResult(
            0, ids.astype(np.int32), track_ids, cls, np.ones(len(track_ids), np.float32), None
        )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evaldata")
    make_dataset(
        root,
        seed=11,
        split="val",
        num_images=6,
        num_videos=2,
        video_length=5,
        image_size=(96, 128),
        progress=False,
    )
    return root


def test_oracle_scores_100(data: Path):
    metrics = evaluate(OracleSegmenter(data, "val"), data, split="val", noc_images=2)
    assert metrics["pq"] == pytest.approx(100.0)
    assert metrics["miou"] == pytest.approx(100.0)
    assert metrics["miou_th"] == pytest.approx(100.0) and metrics["miou_st"] == pytest.approx(100.0)
    assert metrics["noc@90"] == pytest.approx(1.0)
    assert metrics["vis_ap"] == pytest.approx(100.0)
    assert metrics["id_switches"] == 0
    assert metrics["num_images"] == 6 and metrics["num_videos"] == 2


def test_degraded_oracle_scores_less(data: Path):
    metrics = evaluate(
        OracleSegmenter(data, "val", drop_every=2), data, split="val", max_images=4, max_videos=1
    )
    assert 0 < metrics["pq"] < 100
    assert 0 < metrics["miou"] < 100
    assert metrics["num_images"] == 4 and metrics["num_videos"] == 1


def test_miou_breakdown_groups():
    from rapsam_edge.eval.harness import miou_breakdown

    rows = [(1.0, True, 100), (0.5, True, 5000), (0.0, False, 20000), (1.0, False, 1023)]
    out = miou_breakdown(rows)
    assert out["miou_th"] == pytest.approx(75.0) and out["miou_st"] == pytest.approx(50.0)
    assert out["miou_small"] == pytest.approx(100.0)  # areas 100 and 1023 (< 32^2)
    assert out["miou_medium"] == pytest.approx(50.0)  # 5000
    assert out["miou_large"] == pytest.approx(0.0)  # 20000 >= 96^2
    assert all(np.isnan(v) for v in miou_breakdown([]).values())


class ClassBlindOracle(OracleSegmenter):
    """Answers every click with its own GT mask, except on segments of ``blind`` (a train
    class id): there the mask is empty (1-click IoU 0)."""

    def __init__(self, root: Path, split: str, blind: int) -> None:
        super().__init__(root, split)
        self.blind = blind

    def prompt(self, emb, points=None, boxes=None) -> PromptResult:
        out = super().prompt(emb, points=points)
        classes = {s.id: s.class_id for s in emb.segments}
        for k, (x, y) in enumerate(np.asarray(points, dtype=float).astype(int)):
            if classes.get(int(emb.ids[y, x])) == self.blind:
                out.masks[k] = False
        return out


def _weighted(per_class: dict) -> float:
    return sum(v["miou"] * v["n"] for v in per_class.values()) / sum(
        v["n"] for v in per_class.values()
    )


def test_miou_per_class_from_the_same_clicks(data: Path):
    oracle = evaluate(OracleSegmenter(data, "val"), data, split="val")
    table = oracle["miou_per_class"]
    assert table and all(v["miou"] == pytest.approx(100.0) for v in table.values())
    assert sum(v["n"] for v in table.values()) == oracle["num_segments"]
    classes = CocoPanopticDataset(data / "coco", "val").classes
    kinds = {c.name: c.is_thing for c in classes}
    assert all(v["is_thing"] == kinds[name] for name, v in table.items())

    degraded = evaluate(OracleSegmenter(data, "val", drop_every=2), data, split="val")
    table = degraded["miou_per_class"]
    assert sum(v["n"] for v in table.values()) == degraded["num_segments"]
    assert _weighted(table) == pytest.approx(degraded["miou"])
    assert any(v["miou"] < 100 for v in table.values())


def test_worst_thing_class_names_the_class_that_fails(data: Path):
    samples = CocoPanopticDataset(data / "coco", "val")
    things = sorted(
        {s.class_id for smp in samples for s in smp.segments if s.is_thing and not s.iscrowd}
    )
    blind = things[len(things) // 2]
    name = samples.classes[blind].name
    metrics = evaluate(ClassBlindOracle(data, "val", blind), data, split="val")
    table = metrics["miou_per_class"]
    assert table[name]["miou"] == pytest.approx(0.0) and table[name]["is_thing"]
    assert all(v["miou"] == pytest.approx(100.0) for k, v in table.items() if k != name)
    worst = metrics["miou_worst_thing_class"]
    assert worst == {"name": name, "miou": pytest.approx(0.0), "n": table[name]["n"]}
    assert metrics["miou"] < 100 and _weighted(table) == pytest.approx(metrics["miou"])


def test_one_class_per_class_miou_is_the_miou(tmp_path: Path, data: Path):
    """Every segment relabelled to one thing class: its per-class mIoU is the mIoU."""
    import json
    import shutil

    root = tmp_path / "one"
    shutil.copytree(data, root)
    ann = root / "coco" / "annotations" / "panoptic_val.json"
    spec = json.loads(ann.read_text())
    cat = next(c for c in spec["categories"] if c["isthing"])
    spec["categories"] = [cat]
    for a in spec["annotations"]:
        for s in a["segments_info"]:
            s["category_id"] = cat["id"]
    ann.write_text(json.dumps(spec))
    metrics = evaluate(OracleSegmenter(root, "val", drop_every=3), root, split="val")
    assert list(metrics["miou_per_class"]) == [cat["name"]]
    entry = metrics["miou_per_class"][cat["name"]]
    assert 0 < metrics["miou"] < 100
    assert entry["miou"] == pytest.approx(metrics["miou"])
    assert entry["n"] == metrics["num_segments"] and entry["is_thing"]
    assert metrics["miou_worst_thing_class"]["name"] == cat["name"]


def test_miou_by_class_rows():
    from rapsam_edge.eval.harness import miou_by_class

    rows = [(1.0, True, 10, 0), (0.5, True, 10, 0), (0.25, True, 10, 2), (0.0, False, 10, 1)]
    out = miou_by_class(rows, ["a", "b", "c"])
    assert out["miou_per_class"] == {
        "a": {"miou": 75.0, "n": 2, "is_thing": True},
        "b": {"miou": 0.0, "n": 1, "is_thing": False},
        "c": {"miou": 25.0, "n": 1, "is_thing": True},
    }
    assert out["miou_worst_thing_class"] == {"name": "c", "miou": 25.0, "n": 1}
    assert miou_by_class([], ["a"]) == {"miou_per_class": {}, "miou_worst_thing_class": None}
    stuff_only = miou_by_class([(0.5, False, 10, 1)], ["a", "b"])
    assert stuff_only["miou_worst_thing_class"] is None
