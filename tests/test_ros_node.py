"""The ROS 2 node: its logic (``ros.core.NodeCore``) driven with messages built and decoded by
rosbags, its rclpy glue (``ros.node.Bridge``, ``to_ros`` / ``from_ros``) with a fake node and
fake message classes, its parameters, and the lazy imports. A last test runs the real node
through rclpy where ROS 2 is installed and skips elsewhere."""

from __future__ import annotations

import array
import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import ros_wire as wire  # tests/ros_wire.py

from rapsam_edge.contract.shared import DEFAULT_BUNDLE, SAMPLE_CLIP
from rapsam_edge.errors import ConfigError, InputError, MissingDependencyError
from rapsam_edge.ros import QOS, TOPICS, frame_messages, msgdefs
from rapsam_edge.ros.params import MAX_PARAMS_BYTES, NodeParams

CONFIG = Path(__file__).resolve().parents[1] / "rapsam_edge/ros/config/rapsam_edge.yaml"
OUT = {t for t, v in TOPICS.items() if v.direction == "out"}


# ----------------------------------------------------------------------- lazy imports
def test_importing_the_package_imports_no_optional_dependency() -> None:
    code = (
        "import sys, rapsam_edge.ros, rapsam_edge.ros.record, rapsam_edge.ros.view, "
        "rapsam_edge.ros.node, rapsam_edge.ros.core, rapsam_edge.ros.params; "
        "print(sorted(m for m in ('rclpy', 'mcap', 'mcap_ros2', 'rerun', 'rosbags', 'yaml') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("module", "extra"), [("mcap.writer", "[record]"), ("rerun", "[view]"), ("yaml", "[ros]")]
)
def test_a_missing_optional_package_names_its_extra(module, extra, monkeypatch, tmp_path) -> None:
    from rapsam_edge.ros import OutputInfo
    from rapsam_edge.ros.record import Recorder
    from rapsam_edge.ros.view import RerunView

    monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    make = {
        "mcap.writer": lambda: Recorder(tmp_path / "a.mcap", OutputInfo(("a",))),
        "rerun": lambda: RerunView(OutputInfo(("a",)), save=tmp_path / "a.rrd"),
        "yaml": lambda: NodeParams.from_yaml(CONFIG),
    }[module]
    with pytest.raises(MissingDependencyError) as e:
        make()
    assert extra in (e.value.hint or "")
    assert list(tmp_path.iterdir()) == []


def test_the_node_without_rclpy_says_how_to_get_it(monkeypatch) -> None:
    from rapsam_edge.ros import node

    monkeypatch.setitem(sys.modules, "rclpy", None)
    with pytest.raises(MissingDependencyError) as e:
        node.main(["x"])
    assert "ROS 2" in (e.value.hint or "")


# ------------------------------------------------------------------------- parameters
def test_the_shipped_parameter_file() -> None:
    pytest.importorskip("yaml")
    p = NodeParams.from_yaml(CONFIG)
    assert (p.bundle, p.backend, p.task, p.prompts, p.overlay) == (
        DEFAULT_BUNDLE,
        "auto",
        "track",
        True,
        True,
    )
    assert p.segmenter_kwargs()["backend"] == "auto"


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"bundel": "x"}, "unknown parameter 'bundel'"),
        ({"task": "detect"}, "task"),
        ({"overlay": "yes"}, "must be bool"),
        ({"score_threshold": "high"}, "must be float"),
        ({"score_threshold": float("nan")}, "must be float"),
        ({"input_size": True}, "must be int"),
        ({"tracker": {"max_mised": 3}}, r"tracker\.max_mised"),
        ({"tracker": {"max_missed": -1}}, "max_missed"),
        ({"prompt_tracker": {"min_score": 2.0}}, "min_score"),
    ],
)
def test_bad_parameters(params, match) -> None:
    with pytest.raises(ConfigError, match=match):
        NodeParams.from_mapping(params)


def test_flat_and_nested_names_agree() -> None:
    a = NodeParams.from_mapping({"tracker.max_missed": 3, "score_threshold": 1})
    b = NodeParams.from_mapping({"tracker": {"max_missed": 3}, "score_threshold": 1.0})
    assert a == b and a.tracker_config().max_missed == 3 and a.score_threshold == 1.0


