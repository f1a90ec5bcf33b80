"""The `ov-panoptic` entry point: config inspection, the benchmark harness, and its argument errors."""
import json

import pytest
import yaml

from cli_run import cli


def test_config_prints_the_resolved_preset():
    out = cli("config", "nuscenes", timeout=300)
    assert out.returncode == 0, out.stderr
    cfg = yaml.safe_load(out.stdout)
    assert cfg["name"] == "nuscenes" and cfg["voxel"]["grid"] == "cylindrical"
    assert len(cfg["vocabulary"]["classes"]) == 16


def test_config_error_is_one_line_not_a_traceback(tmp_path):
    out = cli("config", str(tmp_path / "missing.yaml"), timeout=300)
    assert out.returncode == 2
    assert "neither a preset" in out.stderr and "Traceback" not in out.stderr


def test_bench_writes_json_for_the_selected_group(tmp_path):
    target = tmp_path / "b.json"
    out = cli("bench", "--only", "metrics", "--quick", "--out", str(target), timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads(target.read_text())
    assert list(report["results"]) == ["metrics"]
    metrics = report["results"]["metrics"]
    assert metrics["ours_points_per_s"] > 0 and metrics["wall_s"] > 0
    assert report["machine"]["cpu_count"] >= 1


def test_bench_rejects_unknown_group(tmp_path):
    out = cli("bench", "--only", "nope", "--out", str(tmp_path / "b.json"), timeout=300)
    assert out.returncode != 0 and "unknown benchmark" in out.stderr
    assert not (tmp_path / "b.json").exists()


def test_bench_tf_reports_per_frame_lookups_for_six_cameras(tmp_path):
    target = tmp_path / "b.json"
    out = cli("bench", "--only", "tf", "--quick", "--out", str(target), timeout=300)
    assert out.returncode == 0, out.stderr
    tf = json.loads(target.read_text())["results"]["tf"]
    assert tf["cameras"] == 6 and tf["static"]["frames"] == tf["fixed_frame"]["frames"] == 200
    assert 0 < tf["static"]["per_frame_ms"]["p50"] <= tf["static"]["per_frame_ms"]["p99"]
    assert "TF lookups per frame" in out.stdout  # its target row is printed


def test_bench_sources_reports_frames_per_second_of_every_source(tmp_path):
    """Quick: 3 frames of each source, the datasets at their real sizes (about 5 s)."""
    target, scratch = tmp_path / "b.json", tmp_path / "scratch"
    scratch.mkdir()
    out = cli("bench", "--only", "sources", "--quick", "--out", str(target), env={"TMPDIR": str(scratch)}, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(target.read_text())["results"]["sources"]
    sources = result["sources"]
    assert list(sources) == ["world", "synthetic", "bag", "nuscenes", "semantickitti"]
    for name, source in sources.items():
        assert source["frames"] == result["frames_per_source"] == 3, name
        assert source["frames_per_s"] > 0 and source["ms_per_frame_p50"] > 0 and source["problems"] == 0, name
        assert source["frames_per_s"] == result["frames_per_s"][name] and source["ground_truth"], name
    assert sources["nuscenes"]["points_per_frame"] == 34_000 and sources["nuscenes"]["cameras"] == 6
    assert sources["nuscenes"]["image_size"] == [1600, 900]
    assert sources["semantickitti"]["points_per_frame"] == 120_000
    assert sources["semantickitti"]["image_size"] == [1241, 376]
    assert sources["bag"]["points_per_frame"] == sources["world"]["points_per_frame"]  # the world's frames, recorded
    writes = [sources[n]["write_s"] for n in ("bag", "nuscenes", "semantickitti")]
    assert all(w > 0 for w in writes) and result["write_s_total"] == pytest.approx(sum(writes), abs=2e-3)
    assert not list(scratch.glob("ov_bench_sources_*"))  # the datasets went with their temporary directory
