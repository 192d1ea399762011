"""The ROS 2 message layer (``rapsam_edge.ros``) against an independent implementation of the
wire format: messages are serialised with mcap-ros2-support's CDR encoder (what the recorder
uses) and decoded with rosbags' deserialiser and rosbags' own definitions of the standard
packages; every field is compared. Pixel maps are checked against the results' own arrays,
recomputed here without the package's lookup code.
"""

from __future__ import annotations

import numpy as np
import pytest
import ros_wire as wire  # tests/ros_wire.py

from rapsam_edge.contract.postprocess import SEGMENT_DTYPE
from rapsam_edge.errors import InputError
from rapsam_edge.ros import TOPICS, OutputInfo, frame_messages, label_info_message, msgdefs
from rapsam_edge.ros.messages import (
    check_header,
    check_message,
    confidence_map,
    detections,
    frame_from_image,
    image_array,
    image_msg,
    make_header,
    semantic_labels,
)
from rapsam_edge.runtime.results import PanopticResult, PromptTrack, PromptTrackResult, TrackResult

mcap_dynamic = pytest.importorskip("mcap_ros2._dynamic", reason="mcap-ros2-support is missing")

FLOAT32 = frozenset({"threshold"})
CLASSES = ("circle", "square", "sky", "grass")
INFO = OutputInfo(CLASSES, "RGB", 0.8, "ort-cpu", "test")


def encode(type_name: str, msg: dict) -> bytes:
    enc = mcap_dynamic.serialize_dynamic(type_name, msgdefs.definition(type_name))[type_name]
    return bytes(enc(msg))


@pytest.fixture(scope="module")
def store():
    return wire.typestore()


def roundtrip(store, type_name: str, msg: dict):
    check_message(type_name, msg)
    decoded = store.deserialize_cdr(encode(type_name, msg), type_name)
    assert decoded.__msgtype__ == type_name
    wire.assert_same(decoded, msg, type_name, FLOAT32)
    return decoded


def make_result(h: int = 12, w: int = 16) -> PanopticResult:
    """Two things (ids 3 and 7) and one stuff segment (id 9) on a small map."""
    pmap = np.zeros((h, w), np.int32)
    pmap[2:5, 3:8] = 3
    pmap[6:11, 1:4] = 7
    pmap[:, 12:] = 9
    segs = np.zeros(3, SEGMENT_DTYPE)
    segs["id"], segs["class"] = [3, 7, 9], [1, 0, 2]
    segs["score"], segs["is_thing"] = [0.9, 0.85, 0.95], [True, True, False]
    segs["area"] = [(pmap == i).sum() for i in (3, 7, 9)]
    return PanopticResult(pmap, segs, CLASSES, timings={"encoder": 12.5, "decoder": 3.25})


def make_track(pan: PanopticResult) -> TrackResult:
    track_map = np.where(pan.panoptic_map == 3, 41, np.where(pan.panoptic_map == 7, 5, 0))
    return TrackResult(
        4,
        track_map.astype(np.int32),
        np.array([41, 5], np.int32),
        np.array([1, 0], np.int32),
        np.array([0.9, 0.85], np.float32),
        pan,
        {"encoder": 1.0, "tracking": 0.5},
    )


# ------------------------------------------------------------------ the definitions
STANDARD = [n for n in msgdefs.names() if not n.startswith("vision_msgs/")]


@pytest.mark.parametrize("name", STANDARD)
def test_standard_definitions_match_rosbags_own(name, store) -> None:
    """Each standard .msg text of the package, parsed by rosbags, equals rosbags' own
    definition of that type (Jazzy): field names, types, array sizes, constants."""
    parsed = wire.rosbags_typesys.get_types_from_msg(msgdefs.text(name), name)[name]
    assert parsed == store.fielddefs[name]


