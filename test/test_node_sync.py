"""Camera synchronization in the running node: late, missing, out-of-order cameras and time jumps.

Which cameras a frame used is read off the output itself: the pipeline labels only points some
camera sees, so points behind the car (cam_back's view) are labeled only when cam_back's image was used.
"""
import time

import numpy as np
from test_node import output_arrays

from ov_panoptic_ros.bridge.stamps import stamp_to_ns
from ov_panoptic_ros.core.frame import UNLABELED
from ov_panoptic_ros.testing.probe import wait_until
from ov_panoptic_ros.testing.scene_msgs import scene_messages

NS = 1_000_000_000


def labeled_fraction(arr, behind: bool) -> float:
    """Labeled share of the points well inside one camera's view (front: +x, back: -x)."""
    x, y = arr["x"], arr["y"]
    sel = (x < 0 if behind else x > 0) & (np.abs(y) < 0.5 * np.abs(x))
    return float((arr["label"][sel] != UNLABELED).mean())


def _next_cloud(probe, n_before, timeout=30.0):
    assert wait_until(lambda: len(probe.clouds()) > n_before, timeout), "no output cloud"
    return probe.clouds()[n_before]


def test_late_camera_within_timeout_is_used(start_node, scenes):
    _, probe = start_node({"sync.camera_timeout_s": 2.0})
    msgs = scene_messages(scenes[0])
    probe.publish_scene(msgs, cameras=["cam_front"])  # infos not yet for back: send them now
    probe.info_pubs["cam_back"].publish(msgs.infos["cam_back"])
    time.sleep(0.4)
    assert probe.clouds() == []  # still waiting for cam_back
    probe.image_pubs["cam_back"].publish(msgs.images["cam_back"])
    arr = output_arrays(_next_cloud(probe, 0))
    assert labeled_fraction(arr, behind=True) > 0.05 and labeled_fraction(arr, behind=False) > 0.05
    assert wait_until(lambda: probe.counter("frames_processed") >= 1, 5.0)
    assert probe.counter("sync_misses_cam_back") == 0


def test_missing_camera_frame_processed_with_the_other_after_timeout(start_node, scenes):
    _, probe = start_node({"sync.camera_timeout_s": 0.3})
    msgs = scene_messages(scenes[1])
    probe.publish_scene(msgs, cameras=["cam_front"])
    t0 = time.monotonic()
    out = _next_cloud(probe, 0)
    assert time.monotonic() - t0 >= 0.25  # it waited for cam_back, then gave up
    arr = output_arrays(out)
    assert out.width == scenes[1].frame.num_points  # the frame was not dropped
    assert labeled_fraction(arr, behind=True) == 0.0 and labeled_fraction(arr, behind=False) > 0.05
    assert probe.wait_for_counter("sync_misses_cam_back", 1)
    assert probe.counter("sync_misses_cam_front") == 0


def test_out_of_order_images_match_their_own_clouds(start_node, scenes):
    _, probe = start_node()
    all_msgs = [scene_messages(s) for s in scenes[:3]]
    for m in all_msgs:
        for c in m.infos:
            probe.info_pubs[c].publish(m.infos[c])
    order = [(2, "cam_back"), (0, "cam_front"), (1, "cam_back"), (2, "cam_front"), (0, "cam_back"), (1, "cam_front")]
    for i, cam in order:  # every image before any cloud, stamps scrambled
        probe.image_pubs[cam].publish(all_msgs[i].images[cam])
    time.sleep(0.3)
    for i, m in enumerate(all_msgs):
        probe.cloud_pub.publish(m.cloud)
        out = _next_cloud(probe, i)
        assert stamp_to_ns(out.header.stamp) == scenes[i].frame.stamp_ns
        arr = output_arrays(out)
        assert labeled_fraction(arr, behind=True) > 0.05 and labeled_fraction(arr, behind=False) > 0.05
    time.sleep(1.2)
    assert probe.counter("sync_misses_cam_front") == 0 and probe.counter("sync_misses_cam_back") == 0


def test_backwards_time_jump_clears_buffers_and_processing_continues(start_node, scenes):
    # A long camera timeout: DDS orders no topics, and on a loaded machine an image can trail its cloud by
    # more than the default 0.5 s; this test is about the jump, and asserts that no camera was missed.
    _, probe = start_node({"sync.camera_timeout_s": 3.0})
    base = scenes[0].frame.stamp_ns
    for k in range(2):  # the bag's first pass, 30 s later in time
        probe.publish_scene(scene_messages(scenes[k], stamp_ns=base + 30 * NS + k * NS // 10))
        _next_cloud(probe, k)
    probe.publish_scene(scene_messages(scenes[0], stamp_ns=base))  # the bag loops back to its start
    out = _next_cloud(probe, 2)
    assert stamp_to_ns(out.header.stamp) == base
    arr = output_arrays(out)
    assert labeled_fraction(arr, behind=True) > 0.05  # new-timeline images were kept and matched
    assert probe.wait_for_counter("time_jumps", 1)
    probe.publish_scene(scene_messages(scenes[1], stamp_ns=base + NS // 10))
    assert stamp_to_ns(_next_cloud(probe, 3).header.stamp) == base + NS // 10
    assert probe.counter("sync_misses_cam_back") == 0 and probe.counter("sync_misses_cam_front") == 0


def test_burst_keeps_only_the_newest_frame_and_accounts_for_every_cloud(start_node, scenes):
    """Clouds arriving faster than inference: stale frames are dropped (counted), never queued;
    the newest one is always processed."""
    _, probe = start_node()
    base = scenes[0].frame.stamp_ns
    burst = [scene_messages(scenes[i % len(scenes)], stamp_ns=base + i * NS // 10) for i in range(10)]
    for m in burst:
        probe.publish_scene(m)
    newest = base + 9 * NS // 10
    assert wait_until(lambda: any(stamp_to_ns(c.header.stamp) == newest for c in probe.clouds()), 60.0)
    stamps = [stamp_to_ns(c.header.stamp) for c in probe.clouds()]
    assert stamps == sorted(stamps) and len(stamps) < len(burst)

    def accounted():
        return (probe.counter("frames_processed") + probe.counter("frames_dropped_stale")
                + probe.counter("frames_dropped_pending"))
    # the input QoS (keep last 5) may already drop some of the burst before the callback: count what arrived
    time.sleep(1.5)
    received = probe.counter("clouds_received")
    assert 2 <= received <= len(burst) and accounted() == received, (received, probe.diagnostics())
    assert probe.counter("frames_dropped_stale") >= 1
    assert probe.counter("frames_processed") == len(stamps)
