"""Launch the ov_panoptic node (and optionally RViz2).

    ros2 launch ov_panoptic_ros ov_panoptic.launch.py
    ros2 launch ov_panoptic_ros ov_panoptic.launch.py config:=nuscenes device:=cuda \
        calibration_file:=/path/to/vehicle_calibration.yaml namespace:=perception use_sim_time:=true \
        lidar_topic:=/sensing/lidar/top/pointcloud camera_remaps:="/cam_front/image_raw=/sensing/front/image" \
        rviz:=true fixed_frame:=base_link
    ros2 launch ov_panoptic_ros ov_panoptic.launch.py autostart:=false   # then: ros2 lifecycle set /ov_panoptic configure

Parameters come from `params_file` (default: the package's config/ov_panoptic.yaml, keyed `/**:` so it applies
under any node name or namespace); the config, calibration_file, device and lidar_topic arguments override it
only when given, so edits in a custom params_file are not silently replaced by launch defaults.
`camera_remaps` holds ROS remapping rules FROM=TO for the node's topics (space- or comma-separated).
`autostart` (default true) configures and activates the lifecycle node as it starts, as yolo_ros does; false
leaves it unconfigured for `ros2 lifecycle set` or a lifecycle manager.
`rviz` starts RViz2 in the same namespace, with the same sim time, at `fixed_frame`.

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

from ov_panoptic_ros.ros.dds import PROFILE_ENV, default_profile_env, profile_env
from ov_panoptic_ros.ros.launch_args import parse_bool, parse_log_level, parse_remaps

PACKAGE = "ov_panoptic_ros"
# launch argument -> node parameter it overrides when non-empty
PARAMETER_ARGUMENTS = {
    "config": "pipeline.config",
    "calibration_file": "calibration_file",
    "device": "device",
    "lidar_topic": "lidar_topic",
}


def _arg(context, name: str) -> str:
    return LaunchConfiguration(name).perform(context)


def _nodes(context):
    overrides = {param: _arg(context, arg) for arg, param in PARAMETER_ARGUMENTS.items()}
    overrides = {param: value for param, value in overrides.items() if value}
    overrides["autostart"] = parse_bool("autostart", _arg(context, "autostart"))
    sim_time = {"use_sim_time": parse_bool("use_sim_time", _arg(context, "use_sim_time"))}
    namespace = _arg(context, "namespace")
    profile = _arg(context, "fastdds_profile")
    env = profile_env(profile) if profile else None  # under the name of each Fast DDS version (Jazzy: 2)
    share = get_package_share_directory(PACKAGE)
    return [
        Node(
            package=PACKAGE,
            executable="ov_panoptic_node",
            name="ov_panoptic",
            namespace=namespace,
            output="screen",
            emulate_tty=True,
            parameters=[_arg(context, "params_file"), overrides, sim_time],
            remappings=parse_remaps(_arg(context, "camera_remaps")),
            ros_arguments=["--log-level", parse_log_level(_arg(context, "log_level"))],
            additional_env=env,
        ),
        Node(
            package="rviz2",
            executable="rviz2",
            name="rviz2",
            namespace=namespace,
            arguments=["-d", os.path.join(share, "config", "ov_panoptic.rviz"), "-f", _arg(context, "fixed_frame")],
            parameters=[sim_time],
            condition=IfCondition(LaunchConfiguration("rviz")),
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
        DeclareLaunchArgument("lidar_topic", default_value="", description="LiDAR PointCloud2 topic (default: the"
                                                                           " params file's)"),
        DeclareLaunchArgument("camera_remaps", default_value="",
                              description="Remapping rules FROM=TO for the node's topics, space-separated"),
        DeclareLaunchArgument("autostart", default_value="true",
                              description="Configure and activate the lifecycle node at start-up"),
        DeclareLaunchArgument("namespace", default_value="", description="Namespace of the node (and RViz)"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="Use /clock (bag replay with --clock) for the node and RViz"),
        DeclareLaunchArgument("log_level", default_value="info", description="debug, info, warn, error or fatal"),
        DeclareLaunchArgument("rviz", default_value="false", description="Also start RViz2 with the package's layout"),
        DeclareLaunchArgument("fixed_frame", default_value="lidar_top", description="RViz's fixed frame"),
        DeclareLaunchArgument("fastdds_profile", default_value=default_profile_env().get(PROFILE_ENV, ""),
                              description="Fast DDS XML profile for the node and RViz (docs/dds.md); empty:"
                                          " the environment's DDS settings"),
        OpaqueFunction(function=_nodes),
    ])
