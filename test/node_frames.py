"""A scene sent to a running node over DDS, and the node's output cloud waited for."""
import itertools

import numpy as np
from test_node import output_arrays

from ov_panoptic_ros.testing.probe import wait_until
from ov_panoptic_ros.testing.scene_msgs import scene_messages


class Frames:
    """Publishes the same scene with fresh stamps, 100 ms apart from the scene's own (or the stamp given),
    and waits for the node's output."""

    def __init__(self, probe, scene):
        self.probe, self.scene = probe, scene
        self._stamps = itertools.count(scene.frame.stamp_ns, 100_000_000)

    def arrives(self, timeout: float = 30.0, stamp_ns: int | None = None) -> bool:
        """Send the scene; whether a new output cloud came back within `timeout`."""
        n = len(self.probe.clouds())
        stamp_ns = next(self._stamps) if stamp_ns is None else stamp_ns
        self.probe.publish_scene(scene_messages(self.scene, stamp_ns=stamp_ns))
        return wait_until(lambda: len(self.probe.clouds()) > n, timeout)

    def send(self, timeout: float = 30.0, stamp_ns: int | None = None) -> np.ndarray:
        """Send the scene and decode the output cloud that comes back."""
        assert self.arrives(timeout, stamp_ns), "no output cloud"
        return output_arrays(self.probe.clouds()[-1])
