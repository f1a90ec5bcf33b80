"""NodeStats: waiting on counters without polling."""
import threading
import time

from ov_panoptic_ros.ros.diagnostics import NodeStats


def test_wait_for_wakes_on_the_counter_change_and_times_out_otherwise():
    stats = NodeStats()
    stats.set_counter("frames_processed", 0)
    timer = threading.Timer(0.2, stats.count, args=("frames_processed",))
    timer.start()
    t = time.monotonic()
    assert stats.wait_for(lambda c: c["frames_processed"] >= 1, timeout_s=30.0)
    assert time.monotonic() - t < 20.0  # woken by count(), long before the timeout
    timer.join()
    t = time.monotonic()
    assert not stats.wait_for(lambda c: c["frames_processed"] >= 2, timeout_s=0.3)
    assert time.monotonic() - t >= 0.3
    stats.set_counter("frames_processed", 5)  # set_counter wakes waiters too
    assert stats.wait_for(lambda c: c["frames_processed"] == 5, timeout_s=0.0)
