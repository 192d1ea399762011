"""MCAP recordings (``rapsam_edge.ros.record``) of the sample clip, read back by an
independent reader: rosbags' own MCAP storage (``rosbags.rosbag2.Reader`` opens the bare
file, as ``ros2 bag`` does) and rosbags' CDR deserialiser. The label images must equal the
Segmenter's own results; topic names, schema names and QoS as in ``topics.TOPICS``; every
header stamp as written."""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import ros_wire as wire  # tests/ros_wire.py

from rapsam_edge.contract.shared import DEFAULT_BUNDLE, SAMPLE_CLIP
from rapsam_edge.errors import InputError, OutputError, OutputExistsError
from rapsam_edge.ros import QOS, TOPICS, OutputInfo, msgdefs
from rapsam_edge.runtime.results import TrackResult

pytest.importorskip("mcap", reason="mcap is not installed")
pytest.importorskip("mcap_ros2", reason="mcap-ros2-support is not installed")
rosbag2 = pytest.importorskip("rosbags.rosbag2", reason="rosbags is not installed")

from rapsam_edge.ros.record import Recorder  # noqa: E402

N_FRAMES = 8
BASE_NS = 1_700_000_000_000_000_000
STEP_NS = 100_000_000
OUT_TOPICS = {t for t, v in TOPICS.items() if v.direction == "out"}


@pytest.fixture(scope="module")
def clip():
    """(segmenter info, [(frame, TrackResult)]) for the first frames of the sample clip."""
    from rapsam_edge.assets import models_dir
    from rapsam_edge.runtime.segmenter import Segmenter

    seg = Segmenter(DEFAULT_BUNDLE)
    pairs = list(seg.stream(models_dir() / SAMPLE_CLIP, max_frames=N_FRAMES))
    assert len(pairs) == N_FRAMES and all(isinstance(r, TrackResult) for _, r in pairs)
    return OutputInfo.of(seg), pairs


@pytest.fixture(scope="module")
def recording(clip, tmp_path_factory):
    info, pairs = clip
    path = tmp_path_factory.mktemp("mcap") / "clip.mcap"
    with Recorder(path, info, frame_id="cam_front") as rec:
        for i, (frame, result) in enumerate(pairs):
            rec.write(frame, result, stamp_ns=BASE_NS + i * STEP_NS)
    assert rec.frames == N_FRAMES
    return path


def read_all(path: Path):
    """{topic: [(log time, decoded message)]}, the connections, by rosbags alone."""
    store = wire.typestore()
    out: dict[str, list] = {}
    with rosbag2.Reader(path) as reader:
        conns = {c.topic: c for c in reader.connections}
        for conn, t, raw in reader.messages():
            out.setdefault(conn.topic, []).append((t, store.deserialize_cdr(raw, conn.msgtype)))
    return out, conns


def expected_labels(result: TrackResult) -> np.ndarray:
    pan = result.panoptic
    out = np.full(pan.panoptic_map.shape, 255, np.uint8)
    for seg in pan.segments:
        out[pan.panoptic_map == seg["id"]] = seg["class"]
    return out


def test_file_header_is_the_ros2_profile(recording) -> None:
    data = recording.read_bytes()[:64]
    assert data[:8] == b"\x89MCAP0\r\n" and data[8] == 0x01  # magic, Header record
    (n,) = struct.unpack_from("<I", data, 17)
    assert data[21 : 21 + n] == b"ros2"


def test_topics_schemas_and_qos(recording) -> None:
    _, conns = read_all(recording)
    assert set(conns) == {"/" + t for t in OUT_TOPICS} - {"/prompts/masks"}
    store = wire.typestore()
    for name, conn in conns.items():
        topic = TOPICS[name[1:]]
        assert conn.msgtype == topic.type
        assert conn.msgcount == (1 if name == "/label_info" else N_FRAMES)
        assert conn.ext.serialization_format == "cdr"
        # rosbags parses the offered_qos_profiles YAML with its own rosbag2 QoS model
        (qos,) = conn.ext.offered_qos_profiles
        spec = QOS[topic.qos]
        assert qos.reliability.name == spec.reliability.upper()
        assert qos.durability.name == spec.durability.upper()
        assert (qos.history.name, qos.depth) == ("KEEP_LAST", spec.depth)
        assert qos.liveliness.name == "AUTOMATIC"
        # the schema in the file (as rosbags read it) parses to rosbags' own types
        assert conn.msgdef.format.name == "MSG"
        parsed = wire.rosbags_typesys.get_types_from_msg(conn.msgdef.data, topic.type)
        assert topic.type in parsed
        assert all(parsed[k] == store.fielddefs[k] for k in parsed)


