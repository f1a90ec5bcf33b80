"""Shared fixtures. DDS isolation is set up here, before any test module imports rclpy.

Every test session gets its own random ROS_DOMAIN_ID and keeps discovery on localhost, so parallel
sessions (other developers, CI jobs) never see each other's topics.
"""
import os
import random
from pathlib import Path

os.environ["ROS_DOMAIN_ID"] = os.environ.get("OV_TEST_ROS_DOMAIN_ID") or str(random.SystemRandom().randint(1, 200))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
# One torch/OpenMP thread, set before torch loads (and inherited by node subprocesses): on 2 shared cores,
# spinning OpenMP workers made small sparse convs and projections 5-20x slower and their timing erratic.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The nuscenes-devkit oracle venv of this checkout (`make oracle-venv`), unless the caller names another.
os.environ.setdefault("OV_PANOPTIC_ORACLE_PYTHON", str(Path(__file__).resolve().parents[1] / ".venv-oracle/bin/python"))

import threading  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def ros():
    """rclpy initialized once for the session (one DDS participant per node, all on the session's domain)."""
    import rclpy

    rclpy.init()
    yield rclpy
    rclpy.try_shutdown()


class SpinningExecutor:
    """A MultiThreadedExecutor spinning in a background thread; nodes added here are destroyed at teardown."""

    def __init__(self, rclpy_module, num_threads: int = 4):
        from rclpy.executors import MultiThreadedExecutor

        self.executor = MultiThreadedExecutor(num_threads=num_threads)
        self.nodes = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self):
        try:
            self.executor.spin()
        except Exception as e:  # a callback raised: the executor, and so a real node, would stop here
            self.error = e

    def add(self, node):
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def close(self):
        self.executor.shutdown(timeout_sec=10.0)
        self._thread.join(timeout=10.0)  # no callback may still run when its node is destroyed
        for node in reversed(self.nodes):
            node.destroy_node()
        if self.error is not None:  # fail the test that let a callback raise, with its traceback
            raise self.error


@pytest.fixture
def spin(ros):
    """Yields a SpinningExecutor; add nodes with `spin.add(node)`."""
    ex = SpinningExecutor(ros)
    yield ex
    ex.close()


# --------------------------------------------------------------------------------------------- node fixtures
# Small inputs keep the real tiny pipeline at tens of milliseconds per frame on 2 shared cores.
TEST_SCENE = dict(num_points=3000, image_size=(160, 120), num_cameras=2)
TEST_NODE_PARAMS = {
    "qos.reliability": "reliable",  # no best-effort fragment loss on a loaded CI machine
    "sync.camera_timeout_s": 0.5,
}


@pytest.fixture(scope="session")
def tiny_pipeline():
    """The real PanopticPipeline on the tiny preset, built once (torch import + model build take seconds)."""
    from ov_panoptic_ros.core.config import load_config
    from ov_panoptic_ros.core.pipeline import PanopticPipeline

    return PanopticPipeline(load_config("tiny"))


@pytest.fixture(scope="session")
def scenes():
    """Four consecutive frames of the synthetic street (2 cameras), 100 ms apart."""
    from ov_panoptic_ros.data.synthetic import scene_sequence

    return list(scene_sequence(4, seed=3, **TEST_SCENE))


@pytest.fixture(scope="session")
def street_calibration(tmp_path_factory, scenes):
    """The street rig's calibration file (the package's config/calibration_demo.yaml is the world's rig)."""
    path = tmp_path_factory.mktemp("street") / "calibration.yaml"
    path.write_text(scenes[0].calibration.to_yaml())
    return str(path)


def add_node(spin, tiny_pipeline, street_calibration, params=None):
    """The node in-process with the shared pipeline and the test parameters (plus `params`), added to `spin`;
    not yet brought up."""
    from rclpy.parameter import Parameter

    from ov_panoptic_ros.ros.node import PanopticNode

    values = {**TEST_NODE_PARAMS, "pipeline.config": "tiny", "calibration_file": street_calibration,
              **(params or {})}
    return spin.add(PanopticNode(pipeline=tiny_pipeline,
                                 parameter_overrides=[Parameter(k, value=v) for k, v in values.items()]))


@pytest.fixture
def start_node(spin, tiny_pipeline, street_calibration):
    """start_node(params, **probe_kwargs) -> (node, probe): the node in-process with the shared pipeline,
    plus a probe node that has discovered it and received its vocabulary."""
    from ov_panoptic_ros.ros.node import bring_up
    from ov_panoptic_ros.testing.probe import Probe, wait_until

    def start(params=None, **probe_kwargs):
        node = add_node(spin, tiny_pipeline, street_calibration, params)
        bring_up(node)
        probe = spin.add(Probe(**probe_kwargs))
        assert probe.wait_for_subscribers(), "node did not discover the probe's cloud publisher"
        assert wait_until(lambda: probe.vocabularies(), 10.0), "no ~/vocabulary received"
        for pub in list(probe.image_pubs.values()) + list(probe.info_pubs.values()):
            assert wait_until(lambda: pub.get_subscription_count() > 0, 10.0)
        return node, probe

    return start