def test_parameter_files_hostile(tmp_path) -> None:
    pytest.importorskip("yaml")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError):  # refused before open: no hang
        NodeParams.from_yaml(fifo)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_PARAMS_BYTES + 1))
    with pytest.raises(ConfigError):
        NodeParams.from_yaml(big)
    other = tmp_path / "other.yaml"
    other.write_text("camera:\n  ros__parameters:\n    fps: 30\n")
    with pytest.raises(ConfigError, match="no section"):
        NodeParams.from_yaml(other)
    bad = tmp_path / "bad.yaml"
    bad.write_text("rapsam_edge: [unclosed\n")
    with pytest.raises(ConfigError, match="not YAML"):
        NodeParams.from_yaml(bad)
    every = tmp_path / "every.yaml"
    every.write_text("/**:\n  ros__parameters:\n    task: panoptic\n")
    assert NodeParams.from_yaml(every).task == "panoptic"


# --------------------------------------------------------------------- the node logic
@pytest.fixture(scope="module")
def store():
    return wire.typestore()


@pytest.fixture(scope="module")
def frames():
    """The first frames of the sample clip, BGR as a camera driver publishes them."""
    import cv2

    from rapsam_edge.assets import models_dir

    cap = cv2.VideoCapture(str(models_dir() / SAMPLE_CLIP))
    out = []
    while len(out) < 6:
        ok, frame = cap.read()
        assert ok
        out.append(frame)
    cap.release()
    return out


def image_dict(store, bgr: np.ndarray, sec: int, frame_id: str = "cam") -> dict:
    """A bgr8 Image made and serialised by rosbags, decoded back, as the node gets it."""
    types = store.types
    h, w = bgr.shape[:2]
    msg = types["sensor_msgs/msg/Image"](
        types["std_msgs/msg/Header"](types["builtin_interfaces/msg/Time"](sec, 7), frame_id),
        h,
        w,
        "bgr8",
        0,
        w * 3,
        bgr.reshape(-1),
    )
    raw = store.serialize_cdr(msg, "sensor_msgs/msg/Image")
    back = store.deserialize_cdr(raw, "sensor_msgs/msg/Image")
    return to_dict(back)


def to_dict(obj) -> dict | object:
    if hasattr(obj, "__msgtype__"):
        return {f: to_dict(getattr(obj, f)) for f in wire.fields_of(obj)}
    if isinstance(obj, list):
        return [to_dict(x) for x in obj]
    if isinstance(obj, np.ndarray):
        return obj.tobytes() if obj.dtype == np.uint8 else obj.tolist()
    return obj


def box_prompt(store, box, sec=0) -> dict:
    """A Detection2DArray with one box (x0, y0, x1, y1), through rosbags."""
    t = store.types
    x0, y0, x1, y1 = box
    det = t["vision_msgs/msg/Detection2D"](
        t["std_msgs/msg/Header"](t["builtin_interfaces/msg/Time"](sec, 0), "cam"),
        [],
        t["vision_msgs/msg/BoundingBox2D"](
            t["vision_msgs/msg/Pose2D"](
                t["vision_msgs/msg/Point2D"]((x0 + x1) / 2, (y0 + y1) / 2), 0.0
            ),
            float(x1 - x0),
            float(y1 - y0),
        ),
        "",
    )
    arr = t["vision_msgs/msg/Detection2DArray"](det.header, [det])
    raw = store.serialize_cdr(arr, "vision_msgs/msg/Detection2DArray")
    return to_dict(store.deserialize_cdr(raw, "vision_msgs/msg/Detection2DArray"))


def click(store, x, y) -> dict:
    t = store.types
    msg = t["geometry_msgs/msg/PointStamped"](
        t["std_msgs/msg/Header"](t["builtin_interfaces/msg/Time"](0, 0), "cam"),
        t["geometry_msgs/msg/Point"](float(x), float(y), 0.0),
    )
    raw = store.serialize_cdr(msg, "geometry_msgs/msg/PointStamped")
    return to_dict(store.deserialize_cdr(raw, "geometry_msgs/msg/PointStamped"))