def test_schema_records_hold_the_definitions(recording) -> None:
    from mcap.reader import make_reader

    with open(recording, "rb") as f:
        summary = make_reader(f).get_summary()
    assert summary is not None
    schemas = {s.name: s for s in summary.schemas.values()}
    assert set(schemas) == {TOPICS[t].type for t in OUT_TOPICS}
    for name, schema in schemas.items():
        assert schema.encoding == "ros2msg"
        assert schema.data.decode() == msgdefs.definition(name)


def test_label_images_equal_the_segmenters_results(recording, clip) -> None:
    info, pairs = clip
    msgs, _ = read_all(recording)
    for topic in OUT_TOPICS - {"prompts/masks", "label_info"}:
        assert len(msgs["/" + topic]) == N_FRAMES, topic
    for i, (frame, result) in enumerate(pairs):
        stamp = BASE_NS + i * STEP_NS
        for topic in OUT_TOPICS - {"prompts/masks", "label_info"}:
            t, msg = msgs["/" + topic][i]
            assert t == stamp, topic
            assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == stamp
            assert msg.header.frame_id == "cam_front"
        px = {
            k: wire.image_pixels(msgs["/" + k][i][1])
            for k in OUT_TOPICS
            if k
            in (
                "panoptic/segments",
                "semantic/labels",
                "semantic/confidence",
                "detections/ids",
                "debug/overlay",
            )
        }
        assert msgs["/semantic/labels"][i][1].encoding == "mono8"
        np.testing.assert_array_equal(px["semantic/labels"], expected_labels(result))
        np.testing.assert_array_equal(px["panoptic/segments"], result.panoptic.panoptic_map)
        np.testing.assert_array_equal(px["detections/ids"], result.track_map)
        scores = dict(
            zip(result.panoptic.segments["id"].tolist(), result.panoptic.segments["score"])
        )
        for sid, score in scores.items():
            assert (px["semantic/confidence"][result.panoptic.panoptic_map == sid] == score).all()
        assert px["debug/overlay"].shape == frame.shape
        dets = msgs["/detections"][i][1].detections
        assert [d.id for d in dets] == [str(t) for t in result.track_ids.tolist()]
        assert [d.results[0].hypothesis.class_id for d in dets] == [
            str(c) for c in result.track_classes.tolist()
        ]
        np.testing.assert_array_equal(
            [d.results[0].hypothesis.score for d in dets], result.track_scores.astype(np.float64)
        )
        for d, tid in zip(dets, result.track_ids.tolist()):
            ys, xs = np.nonzero(result.track_map == tid)
            assert (d.bbox.size_x, d.bbox.size_y) == (
                xs.max() + 1 - xs.min(),
                ys.max() + 1 - ys.min(),
            )
            assert d.bbox.center.position.x == (xs.min() + xs.max() + 1) / 2
            assert d.bbox.center.position.y == (ys.min() + ys.max() + 1) / 2
        keys = {kv.key: kv.value for kv in msgs["/diagnostics"][i][1].status[0].values}
        assert keys["backend"] == info.backend and keys["bundle"] == info.bundle
        assert {f"latency_ms/{s}" for s in result.timings} <= set(keys)
    ((t0, label_info),) = msgs["/label_info"]
    assert t0 == BASE_NS
    assert [(c.class_id, c.class_name) for c in label_info.class_map] == list(
        enumerate(info.class_names)
    )
    assert label_info.threshold == np.float32(info.score_threshold)


# ------------------------------------------------------------------------ hostile
def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


def test_an_existing_file_is_kept_unless_overwrite(tmp_path, clip) -> None:
    info, pairs = clip
    path = tmp_path / "x.mcap"
    path.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError, match="exists"):
        Recorder(path, info)
    assert path.read_bytes() == b"keep me"
    with Recorder(path, info, overwrite=True) as rec:
        rec.write(*pairs[0], stamp_ns=5)
    msgs, _ = read_all(path)
    assert len(msgs["/semantic/labels"]) == 1
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["dir.mcap", "x.bag", "fifo.mcap"])
def test_bad_output_paths(tmp_path, clip, name) -> None:
    path = tmp_path / name
    if name == "dir.mcap":
        path.mkdir()
    if name == "fifo.mcap":
        os.mkfifo(path)
    with pytest.raises(OutputError):
        Recorder(path, clip[0], overwrite=True)
    assert _leftovers(tmp_path) == []


