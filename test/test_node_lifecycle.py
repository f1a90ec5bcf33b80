"""The managed node's transitions, driven over DDS the way `ros2 lifecycle set` drives them."""
from conftest import add_node
from node_frames import Frames
from rclpy.parameter import Parameter

from ov_panoptic_ros.testing.probe import Probe, wait_until

OUTPUT = "/ov_panoptic/panoptic_points"


def _unmanaged_node(spin, tiny_pipeline, street_calibration):
    node = add_node(spin, tiny_pipeline, street_calibration, {"autostart": False})
    probe = spin.add(Probe())
    assert wait_until(lambda: probe.change_state_client.service_is_ready(), 10.0)
    return node, probe


def _activate(node, probe):
    assert probe.change_state("activate")
    assert probe.wait_for_subscribers(), "the active node did not subscribe to the cloud"
    assert wait_until(lambda: probe.count_subscribers("/cam_front/camera_info") > 0, 10.0)


def test_each_transition_over_dds(spin, tiny_pipeline, street_calibration, scenes):
    node, probe = _unmanaged_node(spin, tiny_pipeline, street_calibration)
    feed = Frames(probe, scenes[0])
    assert probe.lifecycle_state() == "unconfigured"
    assert node.pipeline is None and probe.count_publishers(OUTPUT) == 0
    assert probe.count_subscribers("/lidar/points") == 0

    assert probe.change_state("configure")
    assert probe.lifecycle_state() == "inactive"
    assert node.pipeline is tiny_pipeline and probe.count_publishers(OUTPUT) == 0  # model loaded, no topics

    _activate(node, probe)
    assert probe.lifecycle_state() == "active" and probe.count_publishers(OUTPUT) == 1
    assert wait_until(lambda: probe.vocabularies(), 10.0), "activate announces the vocabulary"
    assert feed.arrives(30.0)

    assert probe.change_state("deactivate")
    assert probe.lifecycle_state() == "inactive" and node.pipeline is tiny_pipeline  # the model stays
    assert wait_until(lambda: probe.count_subscribers("/lidar/points") == 0, 10.0)
    assert not feed.arrives(2.0), "an inactive node labeled a cloud"

    _activate(node, probe)  # again: fresh topics, the same QoS
    assert feed.arrives(30.0)

    assert probe.change_state("deactivate") and probe.change_state("cleanup")
    assert probe.lifecycle_state() == "unconfigured" and node.pipeline is None  # the model freed

    assert probe.change_state("configure")  # and back up from scratch
    _activate(node, probe)
    assert feed.arrives(30.0)
    assert probe.change_state("shutdown")
    assert probe.lifecycle_state() == "finalized" and node.pipeline is None
    assert node.stats.get("lifecycle_transitions_refused") == 0


def test_a_transition_twice_or_out_of_order_is_refused_logged_and_counted(spin, tiny_pipeline,
                                                                          street_calibration, scenes):
    node, probe = _unmanaged_node(spin, tiny_pipeline, street_calibration)
    assert not probe.change_state("activate")  # before configure
    assert probe.lifecycle_state() == "unconfigured"
    assert probe.change_state("configure")
    assert not probe.change_state("configure")  # twice
    assert probe.lifecycle_state() == "inactive"
    assert node.stats.get("lifecycle_transitions_refused") == 2
    _activate(node, probe)
    assert not probe.change_state("cleanup")  # from active: deactivate first
    assert probe.wait_for_counter("lifecycle_transitions_refused", 3)  # /diagnostics shows it
    assert Frames(probe, scenes[1]).arrives(30.0), "a refused transition disturbed the active node"


def test_a_vocabulary_set_while_unconfigured_is_the_one_configure_loads(spin, tiny_pipeline, street_calibration):
    node, probe = _unmanaged_node(spin, tiny_pipeline, street_calibration)
    (result,) = probe.set_parameters([Parameter("vocabulary", Parameter.Type.STRING_ARRAY, ["car", "road"])])
    assert result.successful, result.reason
    assert probe.change_state("configure")
    _activate(node, probe)
    assert wait_until(lambda: probe.vocabularies(), 10.0)
    assert probe.vocabularies()[-1]["classes"] == ["car", "road"] and probe.vocabularies()[-1]["version"] == 1


def test_diagnostics_never_raise_mid_cleanup(spin, tiny_pipeline, street_calibration):
    """The diagnostics timer has its own callback group, so it can fire while cleanup has dropped the pipeline
    but not yet left `inactive`; an exception there would stop the executor, and so the node (seen once under
    load on Jazzy)."""
    node, probe = _unmanaged_node(spin, tiny_pipeline, street_calibration)
    assert probe.change_state("configure")
    node.pipeline = None  # the moment inside on_cleanup between dropping the model and the new state
    node._publish_diagnostics()
    assert node.stats.snapshot(100.0).values["lifecycle_state"] == "inactive"
    node.pipeline = tiny_pipeline
    assert probe.change_state("cleanup") and probe.lifecycle_state() == "unconfigured"


def test_diagnostics_never_raise_mid_configure(spin, tiny_pipeline, street_calibration):
    """The other side of the same race (seen once in CI): the timer firing inside configure after the model is
    loaded but before the sync state exists. The node holds the pipeline only once that state is built."""
    node, probe = _unmanaged_node(spin, tiny_pipeline, street_calibration)
    seen = []
    build_sync = node._setup_sync

    def timer_fires_first():
        node._publish_diagnostics()  # the latest moment before the sync state exists
        seen.append(node.pipeline)
        build_sync()

    node._setup_sync = timer_fires_first
    assert probe.change_state("configure") and probe.lifecycle_state() == "inactive"
    assert seen == [None] and node.pipeline is tiny_pipeline
    node._publish_diagnostics()  # configured: the sync counters are read
    assert node.stats.get("frames_synced") == 0


def test_deactivate_drops_the_topics_before_the_worker_can_wake(spin, tiny_pipeline, street_calibration):
    """The worker also wakes for a newly embedded vocabulary and announces it on ~/vocabulary; deactivate must
    not destroy that publisher under it. A vocabulary that becomes ready just as the topics go is announced
    by the next activate instead, and is the one in use."""
    import time

    node, probe = _unmanaged_node(spin, tiny_pipeline, street_calibration)
    assert probe.change_state("configure")
    _activate(node, probe)
    ready = tiny_pipeline.prepare_vocabulary(node._vocabulary_from(
        {**node._current_vocab_values(), "vocabulary": ["car", "road"], "stuff_classes": ["road"]}, version=7))
    before = tiny_pipeline.vocabulary.version
    in_use_while_topics_went = []
    destroy_io = node._destroy_io

    def vocabulary_ready_meanwhile():
        with node._cond:  # re-entered: the Condition's lock is an RLock
            node._ready_vocab.append(ready)
            node._cond.notify_all()
        time.sleep(0.5)  # long enough for a free worker to take it
        in_use_while_topics_went.append(tiny_pipeline.vocabulary.version)
        destroy_io()

    node._destroy_io = vocabulary_ready_meanwhile
    assert probe.change_state("deactivate")
    assert before != 7 and in_use_while_topics_went == [before]  # a worker that woke would have activated 7
    assert wait_until(lambda: tiny_pipeline.vocabulary.version == 7, 10.0)
    node._destroy_io = destroy_io
    _activate(node, probe)
    assert wait_until(lambda: probe.vocabularies() and probe.vocabularies()[-1]["version"] == 7, 10.0)
