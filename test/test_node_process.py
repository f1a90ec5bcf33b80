"""The installed console script as a separate process, configured by the packaged params file."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ov_panoptic_ros.testing.probe import Probe, wait_until
from ov_panoptic_ros.testing.scene_msgs import scene_messages

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_console_script_with_params_file_publishes_and_stops_cleanly(spin, scenes):
    exe = Path(sys.executable).with_name("ov_panoptic_node")
    proc = subprocess.Popen([str(exe), "--ros-args", "--params-file", str(ROOT / "config" / "ov_panoptic.yaml")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    try:
        probe = spin.add(Probe())
        assert probe.wait_for_subscribers(timeout=180.0), "the node process never subscribed"
        assert wait_until(lambda: probe.vocabularies(), 60.0)
        params = yaml.safe_load((ROOT / "config" / "ov_panoptic.yaml").read_text())["/**"]["ros__parameters"]
        expected = [entry.split(",")[0].strip() for entry in params["vocabulary"]]  # display name = first synonym
        assert probe.vocabularies()[0]["classes"] == expected  # the params file, not the preset, set it
        stamp = scenes[0].frame.stamp_ns
        for k in range(10):  # the node subscribes best-effort: resend until a frame makes it through
            probe.publish_scene(scene_messages(scenes[0], stamp_ns=stamp + k * 100_000_000))
            if wait_until(lambda: probe.clouds(), 10.0):
                break
        assert probe.clouds() and probe.clouds()[0].width == scenes[0].frame.num_points
        assert wait_until(lambda: probe.counter("frames_processed") >= 1, 5.0)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, out[-3000:]
    assert "ready:" in out and "Traceback" not in out, out[-3000:]
