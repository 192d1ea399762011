"""COCO panoptic and YouTube-VIS writers/readers, and make_dataset."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from rapsam_edge.contract.panoptic_ids import id_to_rgb
from rapsam_edge.data.classes import CLASSES
from rapsam_edge.data.coco_panoptic import CocoPanopticDataset, CocoPanopticWriter
from rapsam_edge.data.generate import item_rng, make_dataset
from rapsam_edge.data.scenes import generate_scene
from rapsam_edge.data.segments import Segment
from rapsam_edge.data.video import generate_video
from rapsam_edge.data.ytvis import YtvisDataset, YtvisWriter
from rapsam_edge.ops import rle_encode

SIZE = (96, 128)


def test_coco_panoptic_round_trip(tmp_path):
    scenes = [generate_scene(s, size=SIZE) for s in range(4)]
    with CocoPanopticWriter(tmp_path, "val") as w:
        for s in scenes:
            w.add(s.image, s.ids, s.segments)
    ds = CocoPanopticDataset(tmp_path, "val")
    assert len(ds) == 4
    assert ds.cat_to_train == {c.coco_id: c.id for c in CLASSES}
    assert [(c.id, c.name, c.is_thing) for c in ds.classes] == [
        (c.id, c.name, c.is_thing) for c in CLASSES
    ]
    for scene, sample in zip(scenes, ds):
        assert np.array_equal(sample.image, scene.image)
        assert np.array_equal(sample.ids, scene.ids) and sample.ids.dtype == np.int32
        assert sample.segments == scene.segments
    data = json.loads((tmp_path / "annotations" / "panoptic_val.json").read_text())
    assert {"images", "annotations", "categories"} <= set(data)
    assert (tmp_path / "val" / data["images"][0]["file_name"]).is_file()
    assert (tmp_path / "panoptic_val" / data["annotations"][0]["file_name"]).is_file()


def _user_dataset(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """A hand-made COCO panoptic set as a user would bring: sparse category ids, JPEG image,
    large segment ids, a crowd segment, void pixels, an unlisted id in the PNG, and the PNG
    folder under annotations/ (COCO's zip layout)."""
    h, w = 40, 60
    ids = np.zeros((h, w), np.int64)
    ids[:20] = 3_000_000  # stuff "sky" (category 187)
    ids[20:] = 120  # stuff "road" (category 149)
    ids[5:15, 10:30] = 4_000  # person (category 1)
    ids[25:35, 40:55] = 7_000  # crowd of cars (category 3)
    ids[0:2, 0:2] = 0  # void
    ids[38:40, 58:60] = 555  # present in the PNG, absent from segments_info -> void
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 0] = np.where(ids == 4_000, 200, 30).astype(np.uint8)
    image[..., 1] = np.arange(w, dtype=np.uint8)[None] * 4
    image[..., 2] = 128
    (root / "images2017").mkdir(parents=True)
    cv2.imwrite(str(root / "images2017" / "a.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    (root / "annotations" / "panoptic_images2017").mkdir(parents=True)
    cv2.imwrite(
        str(root / "annotations" / "panoptic_images2017" / "a.png"),
        cv2.cvtColor(id_to_rgb(ids), cv2.COLOR_RGB2BGR),
    )

    def info(sid, cat, crowd=0):
        ys, xs = np.nonzero(ids == sid)
        box = [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1]
        return {
            "id": sid,
            "category_id": cat,
            "iscrowd": crowd,
            "bbox": box,
            "area": int((ids == sid).sum()),
        }

    ann = {
        "images": [{"id": 42, "file_name": "a.jpg", "height": h, "width": w}],
        "annotations": [
            {
                "image_id": 42,
                "file_name": "a.png",
                "segments_info": [
                    info(3_000_000, 187),
                    info(120, 149),
                    info(4_000, 1),
                    info(7_000, 3, crowd=1),
                ],
            }
        ],
        "categories": [
            {"id": 1, "name": "person", "isthing": 1, "supercategory": "person"},
            {"id": 3, "name": "car", "isthing": 1, "supercategory": "vehicle"},
            {"id": 149, "name": "road", "isthing": 0, "supercategory": "ground"},
            {"id": 187, "name": "sky-other-merged", "isthing": 0, "supercategory": "sky"},
        ],
    }
    (root / "annotations" / "panoptic_images2017.json").write_text(json.dumps(ann))
    return image, ids


def test_reads_a_user_coco_panoptic_dataset(tmp_path):
    image, ids = _user_dataset(tmp_path)
    ds = CocoPanopticDataset(tmp_path, "images2017")
    assert ds.cat_to_train == {1: 0, 3: 1, 149: 2, 187: 3}
    assert [(c.id, c.name, c.is_thing, c.coco_id) for c in ds.classes] == [
        (0, "person", True, 1),
        (1, "car", True, 3),
        (2, "road", False, 149),
        (3, "sky-other-merged", False, 187),
    ]
    s = ds[0]
    assert s.image_id == 42 and s.file_name == "a.jpg"
    assert s.image.shape == (40, 60, 3) and s.image.dtype == np.uint8
    assert np.abs(s.image.astype(int) - image).mean() < 8  # JPEG, RGB order
    assert s.image[10, 20, 0] > 150 and s.image[30, 5, 0] < 80  # red person, not BGR
    expected = np.where(ids == 555, 0, ids).astype(np.int32)
    assert np.array_equal(s.ids, expected)
    by_id = {seg.id: seg for seg in s.segments}
    assert by_id[4_000] == Segment(4_000, 0, True, 200, (10, 5, 20, 10), False)
    assert by_id[7_000].class_id == 1 and by_id[7_000].iscrowd and by_id[7_000].is_thing
    assert by_id[120].class_id == 2 and not by_id[120].is_thing
    assert by_id[3_000_000].class_id == 3
    # a vocabulary mapping that leaves out "car": its segment becomes void
    ds2 = CocoPanopticDataset(tmp_path, "images2017", category_map={1: 5, 149: 9, 187: 9})
    s2 = ds2[0]
    assert {seg.id for seg in s2.segments} == {4_000, 120, 3_000_000}
    assert not (s2.ids == 7_000).any() and (s2.ids == 0).sum() == 4 + 4 + 150
    assert [seg.class_id for seg in s2.segments] == [9, 9, 5]


def test_ytvis_round_trip(tmp_path):
    videos = [generate_video(s, size=SIZE, length=5) for s in range(3)]
    with YtvisWriter(tmp_path, "train") as w:
        for v in videos:
            w.add_video(v.images, v.ids, v.segments)
    data = json.loads((tmp_path / "annotations" / "instances_train.json").read_text())
    assert [c["id"] for c in data["categories"]] == list(range(1, 9))
    assert data["videos"][0]["length"] == 5 and len(data["videos"][0]["file_names"]) == 5
    ds = YtvisDataset(tmp_path, "train")
    assert len(ds) == 3
    for v, sample in zip(videos, ds):
        assert np.array_equal(sample.images, v.images)
        thing_ids = sorted({s.id for f in v.segments for s in f if s.is_thing})
        assert len(sample.instances) == len(thing_ids) > 0
        for inst, sid in zip(sample.instances, thing_ids):
            assert inst.class_id == v.classes[sid]  # thing train ids are shared: 0..7
            assert np.array_equal(inst.masks, v.ids == sid)
            for t in range(5):
                seg = next((s for s in v.segments[t] if s.id == sid), None)
                assert inst.areas[t] == (None if seg is None else seg.area)
                assert inst.bboxes[t] == (None if seg is None else seg.bbox)
        expected = np.zeros_like(v.ids)
        for k, sid in enumerate(thing_ids):
            expected[v.ids == sid] = k + 1
        assert np.array_equal(sample.ids(), expected)


def test_ytvis_reads_uncompressed_rle_and_unannotated_split(tmp_path):
    """Real YouTube-VIS 2019 train files store uncompressed RLE (counts as int lists)."""
    frames = np.zeros((2, 8, 10, 3), np.uint8)
    for t in range(2):
        path = tmp_path / "train" / "JPEGImages" / "abc" / f"{t:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), frames[t])
    mask = np.zeros((8, 10), bool)
    mask[2:5, 3:7] = True
    runs, value, count = [], False, 0
    for v in mask.T.ravel():  # column-major runs, starting with background
        if v != value:
            runs, value, count = [*runs, count], v, 0
        count += 1
    runs.append(count)
    ann = {
        "videos": [
            {
                "id": 9,
                "file_names": ["abc/00000.jpg", "abc/00001.jpg"],
                "height": 8,
                "width": 10,
                "length": 2,
            }
        ],
        "categories": [{"id": 5, "name": "cat"}, {"id": 40, "name": "zebra"}],
        "annotations": [
            {
                "id": 1,
                "video_id": 9,
                "category_id": 40,
                "iscrowd": 0,
                "segmentations": [None, {"size": [8, 10], "counts": runs}],
                "areas": [None, 12],
                "bboxes": [None, [3.0, 2.0, 4.0, 3.0]],
            }
        ],
    }
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_train.json").write_text(json.dumps(ann))
    s = YtvisDataset(tmp_path, "train")[0]
    assert s.name == "abc" and s.images.shape == (2, 8, 10, 3)
    (inst,) = s.instances
    assert inst.class_id == 1 and inst.areas == [None, 12]
    assert not inst.masks[0].any() and np.array_equal(inst.masks[1], mask)
    assert rle_encode(inst.masks[1])["size"] == [8, 10]
    del ann["annotations"]  # the valid / test splits come without annotations
    (tmp_path / "annotations" / "instances_train.json").write_text(json.dumps(ann))
    assert YtvisDataset(tmp_path, "train")[0].instances == []


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_make_dataset_is_deterministic(tmp_path):
    kw = dict(num_images=3, num_videos=2, video_length=3, image_size=(64, 80), progress=False)
    info = make_dataset(tmp_path / "a", seed=5, split="val", **kw)
    make_dataset(tmp_path / "b", seed=5, split="val", **kw)
    make_dataset(tmp_path / "c", seed=6, split="val", **kw)
    a, b, c = (_tree_bytes(tmp_path / x) for x in "abc")
    assert a == b
    assert set(a) == set(c)
    images = [k for k in a if k.endswith(".png") and "panoptic" not in k]
    assert len(images) == 3 + 2 * 3
    assert all(a[k] != c[k] for k in images)
    assert info["num_images"] == 3 and info["classes"][0]["name"] == "circle"
    # the files read back into what the generator makes for that item
    ds = CocoPanopticDataset(tmp_path / "a" / "coco", "val")
    scene = generate_scene(item_rng(5, "val", 0, 2), size=(64, 80))
    assert np.array_equal(ds[2].ids, scene.ids) and ds[2].segments == scene.segments
    vis = YtvisDataset(tmp_path / "a" / "ytvis", "val")
    assert len(vis) == 2 and vis[1].images.shape == (3, 64, 80, 3)


def test_make_dataset_splits_differ(tmp_path):
    kw = dict(num_images=1, num_videos=0, image_size=(48, 48), progress=False)
    make_dataset(tmp_path, seed=1, split="train", **kw)
    make_dataset(tmp_path, seed=1, split="val", **kw)
    a = (tmp_path / "coco" / "train" / "000000000001.png").read_bytes()
    b = (tmp_path / "coco" / "val" / "000000000001.png").read_bytes()
    assert a != b
    with pytest.raises(ValueError):
        make_dataset(tmp_path, seed=-1, **kw)


def _to_mmdet_layout(native: dict, *, polygons_for: int | None = None) -> dict:
    """The same annotations as mmdet / mmtracking write them: per-frame images (frame ids
    shuffled in file order) and per-frame annotations with instance ids; the instance
    ``polygons_for`` gets polygon segmentations (its box as a rectangle) instead of RLE."""
    rng = np.random.default_rng(0)
    images, anns, image_id = [], [], 0
    ids = {}
    for v in native["videos"]:
        order = rng.permutation(len(v["file_names"]))
        for t in order:
            image_id += 1
            ids[(v["id"], int(t))] = image_id
            images.append(
                {
                    "id": image_id,
                    "video_id": v["id"],
                    "frame_id": int(t),
                    "file_name": v["file_names"][t],
                    "height": v["height"],
                    "width": v["width"],
                }
            )
    for a in native["annotations"]:
        for t, seg in enumerate(a["segmentations"]):
            if seg is None:
                continue
            x, y, w, h = a["bboxes"][t]
            polygon = [[x, y, x + w - 1, y, x + w - 1, y + h - 1, x, y + h - 1]]
            anns.append(
                {
                    "id": len(anns) + 1,
                    "video_id": a["video_id"],
                    "image_id": ids[(a["video_id"], t)],
                    "category_id": a["category_id"],
                    "instance_id": 1000 + a["id"],
                    "bbox": a["bboxes"][t],
                    "area": a["areas"][t],
                    "iscrowd": 0,
                    "segmentation": polygon if a["id"] == polygons_for else seg,
                }
            )
    videos = [{"id": v["id"], "name": f"v{v['id']}"} for v in native["videos"]]
    return {
        "videos": videos,
        "images": images,
        "annotations": anns,
        "categories": native["categories"],
    }


def test_ytvis_reads_the_mmdet_video_layout(tmp_path):
    """The layout the RAP-SAM reference (mmdet / mmtracking) trains from reads to the same
    samples as YouTube-VIS's own; polygons are rasterised."""
    from rapsam_edge.data.ytvis import from_mmdet_video_layout

    videos = [generate_video(s, size=SIZE, length=4) for s in range(2)]
    with YtvisWriter(tmp_path, "train") as w:
        for v in videos:
            w.add_video(v.images, v.ids, v.segments)
    path = tmp_path / "annotations" / "instances_train.json"
    native = json.loads(path.read_text())
    mm = tmp_path / "annotations" / "mmdet_train.json"
    mm.write_text(json.dumps(_to_mmdet_layout(native)))
    a, b = YtvisDataset(tmp_path, "train"), YtvisDataset(tmp_path, "train", ann_file=mm)
    assert len(a) == len(b) == 2
    for sa, sb in zip(a, b):
        assert sa.file_names == sb.file_names and np.array_equal(sa.images, sb.images)
        assert [i.class_id for i in sa.instances] == [i.class_id for i in sb.instances]
        for ia, ib in zip(sa.instances, sb.instances):
            assert np.array_equal(ia.masks, ib.masks)
    poly_id = native["annotations"][0]["id"]
    conv = from_mmdet_video_layout(_to_mmdet_layout(native, polygons_for=poly_id))
    track = next(
        t for t in conv["annotations"] if t["video_id"] == native["annotations"][0]["video_id"]
    )
    t0 = next(t for t, s in enumerate(track["segmentations"]) if s is not None)
    x, y, w, h = track["bboxes"][t0]
    from rapsam_edge.ops import rle_decode

    rect = rle_decode(track["segmentations"][t0])
    assert rect[y : y + h, x : x + w].all() and rect.sum() == w * h


def test_ytvis_and_vis_eval_give_typed_errors_naming_file_and_field(tmp_path):
    from rapsam_edge.errors import DatasetError
    from rapsam_edge.eval.vis_ap import vis_ap_from_json

    bad = tmp_path / "annotations" / "instances_train.json"
    bad.parent.mkdir(parents=True)
    for content, word in [
        ("not json", "cannot read"),
        (json.dumps({"videos": [{"id": 1}], "categories": []}), "file_names"),
        (json.dumps({"categories": []}), "videos"),
        (json.dumps([1, 2]), "not a YouTube-VIS"),
    ]:
        bad.write_text(content)
        with pytest.raises(DatasetError, match=word) as e:
            YtvisDataset(tmp_path, "train")
        assert str(bad) in str(e.value)
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"videos": [{"id": 1}], "categories": [{"id": 1}]}))
    with pytest.raises(DatasetError, match="'annotations'") as e:
        vis_ap_from_json(gt, [])
    assert str(gt) in str(e.value)
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps([{"video_id": 1}]))
    gt.write_text(json.dumps({"videos": [{"id": 1}], "categories": [{"id": 1}], "annotations": []}))
    with pytest.raises(DatasetError, match=r"pred\.json"):
        vis_ap_from_json(gt, pred)