#: vision_msgs 4.1.1 (ros-perception/vision_msgs, branch ros2), field by field
VISION_MSGS = {
    "Detection2DArray": [("header", "std_msgs/msg/Header"), ("detections", "Detection2D[]")],
    "Detection2D": [
        ("header", "std_msgs/msg/Header"),
        ("results", "ObjectHypothesisWithPose[]"),
        ("bbox", "BoundingBox2D"),
        ("id", "string"),
    ],
    "ObjectHypothesisWithPose": [
        ("hypothesis", "ObjectHypothesis"),
        ("pose", "geometry_msgs/msg/PoseWithCovariance"),
    ],
    "ObjectHypothesis": [("class_id", "string"), ("score", "float64")],
    "BoundingBox2D": [("center", "Pose2D"), ("size_x", "float64"), ("size_y", "float64")],
    "Pose2D": [("position", "Point2D"), ("theta", "float64")],
    "Point2D": [("x", "float64"), ("y", "float64")],
    "LabelInfo": [
        ("header", "std_msgs/msg/Header"),
        ("class_map", "VisionClass[]"),
        ("threshold", "float32"),
    ],
    "VisionClass": [("class_id", "uint16"), ("class_name", "string")],
}


def _type_str(node) -> str:
    kind, spec = node
    if kind.name == "BASE":
        return spec[0]
    if kind.name == "NAME":
        return spec.replace("vision_msgs/msg/", "")
    return _type_str(spec[0]) + "[]"


@pytest.mark.parametrize("name", sorted(VISION_MSGS))
def test_vision_msgs_definitions(name) -> None:
    full = f"vision_msgs/msg/{name}"
    parsed = wire.rosbags_typesys.get_types_from_msg(msgdefs.text(full), full)[full]
    assert [(f, _type_str(t)) for f, t in parsed[1]] == VISION_MSGS[name]


@pytest.mark.parametrize("name", [t.type for t in TOPICS.values()])
def test_full_definition_parses_to_every_dependency(name, store) -> None:
    """The schema text written into MCAP files (type + dependencies, ``ros2 bag`` style)
    parses with rosbags to the same types as the store holds."""
    parsed = wire.rosbags_typesys.get_types_from_msg(msgdefs.definition(name), name)
    assert name in parsed
    for dep, fields in parsed.items():
        assert fields == store.fielddefs[dep], dep


# --------------------------------------------------------------------- round trips
def test_every_output_round_trips(store) -> None:
    pan = make_result()
    frame = np.random.default_rng(0).integers(0, 255, (12, 16, 3), np.uint8)
    prompts = PromptTrackResult(
        2,
        [PromptTrack(4, pan.panoptic_map == 7, np.array([1, 6, 4, 11]), 0.7, 0.9, "tracked")],
        (12, 16),
    )
    header = make_header(1_700_000_000_123_456_789, "cam_front")
    for result in (pan, make_track(pan)):
        msgs = frame_messages(header, frame, result, INFO, fps=9.5, prompts=prompts)
        msgs["label_info"] = label_info_message(header, INFO)
        assert set(msgs) == {t for t, v in TOPICS.items() if v.direction == "out"}
        for topic, msg in msgs.items():
            decoded = roundtrip(store, TOPICS[topic].type, msg)
            assert decoded.header.stamp.sec == 1_700_000_000
            assert decoded.header.stamp.nanosec == 123_456_789
            assert decoded.header.frame_id == "cam_front"
        ids = wire.image_pixels(
            store.deserialize_cdr(
                encode(TOPICS["prompts/masks"].type, msgs["prompts/masks"]), "sensor_msgs/msg/Image"
            )
        )
        np.testing.assert_array_equal(ids, np.where(pan.panoptic_map == 7, 4, 0))


def _expected_labels(pan: PanopticResult, void: int) -> np.ndarray:
    out = np.full(pan.panoptic_map.shape, void, np.int64)
    for seg in pan.segments:
        out[pan.panoptic_map == seg["id"]] = seg["class"]
    return out


