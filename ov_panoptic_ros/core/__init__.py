"""The ROS-free core: numpy/torch in, per-point panoptic result out. Nothing below here imports rclpy."""
