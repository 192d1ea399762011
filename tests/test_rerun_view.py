"""The Rerun view (``rapsam_edge.ros.view``) writes an ``.rrd`` file; rerun's own chunk reader
(``rerun.chunk.RrdReader``) reads it back: the entities, the class annotation context, the
segmentation images (equal to the Segmenter's results), the boxes with track ids and the
per-stage timings as scalars."""

from __future__ import annotations

import numpy as np
import pytest

from rapsam_edge.contract.postprocess import SEGMENT_DTYPE
from rapsam_edge.contract.shared import DEFAULT_BUNDLE, SAMPLE_CLIP
from rapsam_edge.errors import ConfigError, InputError, OutputError, OutputExistsError
from rapsam_edge.ros import OutputInfo
from rapsam_edge.runtime.results import PanopticResult, TrackResult

rr = pytest.importorskip("rerun", reason="rerun-sdk is not installed")
rr_chunk = pytest.importorskip("rerun.chunk", reason="this rerun-sdk has no rerun.chunk reader")

from rapsam_edge.ros.view import RerunView  # noqa: E402

N_FRAMES = 6


@pytest.fixture(scope="module")
def clip():
    from rapsam_edge.assets import models_dir
    from rapsam_edge.runtime.segmenter import Segmenter

    seg = Segmenter(DEFAULT_BUNDLE)
    pairs = list(seg.stream(models_dir() / SAMPLE_CLIP, max_frames=N_FRAMES))
    assert all(isinstance(r, TrackResult) for _, r in pairs)
    return OutputInfo.of(seg), pairs


def read_rrd(path):
    """{entity path: {column: [values per row]}} of the recording, rows in frame order."""
    out: dict[str, dict[str, list]] = {}
    for chunk in rr_chunk.RrdReader(path).stream():
        batch = chunk.to_record_batch()
        cols = out.setdefault(chunk.entity_path, {})
        for name in batch.schema.names:
            if name in ("log_time", "rerun.controls.RowId", "stamp"):
                continue
            cols.setdefault(name, []).extend(batch.column(name).to_pylist())
    for cols in out.values():
        if "frame" in cols:
            order = np.argsort(cols["frame"], kind="stable")
            for k in cols:
                cols[k] = [cols[k][i] for i in order]
    return out


def expected_labels(result: TrackResult) -> np.ndarray:
    pan = result.panoptic
    out = np.full(pan.panoptic_map.shape, 255, np.uint8)
    for seg in pan.segments:
        out[pan.panoptic_map == seg["id"]] = seg["class"]
    return out


@pytest.fixture(scope="module")
def rrd(clip, tmp_path_factory):
    info, pairs = clip
    path = tmp_path_factory.mktemp("rrd") / "view.rrd"
    with RerunView(info, save=path) as view:
        for i, (frame, result) in enumerate(pairs):
            view.log(frame, result, stamp_ns=1_700_000_000_000_000_000 + i)
    assert view.frames == N_FRAMES
    return read_rrd(path)


def test_entities(rrd) -> None:
    info_stages = {"read", "prepare", "encoder", "decoder", "postprocess", "tracking"}
    want = {"/camera", "/camera/image", "/camera/segmentation", "/camera/detections"}
    want |= {f"/timings/{s}" for s in info_stages} | {"/timings/fps"}
    assert want <= set(rrd)
    assert not any(p.startswith("/camera/prompts") for p in rrd)


def test_annotation_context(rrd, clip) -> None:
    info, _ = clip
    ((context,),) = rrd["/camera"]["AnnotationContext:context"]  # one row, one context
    got = {c["class_id"]: c["class_description"]["info"] for c in context}
    assert {k: v["label"] for k, v in got.items()} == {
        **dict(enumerate(info.class_names)),
        255: "unlabeled",
        65535: "unlabeled",
    }
    assert got[255]["color"] & 0xFF == 0  # RGBA, alpha 0: void is transparent
    colours = {v["color"] for k, v in got.items() if k < len(info.class_names)}
    assert len(colours) == len(info.class_names)  # one colour per class


def test_segmentation_images_equal_the_results(rrd, clip) -> None:
    _, pairs = clip
    seg = rrd["/camera/segmentation"]
    assert seg["frame"] == list(range(N_FRAMES))
    for i, (frame, result) in enumerate(pairs):
        (fmt,) = seg["SegmentationImage:format"][i]
        assert (fmt["height"], fmt["width"]) == frame.shape[:2]
        assert fmt["channel_datatype"] == rr.ChannelDatatype.U8.value
        (buf,) = seg["SegmentationImage:buffer"][i]
        pixels = np.array(buf, np.uint8).reshape(frame.shape[:2])
        np.testing.assert_array_equal(pixels, expected_labels(result))
        (img,) = rrd["/camera/image"]["Image:buffer"][i]
        np.testing.assert_array_equal(np.array(img, np.uint8).reshape(frame.shape), frame)