@pytest.fixture(scope="module")
def segmenter():
    from rapsam_edge.runtime.segmenter import Segmenter

    return Segmenter(DEFAULT_BUNDLE)


def make_core(segmenter, **params):
    from rapsam_edge.ros.core import NodeCore

    return NodeCore(NodeParams.from_mapping(params), segmenter=segmenter)


class Spy:
    """The Segmenter, recording the frames the node prepared and how many encoder passes
    it ran (the test compares with the very result the node published, ``core.result``:
    two runs of a backend on one frame may differ in the last bits of a score)."""

    def __init__(self, seg) -> None:
        self.seg, self.frames, self.encodes = seg, [], 0

    def __getattr__(self, name):
        return getattr(self.seg, name)

    def prepare(self, frame, **kw):
        self.frames.append(frame.copy())
        return self.seg.prepare(frame, **kw)

    def _embed(self, prepared):
        self.encodes += 1
        return self.seg._embed(prepared)


def test_core_outputs_are_the_segmenters_results(store, frames, segmenter) -> None:
    """Fed rosbags Images (bgr8), the node gives the Segmenter the frame in its colour order
    and publishes exactly what ``frame_messages`` makes of the Segmenter's result, with each
    input's stamp and frame_id."""
    from rapsam_edge.ros.core import NodeCore

    spy = Spy(segmenter)
    core = NodeCore(NodeParams.from_mapping({"prompts": False}), segmenter=spy)
    for i, bgr in enumerate(frames):
        outs = core.on_image(image_dict(store, bgr, sec=100 + i, frame_id="front"))
        assert set(outs) == OUT - {"label_info", "prompts/masks"}
        frame, result = spy.frames[-1], core.result
        np.testing.assert_array_equal(frame, bgr[:, :, ::-1])  # RGB, the Segmenter's order
        header = {"stamp": {"sec": 100 + i, "nanosec": 7}, "frame_id": "front"}
        expect = frame_messages(header, frame, result, core.info)
        for topic in outs.keys() - {"diagnostics"}:
            assert outs[topic] == expect[topic], topic
        np.testing.assert_array_equal(
            wire.image_pixels(decode(store, "semantic/labels", outs)),
            wire.image_pixels(decode(store, "semantic/labels", expect)),
        )
        np.testing.assert_array_equal(
            wire.image_pixels(decode(store, "detections/ids", outs)), result.track_map
        )
        keys = {kv["key"]: kv["value"] for kv in outs["diagnostics"]["status"][0]["values"]}
        assert {k: v for k, v in keys.items() if k.startswith("latency_ms/")} == {
            f"latency_ms/{k}": f"{v:.3f}" for k, v in result.timings.items()
        }
        assert outs["diagnostics"]["header"] == header
    assert len(spy.frames) == spy.encodes == len(frames)  # one encoder pass per frame
    assert core.label_info()["class_map"][0] == {
        "class_id": 0,
        "class_name": core.info.class_names[0],
    }


def decode(store, topic, outs):
    import mcap_ros2._dynamic as dyn

    t = TOPICS[topic].type
    data = dyn.serialize_dynamic(t, msgdefs.definition(t))[t](outs[topic])
    return store.deserialize_cdr(bytes(data), t)


def test_core_prompts(store, frames, segmenter) -> None:
    pytest.importorskip("mcap_ros2")
    core = make_core(segmenter, prompts=True)
    with pytest.raises(InputError, match="before any image"):
        core.on_boxes(box_prompt(store, (150, 240, 230, 320)))
    core.on_image(image_dict(store, frames[0], 1))
    first = core.on_image(image_dict(store, frames[1], 2))
    assert "prompts/masks" not in first  # nothing prompted yet
    # the ring (track 1) sits around x 135..250, y 255..310 in the first frames
    ids = wire.image_pixels(decode(store, "detections/ids", first))
    ys, xs = np.nonzero(ids == ids.max())
    box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    assert core.on_boxes(box_prompt(store, box)) == [1]
    assert core.on_point(click(store, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2)) == [2]
    outs = core.on_image(image_dict(store, frames[2], 3))
    masks = wire.image_pixels(decode(store, "prompts/masks", outs))
    assert set(np.unique(masks)) <= {0, 1, 2} and (masks > 0).any()
    assert outs["prompts/masks"]["header"]["stamp"]["sec"] == 3
    with pytest.raises(InputError, match="rotated"):
        bad = box_prompt(store, box)
        bad["detections"][0]["bbox"]["center"]["theta"] = 0.5
        core.on_boxes(bad)


