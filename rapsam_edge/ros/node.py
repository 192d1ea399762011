"""The ROS 2 node (rclpy): ``python -m rapsam_edge.ros.node --ros-args --params-file
config/rapsam_edge.yaml -r image:=/camera/color/image_raw`` (or the launch file in
``launch/``).

It subscribes to ``image`` (rgb8 / bgr8, SensorData QoS: best effort, keep last 1, so a slow
node always works on the newest frame and never queues old ones), ``prompts/boxes`` and
``prompts/point``, and publishes every "out" topic of ``topics.TOPICS`` with the QoS given
there (``label_info`` latched once at start). All the work is ``core.NodeCore`` on message
dicts; this module only converts between rclpy messages and dicts (``to_ros`` / ``from_ros``,
driven by the .msg field lists of ``msgdefs``) and wires publishers and subscriptions.

rclpy is imported only by ``main()`` (it comes with a ROS 2 installation, not from PyPI);
``Bridge`` takes the node, a QoS factory and a message-class resolver, so the tests run it
with fakes where ROS 2 is not installed.
"""

from __future__ import annotations

import array
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import RapsamEdgeError
from . import msgdefs
from ._optional import require
from .core import NodeCore
from .messages import Msg
from .params import NodeParams
from .topics import QOS, TOPICS, QosSpec

__all__ = ["Bridge", "from_ros", "main", "message_class", "qos_profile", "to_ros"]

log = logging.getLogger(__name__)
#: parameters rclpy declares on every node by itself (not ours to check)
_ROS_OWN_PARAMS = ("use_sim_time", "qos_overrides.", "start_type_description_service")


def message_class(type_name: str) -> Any:
    """The rclpy class of ``pkg/msg/Name`` (``from pkg.msg import Name``)."""
    pkg, name = msgdefs.short_name(type_name).split("/")
    return getattr(require(f"{pkg}.msg"), name)


def to_ros(type_name: str, msg: Mapping[str, Any], resolve: Callable[[str], Any]) -> Any:
    """An rclpy message (class from ``resolve``) holding the dict ``msg``: ``uint8[]`` as
    ``array.array('B')`` (rclpy's fast path), ``byte`` as one byte, nested types built."""
    obj = resolve(type_name)()
    for f in msgdefs.fields(type_name):
        value = msg[f.name]
        if not f.is_primitive:
            if f.is_array:
                value = [to_ros(f.type, item, resolve) for item in value]
            else:
                value = to_ros(f.type, value, resolve)
        elif f.type == "byte" and not f.is_array:
            value = bytes([value]) if isinstance(value, int) else bytes(value)
        elif f.is_array and f.type == "uint8":
            value = array.array("B", bytes(value))
        setattr(obj, f.name, value)
    return obj


def from_ros(type_name: str, obj: Any) -> Msg:
    """The dict of an rclpy message (or any object with the fields as attributes)."""
    out: Msg = {}
    for f in msgdefs.fields(type_name):
        value = getattr(obj, f.name)
        if not f.is_primitive:
            if f.is_array:
                value = [from_ros(f.type, item) for item in value]
            else:
                value = from_ros(f.type, value)
        elif f.type == "byte" and not f.is_array:
            value = value[0] if isinstance(value, (bytes, bytearray)) else int(value)
        elif f.is_array and f.type == "uint8":
            value = bytes(value)
        elif f.is_array:
            value = list(value)
        out[f.name] = value
    return out


def qos_profile(spec: QosSpec) -> Any:
    """``rclpy.qos.QoSProfile`` of a ``topics.QOS`` entry."""
    qos = require("rclpy.qos")
    return qos.QoSProfile(
        depth=spec.depth,
        history=qos.HistoryPolicy.KEEP_LAST,
        reliability=getattr(qos.ReliabilityPolicy, spec.reliability.upper()),
        durability=getattr(qos.DurabilityPolicy, spec.durability.upper()),
    )


