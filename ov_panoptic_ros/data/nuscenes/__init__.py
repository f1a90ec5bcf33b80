"""nuScenes (with Panoptic nuScenes labels) as a FrameSource, read from the dataset's own files: JSON tables
(tables.py), LiDAR sweeps and images (files.py), labels (labels.py), camera placement (geometry.py), scene
splits (splits.py, splits.json); nuscenes-devkit itself is not imported (it pins numpy < 2)."""
from ov_panoptic_ros.data.nuscenes.errors import NuScenesError
from ov_panoptic_ros.data.nuscenes.source import CAMERAS, NuScenesSource

__all__ = ["CAMERAS", "NuScenesError", "NuScenesSource"]