def test_boxes_carry_track_ids_and_classes(rrd, clip) -> None:
    info, pairs = clip
    boxes = rrd["/camera/detections"]
    for i, (_, result) in enumerate(pairs):
        want_labels = [
            f"#{t} {info.class_names[c]}"
            for t, c in zip(result.track_ids.tolist(), result.track_classes.tolist())
        ]
        assert boxes["Boxes2D:labels"][i] == want_labels
        assert boxes["Boxes2D:class_ids"][i] == result.track_classes.tolist()
        for tid, center, half in zip(
            result.track_ids.tolist(), boxes["Boxes2D:centers"][i], boxes["Boxes2D:half_sizes"][i]
        ):
            ys, xs = np.nonzero(result.track_map == tid)
            x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
            assert center == [(x0 + x1) / 2, (y0 + y1) / 2]
            assert half == [(x1 - x0) / 2, (y1 - y0) / 2]


def test_timings_are_scalars(rrd, clip) -> None:
    _, pairs = clip
    for stage in pairs[0][1].timings:
        series = rrd[f"/timings/{stage}"]
        assert series["frame"] == list(range(N_FRAMES))
        assert [v for (v,) in series["Scalars:scalars"]] == [r.timings[stage] for _, r in pairs]
    fps = [v for (v,) in rrd["/timings/fps"]["Scalars:scalars"]]
    assert len(fps) == N_FRAMES - 1 and all(v > 0 for v in fps)  # from the second frame on


# ------------------------------------------------------------------------ hostile
def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


def test_needs_exactly_one_sink(tmp_path) -> None:
    info = OutputInfo(("a",))
    with pytest.raises(ConfigError):
        RerunView(info)
    with pytest.raises(ConfigError):
        RerunView(info, save=tmp_path / "a.rrd", spawn=True)


def test_more_classes_than_uint16_ids_are_refused(tmp_path) -> None:
    with pytest.raises(InputError, match="uint16"):
        RerunView(OutputInfo(tuple(f"c{i}" for i in range(65536))), save=tmp_path / "a.rrd")
    assert list(tmp_path.iterdir()) == []


def test_output_path_rules(tmp_path) -> None:
    info = OutputInfo(("a",))
    path = tmp_path / "x.rrd"
    path.write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        RerunView(info, save=path)
    assert path.read_bytes() == b"keep"
    with pytest.raises(OutputError):
        RerunView(info, save=tmp_path / "x.mcap")
    assert _leftovers(tmp_path) == []


def test_bad_frames_are_refused_and_the_file_stays_valid(tmp_path) -> None:
    info = OutputInfo(("a", "b"))
    pan = PanopticResult(np.zeros((4, 5), np.int32), np.zeros(0, SEGMENT_DTYPE), ("a", "b"))
    path = tmp_path / "v.rrd"
    with pytest.raises(InputError), RerunView(info, save=path, overwrite=True) as view:
        view.log(np.zeros((4, 5, 3), np.uint8), pan)
        view.log(np.zeros((5, 5, 3), np.uint8), pan)
    assert read_rrd(path)["/camera/segmentation"]["frame"] == [0]
    with pytest.raises(OutputError, match="closed"):
        view.log(np.zeros((4, 5, 3), np.uint8), pan)
    assert _leftovers(tmp_path) == []


# ------------------------------------------------------------------ TRIAL27 findings
@pytest.fixture(scope="module")
def prompted():
    from rapsam_edge.assets import models_dir
    from rapsam_edge.runtime.segmenter import Segmenter

    seg = Segmenter(DEFAULT_BUNDLE)
    box = {"boxes": [(130, 250, 256, 312)]}
    clip = models_dir() / SAMPLE_CLIP
    only = list(seg.stream(clip, max_frames=2, task="prompt", prompts=box))
    both = list(seg.stream(clip, max_frames=2, prompts=box))
    return OutputInfo.of(seg), only, both


def _prompt_images(rrd) -> list[np.ndarray]:
    rows = rrd["/camera/prompts"]
    return [
        np.asarray(buf, np.uint8).view("<i4").reshape(fmt["height"], fmt["width"])  # int32 ids
        for (buf,), (fmt,) in zip(
            rows["SegmentationImage:buffer"], rows["SegmentationImage:format"]
        )
    ]