def test_an_error_mid_stream_keeps_a_valid_file(tmp_path, clip) -> None:
    """A frame of another size is refused (InputError) and leaves the recording as it was:
    closed by the ``with``, readable, holding the frames before it."""
    info, pairs = clip
    path = tmp_path / "cut.mcap"
    with pytest.raises(InputError, match="does not match"), Recorder(path, info) as rec:
        rec.write(*pairs[0], stamp_ns=1)
        rec.write(*pairs[1], stamp_ns=2)
        rec.write(pairs[2][0][:-1], pairs[2][1], stamp_ns=3)
    msgs, _ = read_all(path)
    assert [t for t, _ in msgs["/semantic/labels"]] == [1, 2]
    with pytest.raises(OutputError, match="closed"):
        rec.write(*pairs[3], stamp_ns=4)
    assert _leftovers(tmp_path) == []


def test_a_failing_disk_leaves_nothing(tmp_path, clip, monkeypatch) -> None:
    info, pairs = clip
    path = tmp_path / "full.mcap"
    rec = Recorder(path, info)

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rec._writer, "add_message", full)
    with pytest.raises(OSError, match="No space"), rec:
        rec.write(*pairs[0], stamp_ns=1)
    assert not path.exists() and _leftovers(tmp_path) == []


def test_prompt_masks_are_recorded(tmp_path, clip) -> None:
    from rapsam_edge.runtime.results import PromptTrack, PromptTrackResult

    info, pairs = clip
    frame, result = pairs[0]
    mask = result.track_map == result.track_ids[0]
    prompts = PromptTrackResult(
        0, [PromptTrack(3, mask, np.zeros(4, np.int32), 0.9, 1.0, "tracked")], mask.shape
    )
    path = tmp_path / "p.mcap"
    with Recorder(path, info, overlay=False) as rec:
        rec.write(frame, result, stamp_ns=7, prompts=prompts)
    msgs, conns = read_all(path)
    assert "/debug/overlay" not in conns
    np.testing.assert_array_equal(
        wire.image_pixels(msgs["/prompts/masks"][0][1]), np.where(mask, 3, 0)
    )


# ------------------------------------------------------------------ TRIAL27 findings
@pytest.fixture(scope="module")
def prompted(tmp_path_factory):
    """(info, [(frame, PromptTrackResult)], [(frame, TrackResult with .prompts)])."""
    from rapsam_edge.assets import models_dir
    from rapsam_edge.runtime.segmenter import Segmenter

    seg = Segmenter(DEFAULT_BUNDLE)
    box = {"boxes": [(130, 250, 256, 312)]}
    clip = models_dir() / SAMPLE_CLIP
    only = list(seg.stream(clip, max_frames=3, task="prompt", prompts=box))
    both = list(seg.stream(clip, max_frames=3, prompts=box))
    assert all(r.prompts is not None and r.prompts.objects for _, r in both)
    return OutputInfo.of(seg), only, both


def test_a_prompt_task_stream_records_the_prompt_topics(tmp_path, prompted) -> None:
    from rapsam_edge.ros.messages import prompt_masks

    info, only, _ = prompted
    path = tmp_path / "p.mcap"
    with Recorder(path, info) as rec:
        for i, (frame, res) in enumerate(only):
            rec.write(frame, res, stamp_ns=10 + i)
    msgs, conns = read_all(path)
    assert set(conns) == {"/prompts/masks", "/debug/overlay", "/diagnostics"}
    for i, (frame, res) in enumerate(only):
        np.testing.assert_array_equal(
            wire.image_pixels(msgs["/prompts/masks"][i][1]), prompt_masks(res)
        )
        assert wire.image_pixels(msgs["/debug/overlay"][i][1]).shape == frame.shape
        keys = {kv.key for kv in msgs["/diagnostics"][i][1].status[0].values}
        assert {f"latency_ms/{s}" for s in res.timings} <= keys


def test_stream_prompts_are_recorded_by_default(tmp_path, prompted) -> None:
    from rapsam_edge.ros.messages import prompt_masks

    info, _, both = prompted
    path = tmp_path / "b.mcap"
    with Recorder(path, info, overlay=False) as rec:
        for i, (frame, res) in enumerate(both):
            rec.write(frame, res, stamp_ns=10 + i)
    msgs, _ = read_all(path)
    assert len(msgs["/prompts/masks"]) == len(both) and len(msgs["/label_info"]) == 1
    for i, (_, res) in enumerate(both):
        got = wire.image_pixels(msgs["/prompts/masks"][i][1])
        np.testing.assert_array_equal(got, prompt_masks(res.prompts))
        assert got.any()


