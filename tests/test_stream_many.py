"""``Segmenter.stream_many`` (several sources in one process, issue 28): each source's
results are those ``stream`` gives for it alone (batched or not, on ONNX Runtime and
OpenVINO), each source has its own trackers, a source that fails or stalls ends alone with
its typed error while the others go on, leaving early releases every capture thread, the
typed errors of its settings, and ``rapsam-edge run`` with two --source.

Cases that could hang run in a thread joined with a generous bound (a hang is the fault);
no test asserts how fast anything is."""

from __future__ import annotations

import functools
import shutil
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import waits

from rapsam_edge.assets import sample_clip
from rapsam_edge.errors import ConfigError, InputError, SourceTruncated, SourceUnavailable
from rapsam_edge.runtime.capture import SourceOptions, VideoSource
from rapsam_edge.runtime.multi_stream import MAX_SOURCES, SourceFrame
from rapsam_edge.runtime.results import PromptTrackResult, TrackResult
from rapsam_edge.runtime.segmenter import Segmenter

cv2 = pytest.importorskip("cv2")

N = 10  # frames of the clip per source
BOUND = 60.0  # s: "did not hang"


bounded = functools.partial(waits.bounded, limit=BOUND)  # tests/waits.py


@pytest.fixture(scope="module")
def clip() -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(sample_clip()))
    frames = []
    while len(frames) < 3 * N:
        ok, frame = cap.read()
        assert ok
        frames.append(frame)
    cap.release()
    return frames


@pytest.fixture(scope="module")
def seg(shipped_bundle) -> Iterator[Segmenter]:
    with Segmenter(shipped_bundle, backend="ort-cpu", color_order="BGR") as s:
        yield s