def test_core_survives_a_resolution_change(store, frames, segmenter, caplog) -> None:
    core = make_core(segmenter, prompts=True)
    core.on_image(image_dict(store, frames[0], 1))
    core.on_boxes(box_prompt(store, (150, 240, 230, 320)))
    small = np.ascontiguousarray(frames[1][::2, ::2])
    with caplog.at_level(logging.WARNING, logger="rapsam_edge.ros.core"):
        outs = core.on_image(image_dict(store, small, 2))
    assert "frame size changed" in caplog.text
    assert core.prompt_tracker.ids == [] and "prompts/masks" not in outs
    assert outs["panoptic/segments"]["height"] == small.shape[0]


def test_core_refuses_other_encodings(store, frames, segmenter) -> None:
    core = make_core(segmenter, prompts=False)
    msg = image_dict(store, frames[0], 1)
    msg["encoding"] = "mono8"
    with pytest.raises(InputError, match="not one of"):
        core.on_image(msg)


# ---------------------------------------------------------------- the rclpy glue
def fake_class(type_name: str):
    """A stand-in for an rclpy message class: the fields with ROS defaults, and setters as
    strict as rclpy's on what this package sets (bytes for byte, array('B') for uint8[])."""
    fields = msgdefs.fields(type_name)

    def default(f):
        if f.is_array:
            return [0.0] * 36 if f.name == "covariance" else []
        if not f.is_primitive:
            return fake_class(f.type)()
        return {"string": "", "byte": b"\x00", "float32": 0.0, "float64": 0.0}.get(f.type, 0)

    def init(self):
        for f in fields:
            object.__setattr__(self, f.name, default(f))

    def setattr_(self, name, value):
        f = next((f for f in fields if f.name == name), None)
        assert f is not None, f"{type_name} has no field {name}"
        if f.type == "byte" and not f.is_array:
            assert isinstance(value, bytes) and len(value) == 1, (name, value)
        elif f.type == "uint8" and f.is_array:
            assert isinstance(value, array.array) and value.typecode == "B", name
        elif f.is_primitive and not f.is_array:
            kind = {"string": str, "float32": float, "float64": float}.get(f.type, int)
            assert type(value) is kind, (type_name, name, value)
        object.__setattr__(self, name, value)

    return type(type_name, (), {"__init__": init, "__setattr__": setattr_})


class FakePublisher:
    def __init__(self, cls, topic, qos) -> None:
        self.cls, self.topic, self.qos, self.sent, self.listeners = cls, topic, qos, [], 1

    def publish(self, msg) -> None:
        assert type(msg).__name__ == self.cls.__name__
        self.sent.append(msg)

    def get_subscription_count(self) -> int:
        return self.listeners


class FakeNode:
    def __init__(self) -> None:
        self.pubs, self.subs, self.log = {}, {}, []

    def create_publisher(self, cls, topic, qos):
        self.pubs[topic] = FakePublisher(cls, topic, qos)
        return self.pubs[topic]

    def create_subscription(self, cls, topic, callback, qos):
        self.subs[topic] = (cls, callback, qos)
        return object()

    def get_logger(self):
        node = self

        class Logger:
            def info(self, text):
                node.log.append(("info", text))

            def warning(self, text):
                node.log.append(("warning", text))

        return Logger()


