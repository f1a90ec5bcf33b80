"""SemanticKITTI (Behley et al. 2019) as a FrameSource: open_source('semantickitti:ROOT', sequences=[...])."""
from ov_panoptic_ros.data.semantickitti.errors import SemanticKittiError
from ov_panoptic_ros.data.semantickitti.source import SemanticKittiSource

__all__ = ["SemanticKittiError", "SemanticKittiSource"]
