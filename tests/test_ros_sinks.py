"""``rapsam-edge run --record X.mcap --view Y.rrd`` and ``process_stream(..., sinks=[...])``:
the files decoded by independent readers (rosbags for the MCAP, rerun's chunk reader for the
``.rrd``) hold label images identical to a ``Segmenter`` run on the same frames; prompts go
along (``--prompt``: the prompt topics); the outputs are checked before the bundle loads;
a stream that fails mid-way keeps the frames so far, one that yields nothing leaves no file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import ros_wire as wire  # tests/ros_wire.py

from rapsam_edge.assets import sample_clip
from rapsam_edge.cli import main
from rapsam_edge.contract.shared import DEFAULT_BUNDLE
from rapsam_edge.errors import OutputError, SourceLost

pytest.importorskip("mcap", reason="mcap is not installed")
pytest.importorskip("mcap_ros2", reason="mcap-ros2-support is not installed")
rosbag2 = pytest.importorskip("rosbags.rosbag2", reason="rosbags is not installed")
rr_chunk = pytest.importorskip("rerun.chunk", reason="this rerun-sdk has no rerun.chunk reader")

N = 6
RING_CLICK = (160, 262)  # the ring's interior on the clip's first frame (test_run_prompts)


def read_mcap(path: Path) -> dict[str, list]:
    """{topic: [decoded message]} by rosbags alone."""
    store = wire.typestore()
    out: dict[str, list] = {}
    with rosbag2.Reader(path) as reader:
        for conn, _, raw in reader.messages():
            out.setdefault(conn.topic, []).append(store.deserialize_cdr(raw, conn.msgtype))
    return out


def read_rrd_segmentation(path: Path) -> list[np.ndarray]:
    """The ``camera/segmentation`` images of an .rrd, in frame order (rerun's reader)."""
    rows = []
    for chunk in rr_chunk.RrdReader(path).stream():
        if chunk.entity_path != "/camera/segmentation":
            continue
        batch = chunk.to_record_batch()
        frames = batch.column("frame").to_pylist()
        bufs = batch.column("SegmentationImage:buffer").to_pylist()
        fmts = batch.column("SegmentationImage:format").to_pylist()
        for f, (buf,), (fmt,) in zip(frames, bufs, fmts):
            rows.append((f, np.asarray(buf, np.uint8).reshape(fmt["height"], fmt["width"])))
    return [img for _, img in sorted(rows, key=lambda r: r[0])]


def expected_labels(result) -> np.ndarray:
    pan = result.panoptic
    out = np.full(pan.panoptic_map.shape, 255, np.uint8)
    for seg in pan.segments:
        out[pan.panoptic_map == seg["id"]] = seg["class"]
    return out


@pytest.fixture(scope="module")
def seg():
    from rapsam_edge.runtime.segmenter import Segmenter

    # as `run` makes it (cv2 frames: BGR), on the backend the CLI runs below
    return Segmenter(DEFAULT_BUNDLE, backend="ort-cpu", color_order="BGR")


def _run(argv: list[str]) -> int:
    return main(["run", DEFAULT_BUNDLE, "--backend", "ort-cpu", *argv])


def test_run_record_and_view_equal_the_segmenter(tmp_path, seg, capsys) -> None:
    mcap, rrd = tmp_path / "x.mcap", tmp_path / "y.rrd"
    argv = ["--source", str(sample_clip()), "--max-frames", str(N), "--out", str(tmp_path)]
    assert _run([*argv, "--record", str(mcap), "--view", str(rrd)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {mcap} ({N} frames)" in out and f"wrote {rrd} ({N} frames)" in out
    pairs = list(seg.stream(sample_clip(), max_frames=N))
    msgs = read_mcap(mcap)
    assert len(msgs["/label_info"]) == 1 and "/prompts/masks" not in msgs
    assert [len(msgs[f"/{t}"]) for t in ("semantic/labels", "detections", "diagnostics")] == [N] * 3
    rrd_labels = read_rrd_segmentation(rrd)
    assert len(rrd_labels) == N
    for i, (_, result) in enumerate(pairs):
        want = expected_labels(result)
        np.testing.assert_array_equal(wire.image_pixels(msgs["/semantic/labels"][i]), want)
        np.testing.assert_array_equal(
            wire.image_pixels(msgs["/panoptic/segments"][i]), result.panoptic.panoptic_map
        )
        np.testing.assert_array_equal(
            wire.image_pixels(msgs["/detections/ids"][i]), result.track_map
        )
        np.testing.assert_array_equal(rrd_labels[i], want)
    # the first frame has no rate yet: no "fps" value (not an empty string); later ones do
    keys = [{kv.key: kv.value for kv in m.status[0].values} for m in msgs["/diagnostics"]]
    assert "fps" not in keys[0] and all(float(k["fps"]) > 0 for k in keys[1:])


def test_run_record_with_a_prompt_writes_the_prompt_topics(tmp_path, seg, capsys) -> None:
    mcap = tmp_path / "p.mcap"
    argv = ["--source", str(sample_clip()), "--max-frames", "4", "--out", str(tmp_path)]
    assert _run([*argv, "--prompt", "{},{}".format(*RING_CLICK), "--record", str(mcap)]) == 0
    pairs = list(
        seg.stream(
            sample_clip(),
            max_frames=4,
            task="prompt",
            prompts={"points": [RING_CLICK], "labels": [1]},
        )
    )
    msgs = read_mcap(mcap)
    assert set(msgs) == {"/prompts/masks", "/debug/overlay", "/diagnostics"}
    for i, (_, res) in enumerate(pairs):
        masks = wire.image_pixels(msgs["/prompts/masks"][i])
        (obj,) = res.objects
        assert obj.state == "tracked" and obj.mask.sum() > 100
        np.testing.assert_array_equal(masks, np.where(obj.mask, 1, 0))
        keys = {kv.key for kv in msgs["/diagnostics"][i].status[0].values}
        assert {f"latency_ms/{s}" for s in res.timings} <= keys


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--record", "{d}/exists.mcap"], "exists"),
        (["--record", "{d}/no/such/x.mcap"], "does not exist"),
        (["--record", "{d}/x.bag"], "suffix"),
        (["--view", "{d}/x.mcap"], "suffix"),
        (["--record", "{d}/same.mcap", "--view", "{d}/exists.rrd"], "exists"),
        (["--view", "rerun+http://bob:S3CRET@127.0.0.1:9876/proxy"], "credentials"),
        (["--view", "http://127.0.0.1:9876/proxy"], "scheme"),
        (["--view", "rerun+http://127.0.0.1:99999/proxy"], "port"),
        (["--source-image", "--record", "{d}/i.mcap"], "not an image"),
    ],
)
def test_outputs_are_checked_before_the_bundle_loads(tmp_path, capsys, extra, match) -> None:
    (tmp_path / "exists.mcap").write_bytes(b"keep")
    (tmp_path / "exists.rrd").write_bytes(b"keep")
    source = str(sample_clip())
    if extra[0] == "--source-image":
        import cv2

        source = str(tmp_path / "f.png")
        cv2.imwrite(source, np.zeros((8, 8, 3), np.uint8))
        extra = extra[1:]
    argv = [
        "--source",
        source,
        "--out",
        str(tmp_path / "o"),
        *[a.format(d=tmp_path) for a in extra],
    ]
    assert _run(argv) == 2
    cap = capsys.readouterr()
    assert match in cap.err and "Traceback" not in cap.err and "S3CRET" not in cap.err, cap.err
    assert "backend" not in cap.out  # printed once the bundle has loaded: it never did
    assert (tmp_path / "exists.mcap").read_bytes() == b"keep"
    assert not (tmp_path / "no").exists()
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob(".*.partial"))