def test_bridge_with_a_fake_node(store, frames, segmenter) -> None:
    from rapsam_edge.ros.node import Bridge, from_ros, to_ros

    classes: dict[str, type] = {}

    def resolve(name):
        return classes.setdefault(name, fake_class(name))

    node = FakeNode()
    core = make_core(segmenter, prompts=True)
    Bridge(node, core, make_qos=lambda spec: spec, resolve=resolve)
    assert set(node.pubs) == OUT and set(node.subs) == {"image", "prompts/boxes", "prompts/point"}
    for topic, pub in list(node.pubs.items()) + [(t, s) for t, s in node.subs.items()]:
        qos = pub.qos if isinstance(pub, FakePublisher) else pub[2]
        assert qos == QOS[TOPICS[topic].qos], topic
    (latched,) = node.pubs["label_info"].sent
    assert from_ros("vision_msgs/msg/LabelInfo", latched) == core.label_info()

    _, on_image, _ = node.subs["image"]
    node.pubs["debug/overlay"].listeners = 0  # nobody listens: not converted, not sent
    msg = image_dict(store, frames[0], 42)
    on_image(to_ros("sensor_msgs/msg/Image", msg, resolve))
    for topic in OUT - {"label_info", "prompts/masks", "debug/overlay"}:
        (sent,) = node.pubs[topic].sent
        back = from_ros(TOPICS[topic].type, sent)
        assert back["header"] == {"stamp": {"sec": 42, "nanosec": 7}, "frame_id": "cam"}
    assert node.pubs["debug/overlay"].sent == []
    diag = from_ros("diagnostic_msgs/msg/DiagnosticArray", node.pubs["diagnostics"].sent[0])
    assert diag["status"][0]["level"] == 0

    bad = dict(msg, encoding="rgba8")
    on_image(to_ros("sensor_msgs/msg/Image", bad, resolve))  # skipped with a warning
    assert len(node.pubs["detections"].sent) == 1
    assert any(level == "warning" and "rgba8" in text for level, text in node.log)

    _, on_boxes, _ = node.subs["prompts/boxes"]
    on_boxes(
        to_ros("vision_msgs/msg/Detection2DArray", box_prompt(store, (150, 240, 230, 320)), resolve)
    )
    assert any("object id(s) [1]" in text for _, text in node.log)
    on_image(to_ros("sensor_msgs/msg/Image", image_dict(store, frames[1], 43), resolve))
    assert len(node.pubs["prompts/masks"].sent) == 1


# ------------------------------------------------------------------- real rclpy
def test_the_node_in_rclpy(store, frames, segmenter) -> None:
    """Runs only where ROS 2 (rclpy, sensor_msgs, vision_msgs, diagnostic_msgs) imports."""
    for module in ("rclpy", "sensor_msgs.msg", "vision_msgs.msg", "diagnostic_msgs.msg"):
        if importlib.util.find_spec(module.split(".")[0]) is None:
            pytest.skip(f"{module} is not importable: ROS 2 is not installed here")
    import rclpy
    from rclpy.node import Node

    from rapsam_edge.ros.node import Bridge, from_ros, message_class, qos_profile, to_ros

    rclpy.init()
    try:
        server = Node("rapsam_edge_test_node")
        Bridge(server, make_core(segmenter, prompts=True))
        client = Node("rapsam_edge_test_client")
        got = []
        client.create_subscription(
            message_class("vision_msgs/msg/Detection2DArray"),
            "detections",
            got.append,
            qos_profile(QOS["reliable"]),
        )
        pub = client.create_publisher(
            message_class("sensor_msgs/msg/Image"), "image", qos_profile(QOS["sensor_data"])
        )
        ros_image = to_ros("sensor_msgs/msg/Image", image_dict(store, frames[0], 9), message_class)
        executor = rclpy.executors.SingleThreadedExecutor()
        executor.add_node(server)
        executor.add_node(client)
        for _ in range(200):
            if got:
                break
            pub.publish(ros_image)
            executor.spin_once(timeout_sec=0.05)
        assert got, "no detections came back"
        back = from_ros("vision_msgs/msg/Detection2DArray", got[0])
        assert back["header"] == {"stamp": {"sec": 9, "nanosec": 7}, "frame_id": "cam"}
    finally:
        rclpy.shutdown()