@pytest.mark.parametrize("bad", [None, "result", 3, np.zeros((4, 4), np.int32)])
def test_a_result_of_another_type_is_refused(tmp_path, clip, bad) -> None:
    info, pairs = clip
    path = tmp_path / "t.mcap"
    with Recorder(path, info) as rec:
        with pytest.raises(InputError, match="PromptTrackResult"):
            rec.write(pairs[0][0], bad, stamp_ns=1)
        with pytest.raises(InputError, match="prompts must be"):
            rec.write(*pairs[0], stamp_ns=1, prompts=pairs[0][1])
        assert rec.frames == 0 and rec.counts == {}


@pytest.mark.parametrize("fps", [float("nan"), float("inf"), -1.0, "30", True])
def test_a_bad_fps_is_refused(tmp_path, clip, fps) -> None:
    info, pairs = clip
    with Recorder(tmp_path / "f.mcap", info) as rec:
        with pytest.raises(InputError, match="fps"):
            rec.write(*pairs[0], stamp_ns=1, fps=fps)
        assert rec.frames == 0


def test_a_missing_folder_is_refused_not_made(tmp_path, clip) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        Recorder(tmp_path / "no" / "such" / "x.mcap", clip[0])
    assert list(tmp_path.iterdir()) == []


_SCRIPT = """
import os, signal, sys
from rapsam_edge.contract.shared import DEFAULT_BUNDLE, SAMPLE_CLIP
from rapsam_edge.assets import models_dir
from rapsam_edge.runtime.segmenter import Segmenter
from rapsam_edge.ros.record import Recorder
seg = Segmenter(DEFAULT_BUNDLE)
rec = Recorder.for_segmenter(sys.argv[1], seg, chunk_size=int(sys.argv[3]))
for i, (f, r) in enumerate(seg.stream(models_dir() / SAMPLE_CLIP, max_frames=3)):
    rec.write(f, r, stamp_ns=100 + i)
if sys.argv[2] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
elif sys.argv[2] == "interrupt":
    raise KeyboardInterrupt
"""


@pytest.mark.parametrize("end", ["exit", "interrupt", "kill"])
def test_a_recording_never_closed(tmp_path, end) -> None:
    """Never closed: finished at exit (the 3 frames kept, a WARNING printed). Killed: the
    temporary file keeps every complete chunk, readable by mcap's stream reader."""
    import subprocess

    from mcap.records import Channel, Message
    from mcap.stream_reader import StreamReader

    path = tmp_path / "nc.mcap"
    env = dict(os.environ)  # conftest: PYTHONPATH leads to the imported rapsam_edge
    chunk = "1" if end == "kill" else str(4 * 1024 * 1024)  # 1: one message per chunk
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(path), end, chunk],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if end != "kill":
        assert "was never closed" in proc.stderr, proc.stderr
        msgs, _ = read_all(path)
        assert [t for t, _ in msgs["/semantic/labels"]] == [100, 101, 102]
        assert _leftovers(tmp_path) == []
        return
    assert proc.returncode == -9 and not path.exists()
    (partial,) = _leftovers_paths(tmp_path)
    topics: dict[int, str] = {}
    labels = []
    with open(partial, "rb") as f:
        with pytest.raises(Exception, match="") as cut:  # the file ends mid-record
            for record in StreamReader(f).records:
                if isinstance(record, Channel):
                    topics[record.id] = record.topic
                elif (
                    isinstance(record, Message) and topics[record.channel_id] == "/semantic/labels"
                ):
                    labels.append(record.log_time)
        assert type(cut.value).__name__ == "EndOfFile"
    assert labels == [100, 101, 102]


def _leftovers_paths(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".partial"))


def test_a_recorder_garbage_collected_unclosed_is_finished(tmp_path, clip) -> None:
    import gc

    info, pairs = clip
    path = tmp_path / "gc.mcap"
    rec = Recorder(path, info)
    rec.write(*pairs[0], stamp_ns=1)
    with pytest.warns(ResourceWarning, match="never closed"):
        del rec
        gc.collect()
    msgs, _ = read_all(path)
    assert len(msgs["/semantic/labels"]) == 1 and _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"namespace": "a b"},
        {"namespace": "/1cam"},
        {"namespace": 3},
        {"overlay": "no"},
        {"overwrite": 1},
        {"chunk_size": 0},
        {"chunk_size": 1.5},
        {"frame_id": 7},
    ],
)
def test_bad_options_are_refused_before_any_file(tmp_path, clip, kwargs) -> None:
    with pytest.raises(InputError):
        Recorder(tmp_path / "o.mcap", clip[0], **kwargs)
    assert list(tmp_path.iterdir()) == []
