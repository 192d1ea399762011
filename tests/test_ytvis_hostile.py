"""Hostile YouTube-VIS files: each malformed field a ``DatasetError`` naming the file and the
video / annotation / frame, through the reader (``YtvisDataset``), the VOS protocol's split
opener and ``rapsam-edge eval --task vos`` (exit 2, one line, before the model loads for
what the JSON alone shows). Every case starts from a valid tiny set written by
``YtvisWriter`` and changes one thing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from rapsam_edge.cli import main
from rapsam_edge.data.segments import Segment
from rapsam_edge.data.ytvis import YtvisDataset, YtvisWriter
from rapsam_edge.errors import DatasetError
from rapsam_edge.eval.vos_protocol import open_vos_split
from rapsam_edge.ops import rle_encode

H, W, T = 24, 32, 3


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ytvis/ with 2 videos of T frames, one moving rectangle each (category 1 and 2)."""
    root = tmp_path_factory.mktemp("valid") / "ytvis"
    rng = np.random.default_rng(5)
    with YtvisWriter(root, "val") as writer:
        for video in range(2):
            images = rng.integers(0, 256, (T, H, W, 3), dtype=np.uint8)
            ids = np.zeros((T, H, W), np.int32)
            segs: list[list[Segment]] = []
            for t in range(T):
                ids[t, 4:12, 4 + 2 * t : 14 + 2 * t] = 1
                segs.append([Segment(1, video, True, 80, (4 + 2 * t, 4, 10, 8))])
            writer.add_video(images, ids, segs)
    return root


def _ann_file(root: Path) -> Path:
    return root / "annotations" / "instances_val.json"