def test_maps_decode_to_the_results_arrays(store) -> None:
    pan = make_result()
    track = make_track(pan)
    frame = np.zeros((12, 16, 3), np.uint8)
    msgs = frame_messages(make_header(5, "c"), frame, track, INFO)

    def px(topic):
        data = encode("sensor_msgs/msg/Image", msgs[topic])
        return wire.image_pixels(store.deserialize_cdr(data, "sensor_msgs/msg/Image"))

    np.testing.assert_array_equal(px("panoptic/segments"), pan.panoptic_map)
    assert msgs["semantic/labels"]["encoding"] == "mono8"
    np.testing.assert_array_equal(px("semantic/labels"), _expected_labels(pan, 255))
    conf = np.zeros((12, 16), np.float32)
    for seg in pan.segments:
        conf[pan.panoptic_map == seg["id"]] = seg["score"]
    np.testing.assert_array_equal(px("semantic/confidence"), conf)
    np.testing.assert_array_equal(px("detections/ids"), track.track_map)
    assert msgs["debug/overlay"]["encoding"] == "rgb8"
    assert px("debug/overlay").shape == (12, 16, 3)


def test_detections_carry_track_ids_classes_and_boxes() -> None:
    pan = make_result()
    msg, ids = detections(make_header(0, "c"), make_track(pan))
    got = [
        (
            d["id"],
            d["results"][0]["hypothesis"]["class_id"],
            d["bbox"]["center"]["position"],
            d["bbox"]["size_x"],
            d["bbox"]["size_y"],
        )
        for d in msg["detections"]
    ]
    # track 41 covers rows 2..4, cols 3..7; track 5 rows 6..10, cols 1..3
    assert got == [
        ("41", "1", {"x": 5.5, "y": 3.5}, 5.0, 3.0),
        ("5", "0", {"x": 2.5, "y": 8.5}, 3.0, 5.0),
    ]
    assert [d["results"][0]["hypothesis"]["score"] for d in msg["detections"]] == [
        float(np.float32(0.9)),
        float(np.float32(0.85)),
    ]
    # a PanopticResult: things only, id = segment id, stuff pixels 0 in the id image
    msg, ids = detections(make_header(0, "c"), pan)
    assert [d["id"] for d in msg["detections"]] == ["3", "7"]
    np.testing.assert_array_equal(ids, np.where(pan.panoptic_map == 9, 0, pan.panoptic_map))


def test_label_info_and_diagnostics_content(store) -> None:
    header = make_header(0, "c")
    info = label_info_message(header, INFO)
    assert [(c["class_id"], c["class_name"]) for c in info["class_map"]] == list(enumerate(CLASSES))
    decoded = roundtrip(store, "vision_msgs/msg/LabelInfo", info)
    assert decoded.threshold == np.float32(0.8)
    msgs = frame_messages(header, np.zeros((12, 16, 3), np.uint8), make_result(), INFO, fps=7.0)
    values = {kv["key"]: kv["value"] for kv in msgs["diagnostics"]["status"][0]["values"]}
    assert values == {
        "fps": "7.00",
        "latency_ms/encoder": "12.500",
        "latency_ms/decoder": "3.250",
        "backend": "ort-cpu",
        "bundle": "test",
    }


# ------------------------------------------------------------------------ hostile
def test_frame_of_another_size_is_refused() -> None:
    pan = make_result()
    with pytest.raises(InputError, match="does not match"):
        frame_messages(make_header(0, "c"), np.zeros((13, 16, 3), np.uint8), pan, INFO)
    with pytest.raises(InputError, match="does not match"):
        frame_messages(make_header(0, "c"), np.zeros((12, 16), np.uint8), pan, INFO)


def test_empty_result(store) -> None:
    pan = PanopticResult(np.zeros((6, 7), np.int32), np.zeros(0, SEGMENT_DTYPE), CLASSES)
    msgs = frame_messages(make_header(0, "c"), np.zeros((6, 7, 3), np.uint8), pan, INFO)
    for topic, msg in msgs.items():
        roundtrip(store, TOPICS[topic].type, msg)
    assert msgs["detections"]["detections"] == []
    assert (image_array(msgs["semantic/labels"]) == 255).all()
    assert (image_array(msgs["semantic/confidence"]) == 0).all()


