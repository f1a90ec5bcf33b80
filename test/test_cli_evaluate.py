"""`ov-panoptic evaluate` and `ov-panoptic train-teacher`, end to end as a user runs them (small sizes)."""
import json

import pytest

from cli_run import cli


def test_evaluate_scores_a_source_with_another_vocabulary(tmp_path):
    vocab = tmp_path / "v.yaml"
    vocab.write_text("classes: [automobile, lorry, coach, person, road, pavement, building, tree]\n"
                     "stuff: [road, pavement, building, tree]\n")
    mapping = tmp_path / "m.yaml"
    mapping.write_text("automobile: car\nlorry: truck\ncoach: bus\n")
    out = tmp_path / "report"
    proc = cli("evaluate", "synthetic:3", "--config", "tiny", "--out", str(out), "--vocabulary", str(vocab),
                "--mapping", str(mapping), "--option", "frames=2", "--option", "num_points=1500",
                "--option", "image_size=[64, 48]", "--min-points", "50", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "PQ_novel" in proc.stdout and "latency p50" in proc.stdout
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["frames"]["processed"] == 2 and doc["source"] == "synthetic:3" and doc["min_points"] == 50
    assert doc["vocabulary"]["names"][:3] == ["automobile", "lorry", "coach"]
    assert doc["mapping"]["table"]["automobile"] == "car" and doc["mapping"]["table"]["pavement"] == "sidewalk"


def test_evaluate_errors_are_one_line(tmp_path):
    proc = cli("evaluate", "world:x", "--config", "tiny", "--out", str(tmp_path / "r"))
    assert proc.returncode == 2 and "expected world, world:SEED or world:FIRST:STOP" in proc.stderr
    proc = cli("evaluate", "synthetic:1", "--config", "tiny", "--option", "frames", "--out", str(tmp_path / "r"))
    assert proc.returncode == 2 and "--option expects KEY=VALUE" in proc.stderr


@pytest.mark.slow
def test_train_teacher_renders_the_world_and_writes_a_loadable_teacher(tmp_path):
    out = tmp_path / "teacher.pt"
    proc = cli("train-teacher", "--out", str(out), "--seeds", "7", "--frames-per-seed", "1", "--cameras", "1",
                "--image-size", "96x64", "--epochs", "1", "--crop", "48", "--width", "8")
    assert proc.returncode == 0, proc.stderr
    assert "teacher epoch 1/1" in proc.stderr and out.exists()
    from ov_panoptic_ros.core.vision.teacher_checkpoint import read_teacher

    payload = read_teacher(out)
    assert payload["image_size"] == 64 and payload["train_config"]["epochs_done"] == 1
    assert tuple(payload["train_config"]["templates"])[0] == "a {}."
    again = cli("train-teacher", "--out", str(out))
    assert again.returncode == 2 and "exists already" in again.stderr