def test_coco_panoptic_reader_and_pq_give_typed_errors(tmp_path):
    from rapsam_edge.data.coco_panoptic import CocoPanopticDataset
    from rapsam_edge.errors import DatasetError
    from rapsam_edge.eval.pq import pq_from_files

    ann = tmp_path / "annotations" / "panoptic_val.json"
    ann.parent.mkdir(parents=True)
    for content, word in [
        ("{", "cannot read"),
        (json.dumps({"categories": [], "images": []}), "'annotations'"),
        (
            json.dumps({"categories": [], "images": [], "annotations": [{"image_id": 1}]}),
            "file_name",
        ),
        (json.dumps({"categories": [{"name": "x"}], "images": [], "annotations": []}), "malformed"),
    ]:
        ann.write_text(content)
        with pytest.raises(DatasetError, match=word) as e:
            CocoPanopticDataset(tmp_path, "val")
        assert str(ann) in str(e.value)
    gt, pred = tmp_path / "gt.json", tmp_path / "pred.json"
    gt.write_text(json.dumps({"categories": [{"id": 1}]}))
    pred.write_text(json.dumps({"annotations": []}))
    with pytest.raises(DatasetError, match="'annotations'"):
        pq_from_files(gt, tmp_path, pred, tmp_path)
    gt.write_text(json.dumps({"categories": [{"id": 1}], "annotations": [{"file_name": "a"}]}))
    with pytest.raises(DatasetError, match="malformed"):
        pq_from_files(gt, tmp_path, pred, tmp_path)