@pytest.mark.parametrize(
    ("n", "encoding", "void"),
    [(255, "mono8", 255), (256, "mono16", 65535), (65535, "mono16", 65535)],
)
def test_label_image_depth_follows_the_class_count(n, encoding, void, store) -> None:
    pan = make_result()
    pan.class_names = tuple(f"c{i}" for i in range(n))
    pan.segments["class"][0] = n - 1  # the largest class id still fits below UNLABELED
    labels, enc = semantic_labels(pan)
    assert enc == encoding
    np.testing.assert_array_equal(labels, _expected_labels(pan, void))
    msg = image_msg(make_header(0, "c"), labels, enc)
    decoded = store.deserialize_cdr(encode("sensor_msgs/msg/Image", msg), "sensor_msgs/msg/Image")
    np.testing.assert_array_equal(wire.image_pixels(decoded), _expected_labels(pan, void))


def test_65536_classes_are_refused() -> None:
    pan = make_result()
    pan.class_names = tuple(f"c{i}" for i in range(65536))
    with pytest.raises(InputError, match="mono16"):
        semantic_labels(pan)
    with pytest.raises(InputError, match="uint16"):
        label_info_message(make_header(0, "c"), OutputInfo(pan.class_names))


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda p: p.panoptic_map.__setitem__((0, 0), -3), "pixel value -3"),
        (lambda p: p.panoptic_map.__setitem__((0, 0), 11), "pixel value 11"),
        (lambda p: p.segments["id"].__setitem__(0, -3), "positive and unique"),
        (lambda p: p.segments["id"].__setitem__(0, 7), "positive and unique"),
        (lambda p: p.segments["class"].__setitem__(0, -1), "outside"),
        (lambda p: p.segments["class"].__setitem__(0, 4), "outside"),
    ],
)
def test_bad_ids_and_classes_are_refused(edit, match) -> None:
    """A negative or unknown id never indexes a table from its end (numpy's negative index)."""
    pan = make_result()
    edit(pan)
    with pytest.raises(InputError, match=match):
        frame_messages(make_header(0, "c"), np.zeros((12, 16, 3), np.uint8), pan, INFO)


def test_huge_ids_need_no_table_of_their_size() -> None:
    pan = make_result()
    big = 2**31 - 1
    pan.panoptic_map[pan.panoptic_map == 9] = big
    pan.segments["id"][2] = big
    np.testing.assert_array_equal(confidence_map(pan)[0, 12:], np.float32(0.95))
    labels, _ = semantic_labels(pan)
    np.testing.assert_array_equal(labels, _expected_labels(pan, 255))
    pan.panoptic_map[0, 0] = big - 1  # not a segment's id, on the binary-search path
    with pytest.raises(InputError, match=f"pixel value {big - 1}"):
        semantic_labels(pan)


def test_track_ids_not_in_the_map_are_refused() -> None:
    track = make_track(make_result())
    track.track_map[0, 0] = 99
    with pytest.raises(InputError, match="pixel value 99"):
        detections(make_header(0, "c"), track)
    track = make_track(make_result())
    track.track_ids = np.array([41], np.int32)
    with pytest.raises(InputError, match="ids"):
        detections(make_header(0, "c"), track)


@pytest.mark.parametrize(
    ("header", "match"),
    [
        ({"stamp": {"sec": 0, "nanosec": 10**9}, "frame_id": "c"}, "nanosec"),
        ({"stamp": {"sec": 2**31, "nanosec": 0}, "frame_id": "c"}, "sec"),
        ({"stamp": {"sec": 1.5, "nanosec": 0}, "frame_id": "c"}, "integer"),
        ({"stamp": {"sec": 0, "nanosec": 0}, "frame_id": 3}, "frame_id"),
        ({"stamp": {"sec": 0}, "frame_id": "c"}, "Header"),
    ],
)
def test_bad_headers_are_refused(header, match) -> None:
    with pytest.raises(InputError, match=match):
        check_header(header)