def _cameras(clip: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Three sources: three stretches of the clip (overlapping, so equal frames meet
    different tracker histories)."""
    return [clip[0:N], clip[N // 2 : N // 2 + N], clip[2 * N : 3 * N]]


def _collect(items) -> tuple[dict[int, list], list[SourceFrame]]:
    per: dict[int, list] = {}
    errors = []
    for item in items:
        if item.error is not None:
            errors.append(item)
        else:
            per.setdefault(item.source, []).append(item)
    return per, errors


def _same_track(a: TrackResult, b: TrackResult) -> None:
    assert a.frame_index == b.frame_index
    np.testing.assert_array_equal(a.track_map, b.track_map)
    np.testing.assert_array_equal(a.panoptic.panoptic_map, b.panoptic.panoptic_map)
    np.testing.assert_array_equal(a.track_ids, b.track_ids)
    np.testing.assert_array_equal(a.track_classes, b.track_classes)


# ------------------------------------------------------------------ same results as stream
@pytest.mark.parametrize("backend", ["ort-cpu", "openvino"])
@pytest.mark.parametrize("batch", ["auto", 1])
def test_each_source_gets_what_stream_gives_it_alone(shipped_bundle, clip, backend, batch):
    pytest.importorskip("openvino" if backend == "openvino" else "onnxruntime")
    # OpenVINO: dynamic shapes only, so that one compiled model serves every call (its
    # static copies of a shape may round differently from the dynamic model)
    opts = {"static_shapes": False} if backend == "openvino" else None
    with Segmenter(shipped_bundle, backend=backend, color_order="BGR", backend_options=opts) as s:
        cams = _cameras(clip)
        alone = [[r for _, r in s.stream(cam)] for cam in cams]
        per, errors = _collect(s.stream_many(cams, batch=batch))
    assert not errors and sorted(per) == [0, 1, 2]
    for i, cam in enumerate(cams):
        assert len(per[i]) == len(cam) == len(alone[i])
        for k, (item, ref) in enumerate(zip(per[i], alone[i])):
            assert item.frame is cam[k]  # in order, none dropped
            assert isinstance(item.result, TrackResult)
            _same_track(item.result, ref)
            assert item.result.timings["read"] >= 0 and "encoder" in item.result.timings
    sizes = {item.batch for items in per.values() for item in items}
    if batch == 1:
        assert sizes == {1}
    else:  # the three sources' frames of one step went through one encoder call
        assert max(sizes) > 1 and max(sizes) <= 3


def test_panoptic_and_per_source_prompts_match_stream(seg, clip):
    cams = _cameras(clip)[:2]
    first = seg.panoptic(cams[0][0])
    thing = first.segments[first.segments["is_thing"]][0]
    ys, xs = np.nonzero(first.panoptic_map == thing["id"])
    box = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
    prompts = [{"boxes": [box]}, None]
    per, errors = _collect(seg.stream_many(cams, task="panoptic", prompts=prompts))
    assert not errors
    ref_prompted = [r for _, r in seg.stream(cams[0], task="panoptic", prompts=prompts[0])]
    ref_plain = [r for _, r in seg.stream(cams[1], task="panoptic")]
    for item, ref in zip(per[0], ref_prompted):
        np.testing.assert_array_equal(item.result.panoptic_map, ref.panoptic_map)
        got, want = item.result.prompts, ref.prompts
        assert isinstance(got, PromptTrackResult) and got.ids == want.ids == [1]
        np.testing.assert_array_equal(got.objects[0].mask, want.objects[0].mask)
    for item, ref in zip(per[1], ref_plain):
        assert item.result.prompts is None
        np.testing.assert_array_equal(item.result.panoptic_map, ref.panoptic_map)
    # task "prompt": every source needs prompts; each gets its own prompt tracker
    per, _ = _collect(
        seg.stream_many(cams, task="prompt", prompts=[{"boxes": [box]}, {"boxes": [box]}])
    )
    assert all(isinstance(it.result, PromptTrackResult) for it in per[0] + per[1])
    assert per[1][0].result.ids == [1]  # its own ids, from 1


# ------------------------------------------------------------------ own trackers
def test_each_source_has_its_own_tracker(seg, clip):
    """Two sources showing the same video get the same ids, each from 1: a shared tracker
    would give the second source's objects new ids (or steal the first's)."""
    cam = clip[:N]
    per, _ = _collect(seg.stream_many([list(cam), list(cam)]))
    alone = [r for _, r in seg.stream(cam)]
    assert alone[-1].track_ids.size  # the clip has tracked things
    for i in (0, 1):
        for item, ref in zip(per[i], alone):
            _same_track(item.result, ref)
    trackers = seg.last_stream_trackers
    assert len(trackers) == 2 and trackers[0] is not trackers[1]
    assert trackers[0].frame_index == trackers[1].frame_index == alone[-1].frame_index
    # given trackers are the ones stepped (one per source)
    mine = [seg.new_tracker(), seg.new_tracker()]
    per, _ = _collect(seg.stream_many([list(cam), list(cam)], trackers=mine, max_frames=3))
    assert [t.frame_index for t in mine] == [per[0][-1].result.frame_index] * 2 == [2, 2]


# ------------------------------------------------------------------ failures stay local
def _avi(path, frames: int = 30) -> Any:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), (i * 8) % 255, np.uint8))
    writer.release()
    return path


def test_a_failing_source_ends_alone_with_its_typed_error(seg, clip, tmp_path):
    good = _avi(tmp_path / "good.avi")
    cut = tmp_path / "cut.avi"
    cut.write_bytes(_avi(tmp_path / "whole.avi").read_bytes()[: good.stat().st_size * 6 // 10])

    def raises_midway() -> Iterator[np.ndarray]:
        yield from clip[:3]
        raise RuntimeError("frame grabber gone")

    bad_frame = [clip[0], clip[1].astype(np.float32), clip[2]]
    sources = [
        clip[:N],
        str(tmp_path / "missing.mp4"),
        cut,
        good,
        raises_midway(),
        bad_frame,
    ]
    items = bounded(lambda: list(seg.stream_many(sources)))
    per, errors = _collect(items)
    kinds = {e.source: type(e.error) for e in errors}
    assert kinds == {
        1: SourceUnavailable,
        2: SourceTruncated,
        4: RuntimeError,
        5: InputError,
    }
    assert all(e.frame is None and e.result is None for e in errors)
    assert all(e.error.hint for e in errors if e.source != 4)
    # the good ones ran to their end; the failed ones gave the frames before their error
    assert len(per[0]) == N and len(per[3]) == 30
    assert len(per[4]) == 3 and len(per[5]) == 1
    pos = {id(it): k for k, it in enumerate(items)}
    for e in errors:  # an error is its source's last item
        assert all(pos[id(it)] < pos[id(e)] for it in per.get(e.source, []))
    # on_error="raise": the first failure ends the whole stream, as stream() would
    with pytest.raises(SourceUnavailable):
        bounded(lambda: list(seg.stream_many(sources[:2], on_error="raise")))
    with pytest.raises(SourceTruncated):
        bounded(lambda: list(seg.stream_many([clip[:N], cut], on_error="raise")))


def test_a_stuck_source_blocks_no_other(seg, clip):
    """A source whose next frame never comes (a stalled camera whose read timeout is long)
    does not hold up the others: they run to their end, and leaving returns."""
    release = threading.Event()

    def stuck() -> Iterator[np.ndarray]:
        yield clip[0]
        release.wait(BOUND * 2)  # until the test ends

    def run() -> dict[int, int]:
        counts: dict[int, int] = {}
        for item in seg.stream_many([clip[:N], stuck(), clip[N : 2 * N]]):
            counts[item.source] = counts.get(item.source, 0) + 1
            if counts.get(0) == N and counts.get(2) == N:
                break
        return counts

    try:
        counts = bounded(run)
    finally:
        release.set()
    assert counts == {0: N, 1: 1, 2: N}


def _capture_threads() -> int:
    return sum(t.name == "rapsam-capture" and t.is_alive() for t in threading.enumerate())


def test_leaving_early_and_max_frames(seg, clip):
    def endless(k: int) -> Iterator[np.ndarray]:
        while True:
            yield clip[k % len(clip)]
            k += 1

    before = _capture_threads()

    def leave_after(n: int) -> int:
        got = 0
        for _ in seg.stream_many([endless(0), endless(5), endless(9)]):
            got += 1
            if got == n:
                break
        return got

    assert bounded(lambda: leave_after(4)) == 4
    # every capture thread ends (none is stuck in its source)
    pause = threading.Event()
    bounded(lambda: [pause.wait(0.05) for _ in iter(lambda: _capture_threads() <= before, True)])
    per, _ = _collect(seg.stream_many([endless(0), endless(3)], max_frames=4))
    assert [len(per[0]), len(per[1])] == [4, 4]
    # max_frames=0: nothing is read
    assert list(seg.stream_many([clip[:N]], max_frames=0)) == []


def test_latest_keeps_each_source_in_order(seg, clip):
    """latest=True: a slow consumer sees each source's frames in order; every frame is
    either yielded or counted as dropped."""
    frames = [np.full((48, 64, 3), i, np.uint8) for i in range(40)]
    seen: list[int] = []
    dropped = 0
    for item in seg.stream_many([frames], latest=True):
        seen.append(int(item.frame[0, 0, 0]))
        dropped = item.dropped
        release = threading.Event()
        release.wait(0.01)  # a slow consumer
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert seen[-1] == 39 and len(seen) + dropped == 40


# ------------------------------------------------------------------ typed errors
@pytest.mark.parametrize(
    ("sources", "kwargs", "match"),
    [
        ([], {}, "1 to"),
        ("clip.mp4", {}, "must be a list of sources"),
        (np.zeros((4, 48, 64, 3), np.uint8), {}, "must be a list of sources"),
        ([np.zeros((48, 64, 3), np.uint8)], {}, r"sources\[0\] is an array"),
        ([0, 0], {}, "same source"),
        ([0, "0"], {}, "same source"),
        ([0, VideoSource(0)], {}, "same source"),
        ([str(sample_clip()), f"{sample_clip().parent}/./{sample_clip().name}"], {}, "same"),
        (["rtsp://10.0.0.9/cam", "rtsp://10.0.0.9/cam"], {}, "same source"),
        ([[], []], {"task": "segment"}, "task must be"),
        ([[], []], {"max_frames": -1}, "max_frames"),
        ([[], []], {"batch": 0}, "batch must be"),
        ([[], []], {"batch": True}, "batch must be"),
        ([[], []], {"batch": "max"}, "batch must be"),
        ([[], []], {"latest": "yes"}, "latest must be a bool"),
        ([[], []], {"on_error": "ignore"}, "on_error"),
        ([[], []], {"source_options": [SourceOptions()]}, "one per source"),
        ([[], []], {"source_options": "fast"}, "source_options"),
        ([[], []], {"prompts": [None]}, "1 entries for 2 sources"),
        ([[], []], {"prompts": {"boxes": [[0, 0, 4, 4]]}}, "one entry per source"),
        ([[], []], {"prompts": [None, {"clicks": [(1, 1)]}]}, "keys among"),
        ([[], []], {"task": "prompt"}, "every source needs prompts"),
        ([[], []], {"task": "panoptic", "trackers": [None, None]}, "video trackers"),
        ([[], []], {"trackers": [1, None]}, r"trackers\[0\]"),
    ],
)
def test_bad_settings_are_config_errors(seg, sources, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        list(seg.stream_many(sources, **kwargs))


def test_shared_or_too_many_are_config_errors(seg, clip):
    shared = seg.new_tracker()
    with pytest.raises(ConfigError, match="distinct"):
        list(seg.stream_many([[], []], trackers=[shared, shared]))
    frames = iter(clip)
    with pytest.raises(ConfigError, match="same source"):
        list(seg.stream_many([frames, frames]))
    with pytest.raises(ConfigError, match=f"1 to {MAX_SOURCES}"):
        list(seg.stream_many([[] for _ in range(MAX_SOURCES + 1)]))


# ------------------------------------------------------------------ the CLI
def test_run_with_two_sources_writes_one_video_each(tmp_path, capsys):
    from rapsam_edge.cli import main

    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    shutil.copy(sample_clip(), a)
    shutil.copy(sample_clip(), b)
    out = tmp_path / "out"
    argv = ["run", "--backend", "ort-cpu", "--max-frames", "4", "--out", str(out)]
    assert main([*argv, "--source", str(a), "--source", str(b)]) == 0
    text = capsys.readouterr().out
    for i, src in enumerate((a, b)):
        video = out / str(i) / "track.mp4"
        cap = cv2.VideoCapture(str(video))
        assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 4
        cap.release()
        assert f"source {i} ({src}): 4 frames" in text and str(video) in text
    assert "8 frames from 2 sources" in text
    # a source that fails at run time: the other's video is written, exit status 2
    cut = tmp_path / "cut.avi"
    cut.write_bytes(
        _avi(tmp_path / "w.avi").read_bytes()[: (tmp_path / "w.avi").stat().st_size // 2]
    )
    out2 = tmp_path / "out2"
    argv2 = ["run", "--backend", "ort-cpu", "--out", str(out2), "--max-frames", "25"]
    assert main([*argv2, "--source", str(a), "--source", str(cut)]) == 2
    text = capsys.readouterr().out
    assert "source 0" in text and "25 frames" in text and (out2 / "0" / "track.mp4").exists()
    assert "source 1" in text and "FAILED: SourceTruncated" in text


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--source", "SAME"], "same source"),
        (["--source", "IMAGE"], "is an image"),
        (["--source", "MISSING"], "does not exist"),
        (["--source", "OTHER", "--box", "1,1,9,9"], "several --source"),
    ],
)
def test_run_refuses_bad_source_lists_before_loading(tmp_path, capsys, extra, match):
    from rapsam_edge.cli import main

    a = tmp_path / "a.mp4"
    shutil.copy(sample_clip(), a)
    other = tmp_path / "o.mp4"
    shutil.copy(sample_clip(), other)
    image = tmp_path / "f.png"
    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    names = {"SAME": str(a), "IMAGE": str(image), "MISSING": str(tmp_path / "m.mp4")}
    names["OTHER"] = str(other)
    extra = [names.get(x, x) for x in extra]
    argv = ["run", "--backend", "no-such-backend", "--out", str(tmp_path / "o")]
    assert main([*argv, "--source", str(a), *extra]) == 2  # before the backend is looked up
    assert match in capsys.readouterr().err