def test_overwrite_replaces_an_existing_recording(tmp_path, capsys) -> None:
    mcap = tmp_path / "x.mcap"
    mcap.write_bytes(b"old")
    argv = ["--source", str(sample_clip()), "--max-frames", "2", "--out", str(tmp_path)]
    assert _run([*argv, "--record", str(mcap), "--overwrite"]) == 0
    assert len(read_mcap(mcap)["/semantic/labels"]) == 2


# ------------------------------------------------------------------ process_stream's sinks
def _frames(n: int) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(sample_clip()))
    out = [cap.read()[1] for _ in range(n)]
    cap.release()
    return out


def _failing_source(frames, exc):
    yield from frames
    raise exc


def test_a_stream_lost_mid_way_keeps_the_frames_so_far(tmp_path, seg) -> None:
    from rapsam_edge.apps.video import process_stream
    from rapsam_edge.ros.sinks import check_sinks, open_sinks

    spec = check_sinks(tmp_path / "lost.mcap", str(tmp_path / "lost.rrd"), False)
    sinks = open_sinks(seg, spec)
    with pytest.raises(SourceLost):
        process_stream(
            seg,
            _failing_source(_frames(3), SourceLost("camera gone")),
            task="track",
            out_video=None,
            sinks=sinks,
        )
    assert len(read_mcap(tmp_path / "lost.mcap")["/semantic/labels"]) == 3
    assert len(read_rrd_segmentation(tmp_path / "lost.rrd")) == 3
    assert not list(tmp_path.glob(".*.partial"))


def test_a_failing_sink_or_an_empty_stream_leaves_no_file(tmp_path, seg) -> None:
    from rapsam_edge.apps.video import process_stream
    from rapsam_edge.errors import SourceError
    from rapsam_edge.ros.sinks import check_sinks, open_sinks

    sinks = open_sinks(seg, check_sinks(tmp_path / "e.mcap", str(tmp_path / "e.rrd"), False))
    with pytest.raises(SourceError, match="no frame"):
        process_stream(seg, iter([]), task="track", out_video=None, sinks=sinks)
    sinks = open_sinks(seg, check_sinks(tmp_path / "d.mcap", None, False))

    def full(*a, **k):
        raise OutputError("No space left on device")

    sinks[0]._writer.add_message = full
    with pytest.raises(OutputError, match="No space"):
        process_stream(seg, iter(_frames(2)), task="track", out_video=None, sinks=sinks)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
