"""Launch the rapsam_edge node beside a camera driver:

    ros2 launch rapsam_edge_launch.py image:=/camera/color/image_raw \
        params_file:=/path/to/rapsam_edge.yaml namespace:=front

(``python -c "import rapsam_edge.ros, pathlib; print(pathlib.Path(rapsam_edge.ros.__file__)
.parent / 'launch')"`` prints this folder.) The node is run with the Python that has
rapsam-edge installed (``python -m rapsam_edge.ros.node``); ROS 2's own Python packages
(rclpy, sensor_msgs, vision_msgs, ...) come from the sourced ROS 2 installation.
"""

from __future__ import annotations

import sys
from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

CONFIG = Path(__file__).resolve().parents[1] / "config" / "rapsam_edge.yaml"


def generate_launch_description() -> LaunchDescription:
    image = LaunchConfiguration("image")
    return LaunchDescription(
        [
            DeclareLaunchArgument("image", default_value="image", description="input topic"),
            DeclareLaunchArgument("params_file", default_value=str(CONFIG)),
            DeclareLaunchArgument("namespace", default_value=""),
            DeclareLaunchArgument("python", default_value=sys.executable),
            Node(
                executable=LaunchConfiguration("python"),
                arguments=["-m", "rapsam_edge.ros.node"],
                name="rapsam_edge",
                namespace=LaunchConfiguration("namespace"),
                parameters=[LaunchConfiguration("params_file")],
                remappings=[("image", image)],
                output="screen",
            ),
        ]
    )
