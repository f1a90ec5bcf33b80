"""3D open-vocabulary panoptic segmentation for ROS 2 (see README.md, "Architecture", for the floors)."""
from ov_panoptic_ros.quiet import quiet_dependencies

__version__ = "0.1.0"

quiet_dependencies()
