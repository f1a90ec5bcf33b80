"""3D open-vocabulary panoptic segmentation for ROS 2: core (ROS-free), ros (node), eval (bags, metrics)."""
__version__ = "0.1.0"