def _copy(valid: Path, tmp: Path, change: Callable[[dict[str, Any]], Any] | None) -> Path:
    root = tmp / "ytvis"
    shutil.copytree(valid, root)
    if change is not None:
        data = json.loads(_ann_file(root).read_text())
        change(data)
        _ann_file(root).write_text(json.dumps(data))
    return root


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change: ``path`` like "videos.0.file_names.0" set to ``value``."""

    def change(data: dict[str, Any]) -> None:
        *head, last = path.split(".")
        node: Any = data
        for key in head:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = value

    return change


def _each_annotation(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        for ann in data["annotations"]:
            ann[key] = value

    return change


def _each_segmentation(value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        for ann in data["annotations"]:
            ann["segmentations"] = [None if s is None else value for s in ann["segmentations"]]

    return change


def _small_rle() -> dict[str, Any]:
    rle = rle_encode(np.zeros((10, 10), bool))
    return {"size": [H, W], "counts": rle["counts"].decode("ascii")}  # sums to 100, not H*W


#: (case, change, words of the message) refused when the file is opened
OPEN_CASES: list[tuple[str, Callable[[dict[str, Any]], Any], list[str]]] = [
    (
        "empty video",
        lambda d: d["videos"][0].update(file_names=[], length=0),
        ["video 1", "no frames"],
    ),
    ("length mismatch", _set("videos.0.length", 99), ["video 1", "length 99", f"{T} file_names"]),
    ("no videos", _set("videos", []), ["no videos"]),
    ("videos missing", lambda d: d.pop("videos"), ["videos must be a list"]),
    ("videos not a list", _set("videos", {"1": 2}), ["videos must be a list"]),
    ("video not an object", _set("videos.0", 7), ["video #0", "not an object"]),
    ("video id repeats", _set("videos.1.id", 1), ["video id 1 appears twice"]),
    ("video id a string", _set("videos.0.id", "1"), ["video #0", "id must be an integer"]),
    ("file_names not a list", _set("videos.0.file_names", "a.png"), ["file_names must be a list"]),
    (
        "dot-dot path",
        _set("videos.0.file_names.0", "../../../../../../etc/passwd"),
        ["video 1", "frame 0", "leaves the frames folder"],
    ),
    ("inner dot-dot", _set("videos.0.file_names.1", "000001/../../x.png"), ["frame 1", "leaves"]),
    ("absolute path", _set("videos.0.file_names.0", "/etc/hostname"), ["video 1", "absolute path"]),
    ("drive path", _set("videos.0.file_names.0", "C:/x.png"), ["absolute path"]),
    ("backslash path", _set("videos.0.file_names.0", "..\\..\\x.png"), ["not a relative path"]),
    ("empty file name", _set("videos.0.file_names.0", ""), ["not a relative path"]),
    ("NUL in file name", _set("videos.0.file_names.0", "a\x00b.png"), ["not a relative path"]),
    ("file name a number", _set("videos.0.file_names.0", 5), ["not a relative path"]),
    (
        "huge frame size",
        lambda d: d["videos"][0].update(height=100_000, width=100_000),
        ["video 1", "100000 x 100000", "over the limit"],
    ),
    ("zero height", _set("videos.0.height", 0), ["height must be at least 1"]),
    ("bool width", _set("videos.0.width", True), ["width must be an integer"]),
    ("height without width", lambda d: d["videos"][0].pop("width"), ["width must be an integer"]),
    ("categories missing", lambda d: d.pop("categories"), ["must be a list"]),
    ("category id repeats", _set("categories.1.id", 1), ["category id 1 appears twice"]),
    (
        "unknown video ids",
        _each_annotation("video_id", 999),
        ["annotation 1", "video_id 999", "not in videos"],
    ),
    (
        "unknown category id",
        _set("annotations.0.category_id", 77),
        ["annotation 1", "category_id 77"],
    ),
    ("annotation not an object", _set("annotations.0", "x"), ["annotation #0", "not an object"]),
    ("annotation id repeats", _set("annotations.1.id", 1), ["annotation id 1 appears twice"]),
    (
        "annotation without id",
        lambda d: d["annotations"][0].pop("id"),
        ["annotation #0", "id must be an integer"],
    ),
    ("video_id a string", _set("annotations.0.video_id", "1"), ["video_id must be an integer"]),
    ("iscrowd 2", _set("annotations.0.iscrowd", 2), ["annotation 1", "iscrowd must be 0 or 1"]),
    ("annotation height differs", _set("annotations.0.height", 5), ["annotation 1", "height 5"]),
    (
        "segmentations missing",
        lambda d: d["annotations"][0].pop("segmentations"),
        ["segmentations must be a list"],
    ),
    (
        "one segmentation short",
        lambda d: d["annotations"][0]["segmentations"].pop(),
        ["annotation 1", f"{T - 1} segmentations for the {T} frames"],
    ),
    (
        "segmentation a number",
        _set("annotations.0.segmentations.1", 5),
        ["annotation 1", "frame 1", "neither null"],
    ),
    (
        "rle size differs",
        _set("annotations.0.segmentations.0.size", [10, 10]),
        ["annotation 1", "frame 0", "differs from the video's"],
    ),
    (
        "rle size one value",
        _set("annotations.0.segmentations.0.size", [10]),
        ["frame 0", "rle size must be [height, width]"],
    ),
    (
        "rle size strings",
        _set("annotations.0.segmentations.0.size", ["24", "32"]),
        ["rle height must be an integer"],
    ),
    (
        "rle counts missing",
        lambda d: d["annotations"][0]["segmentations"][0].pop("counts"),
        ["frame 0", "rle counts must be"],
    ),
    (
        "rle counts a number",
        _set("annotations.0.segmentations.0.counts", 12),
        ["rle counts must be"],
    ),
    (
        "rle counts non-ASCII",
        _set("annotations.0.segmentations.0.counts", "é"),
        ["rle counts must be an ASCII"],
    ),
    (
        "rle counts negative",
        _set("annotations.0.segmentations.0.counts", [H * W + 5, -5]),
        ["frame 0", "rle count must be at least 0"],
    ),
    (
        "rle counts short",
        _set("annotations.0.segmentations.0.counts", [10, 20]),
        ["frame 0", f"sum to 30, not height x width = {H * W}"],
    ),
    (
        "rle counts floats",
        _set("annotations.0.segmentations.0.counts", [H * W / 2, H * W / 2]),
        ["rle count must be an integer"],
    ),
    (
        "polygon of 2 points",
        _each_segmentation([[10, 10, 50, 10]]),
        ["annotation 1", "frame 0", "at least 3 points"],
    ),
    (
        "polygon odd length",
        _each_segmentation([[10, 10, 50, 10, 50, 50, 1]]),
        ["at least 3 points"],
    ),
    (
        "polygon NaN",
        _each_segmentation([[10, 10, 50, 10, float("nan"), 50]]),
        ["polygon coordinate must be a finite number"],
    ),
    ("polygon far outside", _each_segmentation([[10, 10, 1e9, 10, 50, 50]]), ["far outside"]),
    ("polygon list empty", _each_segmentation([]), ["empty polygon list"]),
    ("polygon strings", _each_segmentation([["1", "2", "3", "4", "5", "6"]]), ["finite number"]),
    (
        "areas short",
        _set("annotations.0.areas", [1]),
        ["annotation 1", f"1 areas for the {T} frames"],
    ),
    ("area negative", _set("annotations.0.areas.0", -1), ["frame 0: area must be at least 0"]),
    ("area a string", _set("annotations.0.areas.0", "80"), ["area must be a finite number"]),
    (
        "bbox 3 values",
        _set("annotations.0.bboxes.0", [1, 2, 3]),
        ["frame 0: bbox must be [x, y, width, height]"],
    ),
    ("bbox negative width", _set("annotations.0.bboxes.0", [1, 2, -3, 4]), ["negative width"]),
    ("bboxes not a list", _set("annotations.0.bboxes", 5), ["bboxes must be a list"]),
]


@pytest.mark.parametrize(
    "change,words", [c[1:] for c in OPEN_CASES], ids=[c[0] for c in OPEN_CASES]
)
def test_a_malformed_file_is_refused_when_opened(
    valid: Path, tmp_path: Path, change, words, capsys
):
    root = _copy(valid, tmp_path, change)
    with pytest.raises(DatasetError) as info:
        YtvisDataset(root, "val")
    text = str(info.value)
    assert str(_ann_file(root)) in text and info.value.hint
    for word in words:
        assert word in text, text
    with pytest.raises(DatasetError, match=r"instances_val\.json"):
        open_vos_split(root, "val")
    line = _one_line_exit_2(root, capsys)  # the file's fields checked before the model loads
    assert str(_ann_file(root)) in line and words[-1] in line


def _one_line_exit_2(root: Path, capsys) -> str:
    assert main(["eval", "--task", "vos", "--data", str(root.parent), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines[0].startswith("rapsam-edge: error: ") and len(lines) <= 2, err
    return lines[0]


@pytest.mark.parametrize(
    "change",
    [_set("annotations", []), lambda d: d.pop("annotations")],
    ids=["annotations empty", "annotations absent"],
)
def test_nothing_to_evaluate_is_refused(valid: Path, tmp_path: Path, change, capsys):
    root = _copy(valid, tmp_path, change)
    assert len(YtvisDataset(root, "val")) == 2  # an unannotated split still reads
    with pytest.raises(DatasetError, match="no annotated objects"):
        open_vos_split(root, "val")
    assert "nothing to evaluate" in _one_line_exit_2(root, capsys)


def test_no_object_with_a_frame_to_score_is_refused(valid: Path, tmp_path: Path):
    from rapsam_edge.eval.vos_protocol import evaluate_vos

    def last_frame_only(data: dict[str, Any]) -> None:
        for ann in data["annotations"]:
            ann["segmentations"][: T - 1] = [None] * (T - 1)

    root = _copy(valid, tmp_path, last_frame_only)

    class Untouched:  # made per video; never given an object, so never stepped
        def add(self, frame: np.ndarray, **prompts: Any) -> Any:
            raise AssertionError("no object is prompted")

        step = remove = add

    with pytest.raises(DatasetError, match="no object to score"):
        evaluate_vos(Untouched, root, "val", modes=["jf_box"])


def _read_error(root: Path, index: int = 0) -> str:
    ds = YtvisDataset(root, "val")
    with pytest.raises(DatasetError) as info:
        ds[index]
    text = str(info.value)
    assert str(_ann_file(root)) in text and info.value.hint
    return text


@pytest.mark.parametrize(
    "counts,words",
    [
        ("!!!!garbage", ["invalid byte"]),
        (_small_rle()["counts"], [f"sum to 100, expected H*W = {H * W}"]),
    ],
    ids=["garbage counts", "counts of another size"],
)
def test_an_rle_that_does_not_decode_names_file_annotation_and_frame(
    valid: Path, tmp_path: Path, counts: str, words: list[str]
):
    root = _copy(valid, tmp_path, _set("annotations.0.segmentations.1.counts", counts))
    text = _read_error(root)
    for word in ["annotation 1 (video 1), frame 1", "the RLE does not decode", *words]:
        assert word in text, text
    assert "docstring" not in text


def test_polygons_are_decoded(valid: Path, tmp_path: Path):
    tri = [[4, 4, 20, 4, 20, 16]]
    root = _copy(valid, tmp_path, _each_segmentation(tri))
    sample = YtvisDataset(root, "val")[0]
    want = np.zeros((H, W), np.uint8)
    cv2.fillPoly(want, [np.array(tri[0]).reshape(-1, 2).astype(np.int32)], 1)
    assert want.sum() > 50
    for t in range(T):
        assert np.array_equal(sample.instances[0].masks[t], want.astype(bool))


def test_declared_size_is_checked_against_the_frames(valid: Path, tmp_path: Path):
    def declare(data: dict[str, Any]) -> None:
        data["videos"][1].update(height=100, width=100)
        data["annotations"] = [a for a in data["annotations"] if a["video_id"] == 1]

    root = _copy(valid, tmp_path, declare)
    text = _read_error(root, 1)
    assert "video 2, frame 0" in text and f"is {W} x {H}" in text and "100 x 100" in text
    assert YtvisDataset(root, "val")[0].images.shape == (T, H, W, 3)


def test_frames_of_one_video_have_one_size_when_none_is_declared(valid: Path, tmp_path: Path):
    def undeclare(data: dict[str, Any]) -> None:
        for key in ("height", "width"):
            data["videos"][0].pop(key)

    root = _copy(valid, tmp_path, undeclare)
    frame = root / "val" / "JPEGImages" / "000001" / "00002.png"
    cv2.imwrite(str(frame), np.zeros((H + 2, W, 3), np.uint8))
    assert "video 1, frame 2" in _read_error(root)


def test_a_link_out_of_the_frames_folder_is_refused(valid: Path, tmp_path: Path):
    root = _copy(valid, tmp_path, None)
    outside = tmp_path / "outside.png"
    frame = root / "val" / "JPEGImages" / "000001" / "00000.png"
    shutil.copy(frame, outside)  # a valid image: refused for where it is, not what it is
    frame.unlink()
    frame.symlink_to(outside)
    assert "leads outside the frames folder" in _read_error(root)


def test_a_linked_frames_folder_still_reads(valid: Path, tmp_path: Path):
    """Links inside the folder, and a dataset root or frames folder that is itself a link,
    are followed (the check resolves both sides)."""
    elsewhere = _copy(valid, tmp_path / "real", None)
    root = tmp_path / "ytvis"
    root.symlink_to(elsewhere)
    assert YtvisDataset(root, "val")[1].images.shape == (T, H, W, 3)


def test_a_link_loop_is_refused(valid: Path, tmp_path: Path):
    root = _copy(valid, tmp_path, None)
    frame = root / "val" / "JPEGImages" / "000001" / "00001.png"
    frame.unlink()
    frame.symlink_to(frame)
    assert "video 1, frame 1: cannot resolve" in _read_error(root)


@pytest.mark.parametrize(
    "seg,words",
    [
        ([[0, 0, 10, 0]], ["annotation 5", "at least 3 points"]),
        ([[0, 0, 10, 0, float("nan"), 3]], ["annotation 5", "finite number"]),
        ([[0, 0, 1e12, 0, 10, 10]], ["annotation 5", "far outside"]),
        ({"size": [10, 10], "counts": [100]}, ["annotation 1", "differs from the video's"]),
    ],
    ids=["2 points", "NaN", "far outside", "rle of another size"],
)
def test_the_mmdet_layout_gets_the_same_checks(tmp_path: Path, seg: Any, words: list[str]):
    (tmp_path / "annotations").mkdir()
    frame = {"id": 1, "video_id": 1, "frame_id": 0, "file_name": "v/0.png"}
    ann = {"id": 5, "image_id": 1, "instance_id": 1, "category_id": 1, "segmentation": seg}
    data = {
        "videos": [{"id": 1}],
        "images": [{**frame, "height": 20, "width": 20}],
        "annotations": [ann],
        "categories": [{"id": 1, "name": "a"}],
    }
    _ann_file(tmp_path).write_text(json.dumps(data))
    with pytest.raises(DatasetError) as info:
        YtvisDataset(tmp_path, "val")
    for word in [str(_ann_file(tmp_path)), *words]:
        assert word in str(info.value)


def test_a_frame_error_through_the_cli_is_one_line_naming_where(
    valid: Path, tmp_path: Path, capsys
):
    """What only reading a video shows comes after the shipped model loads: still one line
    (and a hint) naming the file, annotation and frame, not the ops' call docstring."""
    root = _copy(valid, tmp_path, _set("annotations.0.segmentations.1.counts", "!!!!garbage"))
    assert main(["eval", "--task", "vos", "--data", str(root.parent), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [x for x in err.strip().splitlines() if not x.startswith("evaluating ")]
    assert lines[0].startswith("rapsam-edge: error: ") and len(lines) <= 2, err
    assert str(_ann_file(root)) in lines[0] and "annotation 1 (video 1), frame 1" in lines[0]
    assert "docstring" not in err and "null, a COCO RLE" in err
