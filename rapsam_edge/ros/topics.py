"""The ROS 2 interface of rapsam-edge, written once: topic -> (message type, QoS profile,
direction). The node, the MCAP recorder and the docs take names, types and QoS from
``TOPICS``; nothing else spells a topic name.

Topic names are relative, so a node started in a namespace (``ros2 run ... --ros-args -r
__ns:=/front``) or with remappings (``-r image:=/camera/color/image_raw``) moves them all.

QoS profiles (``QOS``), as ``rclpy.qos`` would build them:
  * ``sensor_data``: best effort, volatile, keep last 1 (images in and out: a late frame is
    worth nothing, a slow subscriber never stalls the node);
  * ``latched``: reliable, transient local, keep last 1 (``label_info``: a subscriber that
    joins later still gets the class map, as with ``camera_info`` latched);
  * ``reliable``: reliable, volatile, keep last 10 (detections, diagnostics, prompts: small
    messages that should not be lost).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["IMAGE_ENCODINGS", "INPUT_ENCODINGS", "QOS", "TOPICS", "QosSpec", "Topic"]


@dataclass(frozen=True)
class QosSpec:
    """A QoS profile in words (``node.qos_profile`` turns it into ``rclpy.qos.QoSProfile``;
    ``record.qos_yaml`` into the ``offered_qos_profiles`` that ``ros2 bag`` keeps per topic)."""

    reliability: Literal["reliable", "best_effort"]
    durability: Literal["volatile", "transient_local"]
    depth: int  # history: keep last ``depth``


QOS: dict[str, QosSpec] = {
    "sensor_data": QosSpec("best_effort", "volatile", 1),
    "latched": QosSpec("reliable", "transient_local", 1),
    "reliable": QosSpec("reliable", "volatile", 10),
}


@dataclass(frozen=True)
class Topic:
    """One topic: its message type (``pkg/msg/Name``), QoS profile (a ``QOS`` key),
    direction ("in": the node subscribes; "out": it publishes and the recorder writes) and
    what it carries."""

    type: str
    qos: str
    direction: Literal["in", "out"]
    what: str


_IMAGE = "sensor_msgs/msg/Image"
_DETECTIONS = "vision_msgs/msg/Detection2DArray"

#: every topic of the node; the recorder writes the "out" ones
TOPICS: dict[str, Topic] = {
    "image": Topic(_IMAGE, "sensor_data", "in", "camera frames, rgb8 or bgr8"),
    "prompts/boxes": Topic(
        _DETECTIONS, "reliable", "in", "boxes to track (each detection's bbox: one object)"
    ),
    "prompts/point": Topic(
        "geometry_msgs/msg/PointStamped", "reliable", "in", "a click (x, y pixels) to track"
    ),
    "panoptic/segments": Topic(
        _IMAGE, "sensor_data", "out", "32SC1 segment id per pixel (0 = void)"
    ),
    "semantic/labels": Topic(
        _IMAGE,
        "sensor_data",
        "out",
        "mono8 (<= 255 classes) or mono16 class id per pixel; void = 255 / 65535 (UNLABELED)",
    ),
    "semantic/confidence": Topic(
        _IMAGE, "sensor_data", "out", "32FC1 score of the segment under each pixel (0 = void)"
    ),
    "label_info": Topic(
        "vision_msgs/msg/LabelInfo", "latched", "out", "class id -> name, score threshold"
    ),
    "detections": Topic(
        _DETECTIONS,
        "reliable",
        "out",
        "one per object: bbox, class id (as in label_info) + score, id = track id",
    ),
    "detections/ids": Topic(
        _IMAGE, "sensor_data", "out", "32SC1 detection id per pixel (the mask of each detection)"
    ),
    "prompts/masks": Topic(
        _IMAGE, "sensor_data", "out", "32SC1 prompted object id per pixel (0 = none)"
    ),
    "debug/overlay": Topic(_IMAGE, "sensor_data", "out", "the frame with coloured segments"),
    "diagnostics": Topic(
        "diagnostic_msgs/msg/DiagnosticArray",
        "reliable",
        "out",
        "FPS, per-stage latency (ms), backend, bundle",
    ),
}

#: pixel layouts of ``sensor_msgs/Image`` this package writes: encoding -> (numpy dtype,
#: channels)
IMAGE_ENCODINGS: dict[str, tuple[str, int]] = {
    "mono8": ("uint8", 1),
    "mono16": ("uint16", 1),
    "32SC1": ("int32", 1),
    "32FC1": ("float32", 1),
    "rgb8": ("uint8", 3),
    "bgr8": ("uint8", 3),
}
#: encodings the node accepts on ``image``
INPUT_ENCODINGS = ("rgb8", "bgr8")
