"""rapsam-edge on ROS 2: the message layer, an MCAP recorder, a Rerun live view, the node.

* ``topics``: the ROS 2 interface, written once (topic -> message type, QoS, direction).
* ``msgdefs``: the standard message definitions as data (``msg/PKG/NAME.msg``).
* ``messages`` / ``outputs``: a frame's results as ROS 2 message dicts, without rclpy.
* ``record``: ``Recorder``, the same messages on the same topics into an MCAP file
  (``pip install rapsam-edge[record]``: ``mcap``, ``mcap-ros2-support``).
* ``view``: ``RerunView``, a live view or an ``.rrd`` file (``pip install rapsam-edge[view]``:
  ``rerun-sdk``).
* ``sinks``: ``rapsam-edge run --record FILE.mcap --view [FILE.rrd | URL]`` (checked before
  the bundle loads, then given to ``apps.video.process_stream``).
* ``node``: the rclpy node (ROS 2's own Python packages, from a ROS 2 installation).

Importing this package imports none of rclpy, mcap or rerun: each is imported when its module
is used, and a missing one is a ``MissingDependencyError`` naming what to install.
"""

from __future__ import annotations

from .outputs import OutputInfo, frame_messages, label_info_message
from .topics import QOS, TOPICS, QosSpec, Topic

__all__ = [
    "QOS",
    "TOPICS",
    "OutputInfo",
    "QosSpec",
    "Topic",
    "frame_messages",
    "label_info_message",
]
