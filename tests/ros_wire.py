"""The independent side of the ROS 2 tests: ``rosbags`` (its own CDR deserialiser, its own
message definitions of the standard packages, its own MCAP reader), and a field-by-field
comparison of what it decodes with the message dicts ``rapsam_edge.ros`` built.

Loaded by the test modules with ``importlib`` (tests/ is not a package)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

rosbags_typesys = pytest.importorskip("rosbags.typesys", reason="rosbags is not installed")

#: rosbags' own store of the standard definitions (sensor_msgs, std_msgs, geometry_msgs,
#: diagnostic_msgs of ROS 2 Jazzy); vision_msgs is not in it
STORE = rosbags_typesys.Stores.ROS2_JAZZY


def typestore() -> Any:
    """rosbags' Jazzy store plus vision_msgs, registered from the .msg texts of the package
    (the issue's instruction: "vision_msgs registered from their .msg text")."""
    from rapsam_edge.ros import msgdefs

    store = rosbags_typesys.get_typestore(STORE)
    extra: dict[str, Any] = {}
    for name in msgdefs.names():
        if name.startswith("vision_msgs/"):
            extra.update(rosbags_typesys.get_types_from_msg(msgdefs.text(name), name))
    store.register(extra)
    return store


def fields_of(obj: Any) -> list[str]:
    """The fields of a rosbags message (its constants, upper case in ROS, left out)."""
    return [
        f.name
        for f in dataclasses.fields(obj)
        if not f.name.startswith("__") and not f.name.isupper()
    ]


def assert_same(decoded: Any, expected: Any, path: str = "msg", float32: frozenset = frozenset()):
    """Every field of ``decoded`` (a rosbags message) equals ``expected`` (a message dict),
    and neither has a field the other lacks. Field names in ``float32`` compare as float32."""
    if isinstance(expected, Mapping):
        assert sorted(fields_of(decoded)) == sorted(expected), path
        for key, value in expected.items():
            assert_same(getattr(decoded, key), value, f"{path}.{key}", float32)
    elif isinstance(expected, (bytes, bytearray)):
        assert isinstance(decoded, np.ndarray) and decoded.dtype == np.uint8, path
        assert decoded.tobytes() == bytes(expected), path
    elif isinstance(expected, list):
        assert len(decoded) == len(expected), path
        for i, (d, e) in enumerate(zip(decoded, expected)):
            assert_same(d, e, f"{path}[{i}]", float32)
    elif isinstance(expected, float):
        want = np.float32(expected) if path.rsplit(".", 1)[-1] in float32 else expected
        assert decoded == want, f"{path}: {decoded!r} != {want!r}"
    else:
        assert type(decoded) is type(expected) and decoded == expected, (
            f"{path}: {decoded!r} != {expected!r}"
        )


def image_pixels(decoded: Any) -> np.ndarray:
    """The pixels of a rosbags-decoded ``sensor_msgs/Image``, by rosbags' fields only (not
    the package's ``image_array``)."""
    dtypes = {"mono8": "u1", "mono16": "u2", "32SC1": "i4", "32FC1": "f4", "rgb8": "u1"}
    dtypes["bgr8"] = "u1"
    channels = 3 if decoded.encoding in ("rgb8", "bgr8") else 1
    dt = np.dtype(("<" if not decoded.is_bigendian else ">") + dtypes[decoded.encoding])
    rows = decoded.data.reshape(decoded.height, decoded.step)
    row_bytes = decoded.width * channels * dt.itemsize
    px = np.ascontiguousarray(rows[:, :row_bytes]).view(dt)
    return px.reshape(decoded.height, decoded.width, channels).squeeze(-1 if channels == 1 else ())
