"""The `ov-panoptic` entry point: config inspection, the benchmark harness, and its argument errors."""
import json
import subprocess
import sys
from pathlib import Path

import yaml

CLI = [str(Path(sys.executable).parent / "ov-panoptic")]


def run(*args):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=300)


def test_config_prints_the_resolved_preset():
    out = run("config", "nuscenes")
    assert out.returncode == 0, out.stderr
    cfg = yaml.safe_load(out.stdout)
    assert cfg["name"] == "nuscenes" and cfg["voxel"]["grid"] == "cylindrical"
    assert len(cfg["vocabulary"]["classes"]) == 16


def test_config_error_is_one_line_not_a_traceback(tmp_path):
    out = run("config", str(tmp_path / "missing.yaml"))
    assert out.returncode == 2
    assert "neither a preset" in out.stderr and "Traceback" not in out.stderr


def test_bench_writes_json_for_the_selected_group(tmp_path):
    target = tmp_path / "b.json"
    out = run("bench", "--only", "metrics", "--quick", "--out", str(target))
    assert out.returncode == 0, out.stderr
    report = json.loads(target.read_text())
    assert list(report["results"]) == ["metrics"]
    metrics = report["results"]["metrics"]
    assert metrics["ours_points_per_s"] > 0 and metrics["wall_s"] > 0
    assert report["machine"]["cpu_count"] >= 1


def test_bench_rejects_unknown_group(tmp_path):
    out = run("bench", "--only", "nope", "--out", str(tmp_path / "b.json"))
    assert out.returncode != 0 and "unknown benchmark" in out.stderr
    assert not (tmp_path / "b.json").exists()


def test_bench_tf_reports_per_frame_lookups_for_six_cameras(tmp_path):
    target = tmp_path / "b.json"
    out = run("bench", "--only", "tf", "--quick", "--out", str(target))
    assert out.returncode == 0, out.stderr
    tf = json.loads(target.read_text())["results"]["tf"]
    assert tf["cameras"] == 6 and tf["static"]["frames"] == tf["fixed_frame"]["frames"] == 200
    assert 0 < tf["static"]["per_frame_ms"]["p50"] <= tf["static"]["per_frame_ms"]["p99"]
    assert "TF lookups per frame" in out.stdout  # its target row is printed
