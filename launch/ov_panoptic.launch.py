"""Launch the ov_panoptic node (and optionally RViz2).

    ros2 launch ov_panoptic_ros ov_panoptic.launch.py
    ros2 launch ov_panoptic_ros ov_panoptic.launch.py config:=nuscenes device:=cuda \
        calibration_file:=/path/to/vehicle_calibration.yaml use_rviz:=true

Parameters come from `params_file` (default: the package's config/ov_panoptic.yaml); the config,
calibration_file and device arguments override it only when given, so edits in a custom
params_file are not silently replaced by launch defaults.

`fastdds_profile` is the Fast DDS XML profile both processes get (docs/dds.md): by default the package's
config/fastdds.xml, unless the environment already configures DDS (then empty: the environment decides).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from ov_panoptic_ros.ros.dds import PROFILE_ENV, default_profile_env

PACKAGE = "ov_panoptic_ros"
# launch argument -> node parameter it overrides when non-empty
PARAMETER_ARGUMENTS = {
    "config": "pipeline.config",
    "calibration_file": "calibration_file",
    "device": "device",
}


def _nodes(context):
    overrides = {param: LaunchConfiguration(arg).perform(context) for arg, param in PARAMETER_ARGUMENTS.items()}
    overrides = {param: value for param, value in overrides.items() if value}
    profile = LaunchConfiguration("fastdds_profile").perform(context)
    env = {PROFILE_ENV: profile} if profile else None
    share = get_package_share_directory(PACKAGE)
    return [
        Node(
            package=PACKAGE,
            executable="ov_panoptic_node",
            name="ov_panoptic",
            output="screen",
            emulate_tty=True,
            parameters=[LaunchConfiguration("params_file").perform(context), overrides],
            additional_env=env,
        ),
        Node(
            package="rviz2",
            executable="rviz2",
            name="rviz2",
            arguments=["-d", os.path.join(share, "config", "ov_panoptic.rviz")],
            condition=IfCondition(LaunchConfiguration("use_rviz")),
            additional_env=env,
        ),
    ]


def generate_launch_description():
    share = get_package_share_directory(PACKAGE)
    return LaunchDescription([
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "ov_panoptic.yaml"),
                              description="Node parameter file"),
        DeclareLaunchArgument("config", default_value="",
                              description="Pipeline preset (synthetic, tiny, nuscenes, semantickitti) or pipeline YAML path"),
        DeclareLaunchArgument("calibration_file", default_value="",
                              description="Camera extrinsics YAML (default: config/calibration_demo.yaml)"),
        DeclareLaunchArgument("device", default_value="", description="auto, cpu, cuda or cuda:N"),
        DeclareLaunchArgument("use_rviz", default_value="false",
                              description="Also start RViz2 with the package's layout"),
        DeclareLaunchArgument("fastdds_profile", default_value=default_profile_env().get(PROFILE_ENV, ""),
                              description="Fast DDS XML profile for the node and RViz (docs/dds.md); empty:"
                                          " the environment's DDS settings"),
        OpaqueFunction(function=_nodes),
    ])
