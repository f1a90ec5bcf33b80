"""Launch the ov_panoptic node (and optionally RViz2).

    ros2 launch ov_panoptic_ros ov_panoptic.launch.py
    ros2 launch ov_panoptic_ros ov_panoptic.launch.py config:=nuscenes device:=cuda \
        calibration_file:=/path/to/vehicle_calibration.yaml use_rviz:=true

Parameters come from `params_file` (default: the package's config/ov_panoptic.yaml); the config,
calibration_file and device arguments override it only when given, so edits in a custom
params_file are not silently replaced by launch defaults.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "ov_panoptic_ros"
# launch argument -> node parameter it overrides when non-empty
PARAMETER_ARGUMENTS = {
    "config": "pipeline.config",
    "calibration_file": "calibration_file",
    "device": "device",
}


def _panoptic_node(context):
    overrides = {param: LaunchConfiguration(arg).perform(context) for arg, param in PARAMETER_ARGUMENTS.items()}
    overrides = {param: value for param, value in overrides.items() if value}
    return [
        Node(
            package=PACKAGE,
            executable="ov_panoptic_node",
            name="ov_panoptic",
            output="screen",
            emulate_tty=True,
            parameters=[LaunchConfiguration("params_file").perform(context), overrides],
        )
    ]


def generate_launch_description():
    share = get_package_share_directory(PACKAGE)
    return LaunchDescription([
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "ov_panoptic.yaml"),
                              description="Node parameter file"),
        DeclareLaunchArgument("config", default_value="",
                              description="Pipeline preset (tiny, nuscenes, semantickitti) or pipeline YAML path"),
        DeclareLaunchArgument("calibration_file", default_value="",
                              description="Camera extrinsics YAML (default: config/calibration_demo.yaml)"),
        DeclareLaunchArgument("device", default_value="", description="auto, cpu, cuda or cuda:N"),
        DeclareLaunchArgument("use_rviz", default_value="false",
                              description="Also start RViz2 with the package's layout"),
        OpaqueFunction(function=_panoptic_node),
        Node(
            package="rviz2",
            executable="rviz2",
            name="rviz2",
            arguments=["-d", os.path.join(share, "config", "ov_panoptic.rviz")],
            condition=IfCondition(LaunchConfiguration("use_rviz")),
        ),
    ])