def test_bad_stamps_are_refused() -> None:
    for stamp in (-1, 2**31 * 10**9, True, 1.0):
        with pytest.raises(InputError):
            make_header(stamp, "c")


def test_check_message_names_a_missing_or_unknown_key() -> None:
    msg = image_msg(make_header(0, "c"), np.zeros((2, 2), np.uint8), "mono8")
    del msg["step"]
    with pytest.raises(InputError, match=r"missing fields \['step'\]"):
        check_message("sensor_msgs/msg/Image", msg)
    msg = label_info_message(make_header(0, "c"), INFO)
    msg["class_map"][1]["clas_name"] = msg["class_map"][1].pop("class_name")
    with pytest.raises(InputError, match=r"class_map\[1\]"):
        check_message("vision_msgs/msg/LabelInfo", msg)


# ---------------------------------------------------------------- input images
def _rosbags_image(store, pixels: np.ndarray, encoding: str, step_pad: int = 0, big=False):
    """An Image built and serialised by rosbags alone, then decoded back to a dict."""
    h, w = pixels.shape[:2]
    raw = pixels.astype(pixels.dtype.newbyteorder(">" if big else "<"))
    rows = raw.reshape(h, -1).view(np.uint8)
    rows = np.concatenate([rows, np.full((h, step_pad), 0xAB, np.uint8)], axis=1)
    Image = store.types["sensor_msgs/msg/Image"]
    Header = store.types["std_msgs/msg/Header"]
    Time = store.types["builtin_interfaces/msg/Time"]
    msg = Image(Header(Time(3, 4), "cam"), h, w, encoding, int(big), rows.shape[1], rows.ravel())
    back = store.deserialize_cdr(
        store.serialize_cdr(msg, "sensor_msgs/msg/Image"), "sensor_msgs/msg/Image"
    )
    return {f: getattr(back, f) for f in wire.fields_of(back)} | {
        "header": {"stamp": {"sec": 3, "nanosec": 4}, "frame_id": "cam"}
    }


def test_input_images_from_rosbags(store) -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (5, 7, 3), np.uint8)
    msg = _rosbags_image(store, rgb, "rgb8", step_pad=3)
    np.testing.assert_array_equal(frame_from_image(msg, "RGB"), rgb)
    np.testing.assert_array_equal(frame_from_image(msg, "BGR"), rgb[:, :, ::-1])
    msg = _rosbags_image(store, rgb[:, :, ::-1], "bgr8")
    np.testing.assert_array_equal(frame_from_image(msg, "RGB"), rgb)
    ids = rng.integers(-5, 2**31 - 1, (4, 6), np.int64).astype(np.int32)
    np.testing.assert_array_equal(image_array(_rosbags_image(store, ids, "32SC1", big=True)), ids)


def test_bad_input_images_are_refused(store) -> None:
    rgb = np.zeros((5, 7, 3), np.uint8)
    msg = _rosbags_image(store, rgb, "rgb8")
    with pytest.raises(InputError, match="not one of"):
        frame_from_image({**msg, "encoding": "mono8"}, "RGB")
    with pytest.raises(InputError, match="bytes"):
        frame_from_image({**msg, "data": msg["data"][:-1]}, "RGB")
    with pytest.raises(InputError, match="bytes"):
        frame_from_image({**msg, "step": 20}, "RGB")  # shorter than a row
    with pytest.raises(InputError, match="over"):
        frame_from_image({**msg, "height": 10**6, "width": 10**6}, "RGB")
    with pytest.raises(InputError, match="empty"):
        frame_from_image({**msg, "height": 0}, "RGB")
    with pytest.raises(InputError, match="needs int32"):
        image_msg(make_header(0, "c"), np.zeros((2, 2), np.int64), "32SC1")