def test_prompt_task_results_and_stream_prompts_are_logged(tmp_path, prompted) -> None:
    from rapsam_edge.ros.messages import prompt_masks

    info, only, both = prompted
    for name, pairs in (("only", only), ("both", both)):
        path = tmp_path / f"{name}.rrd"
        with RerunView(info, save=path) as view:
            for frame, res in pairs:
                view.log(frame, res)
        rrd = read_rrd(path)
        assert ("/camera/segmentation" in rrd) == (name == "both")
        want = [prompt_masks(r if name == "only" else r.prompts) for _, r in pairs]
        got = _prompt_images(rrd)
        assert len(got) == len(want) and all(w.any() for w in want)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("bad", [None, "x", 1.5])
def test_other_results_and_bad_fps_are_refused(tmp_path, bad) -> None:
    info = OutputInfo(("a", "b"))
    pan = PanopticResult(np.zeros((4, 5), np.int32), np.zeros(0, SEGMENT_DTYPE), ("a", "b"))
    with RerunView(info, save=tmp_path / "b.rrd") as view:
        with pytest.raises(InputError, match="PromptTrackResult"):
            view.log(np.zeros((4, 5, 3), np.uint8), bad)
        with pytest.raises(InputError, match="fps"):
            view.log(np.zeros((4, 5, 3), np.uint8), pan, fps=float("nan"))
        assert view.frames == 0


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://bob:PW@:0/x", "port"),
        ("rerun+http://bob:PW@127.0.0.1:9876/proxy", "credentials"),
        ("rerun+http://127.0.0.1:9876/proxy?token=PW", "query"),
        ("https://127.0.0.1:9876/proxy", "scheme"),
        ("rerun+http://127.0.0.1:9876/other", "path"),
        ("rerun+http:///proxy", "host"),
        ("rerun+http://127.0.0.1:9876/proxy\nPW", "control"),
        (b"rerun+http://127.0.0.1:9876/proxy", "string"),
    ],
)
def test_bad_viewer_urls_are_config_errors_without_the_secret(url, why) -> None:
    with pytest.raises(ConfigError, match=why) as info:
        RerunView(OutputInfo(("a",)), connect=url)
    assert "PW" not in str(info.value)


def test_a_url_rerun_refuses_is_a_config_error(monkeypatch) -> None:
    def refuse(self, url=None, **kw):
        raise RuntimeError(f"invalid endpoint {url!r}")

    monkeypatch.setattr(rr.RecordingStream, "connect_grpc", refuse)
    with pytest.raises(ConfigError, match="Rerun refused") as info:
        RerunView(OutputInfo(("a",)), connect="rerun+http://127.0.0.1:9876/proxy")
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_missing_folder_is_refused_not_made(tmp_path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        RerunView(OutputInfo(("a",)), save=tmp_path / "no" / "a" / "x.rrd")
    assert list(tmp_path.iterdir()) == []


def test_a_view_garbage_collected_unclosed_is_finished(tmp_path) -> None:
    import gc

    info = OutputInfo(("a", "b"))
    pan = PanopticResult(np.zeros((4, 5), np.int32), np.zeros(0, SEGMENT_DTYPE), ("a", "b"))
    path = tmp_path / "gc.rrd"
    view = RerunView(info, save=path)
    view.log(np.zeros((4, 5, 3), np.uint8), pan)
    with pytest.warns(ResourceWarning, match="never closed"):
        del view
        gc.collect()
    assert read_rrd(path)["/camera/segmentation"]["frame"] == [0]
    assert _leftovers(tmp_path) == []


def test_spawning_without_a_display_is_a_config_error(monkeypatch, tmp_path) -> None:
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("the display check is Linux's (DISPLAY / WAYLAND_DISPLAY)")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "WAYLAND_SOCKET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="no display"):
        RerunView(OutputInfo(("a",)), spawn=True)


def test_an_unreachable_viewer_is_an_output_error_at_close() -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    info = OutputInfo(("a", "b"))
    pan = PanopticResult(np.zeros((4, 5), np.int32), np.zeros(0, SEGMENT_DTYPE), ("a", "b"))
    view = RerunView(info, connect=f"rerun+http://127.0.0.1:{port}/proxy")
    view.log(np.zeros((4, 5, 3), np.uint8), pan)
    with pytest.raises(OutputError, match="could not be reached"):
        view.close()
    assert view.close() is None  # closed once
