"""`ov-panoptic param` and `ov-panoptic vocab` against the real node over DDS (what `ros2 param` would do)."""
import subprocess
import sys
from pathlib import Path

import pytest

from ov_panoptic_ros.testing.probe import wait_until

CLI = [str(Path(sys.executable).parent / "ov-panoptic")]


def _cli(*args):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_param_and_vocab_commands_drive_the_running_node(start_node, tmp_path):
    node, probe = start_node()

    got = _cli("param", "get", "/ov_panoptic", "stuff_classes")
    assert got.returncode == 0 and got.stdout.strip() == "[road, sidewalk, building, vegetation]", got.stderr

    # the README's vocabulary example: classes and stuff together, so the old stuff never blocks it
    new = _cli("vocab", "car", "pedestrian,person", "bicycle", "road", "vegetation,tree", "--stuff", "road",
               "--stuff", "vegetation")
    assert new.returncode == 0, new.stderr
    assert wait_until(lambda: probe.vocabularies() and probe.vocabularies()[-1]["version"] == 1, 30.0)
    assert probe.vocabularies()[-1]["classes"] == ["car", "pedestrian", "bicycle", "road", "vegetation"]
    assert probe.vocabularies()[-1]["stuff"] == ["road", "vegetation"]

    assert _cli("param", "set", "/ov_panoptic", "budget_ms", "50").returncode == 0  # an integer for a double
    assert node.get_parameter("budget_ms").value == 50.0

    params = tmp_path / "p.yaml"
    params.write_text("/**:\n  ros__parameters:\n    sync:\n      max_offset_s: 0.02\n    budget_ms: 80.0\n")
    loaded = _cli("param", "load", "/ov_panoptic", str(params))
    assert loaded.returncode == 0 and "sync.max_offset_s" in loaded.stdout, loaded.stderr
    assert node.get_parameter("sync.max_offset_s").value == 0.02 and node.get_parameter("budget_ms").value == 80.0

    refused = _cli("param", "set", "/ov_panoptic", "stuff_classes", "[sky]")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "stuff class 'sky' is not in the vocabulary" in refused.stderr

    names = _cli("param", "list", "/ov_panoptic").stdout.split()
    assert {"vocabulary", "budget_ms", "cam_front.image_topic"} <= set(names)


def test_a_missing_node_is_one_line_naming_it():
    proc = _cli("param", "get", "/nobody_here", "vocabulary")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "no node /nobody_here answers" in proc.stderr