class Bridge:
    """Publishers and subscriptions of one node around a ``NodeCore``."""

    def __init__(
        self,
        node: Any,
        core: NodeCore,
        *,
        make_qos: Callable[[QosSpec], Any] = qos_profile,
        resolve: Callable[[str], Any] = message_class,
    ) -> None:
        self.node, self.core, self.resolve = node, core, resolve
        self.logger = node.get_logger()
        self.publishers: dict[str, Any] = {}
        self.subscriptions: dict[str, Any] = {}
        for topic, spec in TOPICS.items():
            if spec.direction == "out":
                if topic == "prompts/masks" and core.prompt_tracker is None:
                    continue
                self.publishers[topic] = node.create_publisher(
                    resolve(spec.type), topic, make_qos(QOS[spec.qos])
                )
        inputs: dict[str, Callable[[Any], None]] = {"image": self.on_image}
        if core.prompt_tracker is not None:
            inputs |= {"prompts/boxes": self.on_boxes, "prompts/point": self.on_point}
        for topic, callback in inputs.items():
            spec = TOPICS[topic]
            self.subscriptions[topic] = node.create_subscription(
                resolve(spec.type), topic, callback, make_qos(QOS[spec.qos])
            )
        self.publish("label_info", core.label_info())

    def publish(self, topic: str, msg: Msg) -> None:
        pub = self.publishers[topic]
        count = getattr(pub, "get_subscription_count", None)
        if topic != "label_info" and count is not None and count() == 0:
            return  # nobody listens: skip the conversion
        pub.publish(to_ros(TOPICS[topic].type, msg, self.resolve))

    def _guard(self, what: str, work: Callable[[], Any]) -> Any:
        try:
            return work()
        except RapsamEdgeError as e:  # a bad message or frame: skip it, keep serving
            self.logger.warning(f"{what} skipped: {e} ({e.hint})")
            return None

    def on_image(self, ros_msg: Any) -> None:
        msg = from_ros(TOPICS["image"].type, ros_msg)
        outs = self._guard("image", lambda: self.core.on_image(msg))
        for topic, out in (outs or {}).items():
            self.publish(topic, out)

    def on_boxes(self, ros_msg: Any) -> None:
        msg = from_ros(TOPICS["prompts/boxes"].type, ros_msg)
        ids = self._guard("prompts/boxes", lambda: self.core.on_boxes(msg))
        if ids:
            self.logger.info(f"tracking box prompt(s) as object id(s) {ids}")

    def on_point(self, ros_msg: Any) -> None:
        msg = from_ros(TOPICS["prompts/point"].type, ros_msg)
        ids = self._guard("prompts/point", lambda: self.core.on_point(msg))
        if ids:
            self.logger.info(f"tracking the click as object id {ids[0]}")


def node_params(node: Any) -> NodeParams:
    """``NodeParams`` of the parameters ROS gave the node (``--params-file``), less rclpy's
    own."""
    given = {
        name: p.value
        for name, p in node.get_parameters_by_prefix("").items()
        if not name.startswith(_ROS_OWN_PARAMS)
    }
    return NodeParams.from_mapping(given)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the node until Ctrl-C (``rclpy.spin``)."""
    rclpy = require("rclpy")
    rclpy_node = require("rclpy.node")
    rclpy.init(args=list(sys.argv if argv is None else argv))
    node = rclpy_node.Node("rapsam_edge", automatically_declare_parameters_from_overrides=True)
    try:
        core = NodeCore(node_params(node))
        Bridge(node, core)
        node.get_logger().info(
            f"rapsam_edge: bundle {core.info.bundle} on {core.info.backend}, task "
            f"{core.params.task}; waiting for images on {node.resolve_topic_name('image')}"
        )
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    except RapsamEdgeError as e:
        node.get_logger().error(f"{e} ({e.hint})")
        return 2
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
