"""Optional packages of ``rapsam_edge.ros``, imported when used: a missing one is a
``MissingDependencyError`` naming the pip extra (or, for rclpy, the ROS 2 installation)."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import MissingDependencyError

__all__ = ["EXTRAS", "require"]

#: module -> (what needs it, how to install it)
EXTRAS: dict[str, tuple[str, str]] = {
    "mcap.writer": ("MCAP recording", "pip install 'rapsam-edge[record]'"),
    "mcap.reader": ("MCAP recording", "pip install 'rapsam-edge[record]'"),
    "mcap_ros2._dynamic": ("MCAP recording", "pip install 'rapsam-edge[record]'"),
    "rerun": ("the Rerun view", "pip install 'rapsam-edge[view]'"),
    "yaml": ("the node's parameter file", "pip install 'rapsam-edge[ros]'"),
}
_ROS_HINT = "source a ROS 2 installation (`source /opt/ros/jazzy/setup.bash`); rclpy is not on PyPI"
for _pkg in ("rclpy", "sensor_msgs", "geometry_msgs", "diagnostic_msgs", "std_msgs"):
    EXTRAS[_pkg] = ("the ROS 2 node", _ROS_HINT)
EXTRAS["vision_msgs"] = (
    "the ROS 2 node",
    "install vision_msgs 4.x (`sudo apt install ros-$ROS_DISTRO-vision-msgs`)",
)


def require(module: str) -> ModuleType:
    """``importlib.import_module(module)``, or a ``MissingDependencyError`` saying what needs
    it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        default = ("rapsam_edge.ros", "pip install 'rapsam-edge[ros]'")
        what, how = EXTRAS.get(module, EXTRAS.get(module.split(".")[0], default))
        raise MissingDependencyError(
            f"{what} needs the Python package {module.split('.')[0]!r}, which cannot be "
            f"imported here ({e})",
            hint=how,
        ) from None
