"""Replay without ground truth (a bag recorded on a vehicle): predictions, latency and figures, no metrics."""
import json
from pathlib import Path

import numpy as np
import pytest

from ov_panoptic_ros.bridge.clouds import read_cloud_fields
from ov_panoptic_ros.core.config import load_config
from ov_panoptic_ros.data.bag.reader import open_bag
from ov_panoptic_ros.data.synthetic_drive import write_synthetic_bag
from ov_panoptic_ros.eval import replay_shard as replay_module  # where each part builds its Scorer
from ov_panoptic_ros.eval.replay import replay_offline
from cli_run import cli

BAG_KW = dict(num_points=2000, num_cameras=2, image_size=(64, 48), seed=5)
GT_TOPIC = "/ov_panoptic/ground_truth"
SCORING_KEYS = {"metrics", "mapping", "gt_classes"}


@pytest.fixture(scope="module")
def pipeline():
    from ov_panoptic_ros.core.pipeline import PanopticPipeline

    return PanopticPipeline(load_config("tiny"))


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    """The same 4-frame drive, once with its ground truth and once recorded without it."""
    root = tmp_path_factory.mktemp("bags")
    write_synthetic_bag(root / "gt.mcap", n_frames=4, **BAG_KW)
    write_synthetic_bag(root / "vehicle.mcap", n_frames=4, ground_truth=False, **BAG_KW)
    return root / "gt.mcap", root / "vehicle.mcap"


@pytest.fixture
def no_scorer(monkeypatch):
    """Fails the test if replay constructs a Scorer at all."""
    def refuse(*args, **kwargs):
        raise AssertionError("a Scorer was constructed in a replay without ground truth")

    monkeypatch.setattr(replay_module, "Scorer", refuse)


def _assert_predictions_only(doc: dict, out: Path, frames: int) -> None:
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(doc))
    assert doc["ground_truth"] is False and not SCORING_KEYS & set(doc), sorted(doc)
    assert doc["frames"]["processed"] == frames and doc["frames"]["skipped"] == 0 and doc["partial"] is False
    lat = doc["latency_ms"]
    assert lat["n"] == frames and 0 < lat["p50"] <= lat["p90"] <= lat["max"]
    assert {"project", "total"} <= set(doc["stage_latency_ms"])
    assert not (out / "per_class.csv").exists() and not (out / "confusion.csv").exists()


def test_flag_on_a_bag_with_ground_truth_runs_predictions_only(tmp_path, bags, pipeline, no_scorer, capfd):
    gt_bag, _ = bags
    out, pred_bag = tmp_path / "r", tmp_path / "pred.mcap"
    results = {}
    doc = replay_offline(gt_bag, "tiny", out, pipeline=pipeline, output_bag=pred_bag, progress=False,
                         ground_truth=False, on_frame=lambda i, r: results.__setitem__(i, r))
    assert "ground-truth topic" not in capfd.readouterr().err  # asked for, not detected: no notice
    _assert_predictions_only(doc, out, 4)
    assert doc["frames"]["skipped_by_reason"] == {}

    figs = doc["figures"]
    assert doc["figure_errors"] == {}
    assert "pq_per_class.png" not in figs and "confusion.png" not in figs
    assert sum(f.startswith("bev_") for f in figs) == 3 and sum(f.startswith("camera_") for f in figs) == 6
    for f in figs:
        assert (out / f).stat().st_size > 5000, f

    with open_bag(pred_bag) as reader:  # every frame's prediction, and no ground truth copied into it
        counts = reader.message_counts
        assert counts["/ov_panoptic/panoptic_points"] == counts["/ov_panoptic/instances"] == 4
        assert GT_TOPIC not in counts
        clouds = [m.decode() for m in reader.messages(["/ov_panoptic/panoptic_points"])]
    assert sorted(results) == [0, 1, 2, 3]
    for index, cloud in enumerate(clouds):
        np.testing.assert_array_equal(read_cloud_fields(cloud, ["label"])["label"], results[index].labels)


def test_bag_without_ground_truth_is_detected(tmp_path, bags, pipeline, no_scorer, capfd):
    _, vehicle = bags
    with open_bag(vehicle) as reader:
        assert GT_TOPIC not in reader.topic_types  # the bag really lacks it
    doc = replay_offline(vehicle, "tiny", tmp_path / "r", pipeline=pipeline, progress=False, figure_frames=1)
    notice = [line for line in capfd.readouterr().err.splitlines() if GT_TOPIC in line]
    assert len(notice) == 1 and "without ground truth" in notice[0], notice
    _assert_predictions_only(doc, tmp_path / "r", 4)
    assert sorted(doc["figures"]) == ["bev_frame00000.png", "camera_frame00000_cam_back.png",
                                      "camera_frame00000_cam_front.png"]


def test_with_ground_truth_and_no_flag_still_scores(tmp_path, bags, pipeline, capfd):
    gt_bag, _ = bags
    out = tmp_path / "r"
    doc = replay_offline(gt_bag, "tiny", out, pipeline=pipeline, progress=False, figure_frames=0)
    assert "ground-truth topic" not in capfd.readouterr().err
    assert doc["ground_truth"] is True and doc["metrics"]["n_frames"] == 4
    assert 0.0 <= doc["metrics"]["PQ"] <= 1.0 and doc["mapping"]["table"]
    assert doc["figures"] == ["pq_per_class.png", "confusion.png"]
    assert (out / "per_class.csv").exists() and (out / "confusion.csv").exists()


def test_a_scored_report_directory_keeps_no_stale_tables(tmp_path, bags, pipeline):
    gt_bag, _ = bags
    out = tmp_path / "r"
    replay_offline(gt_bag, "tiny", out, pipeline=pipeline, progress=False, figure_frames=0)
    assert (out / "per_class.csv").exists()
    replay_offline(gt_bag, "tiny", out, pipeline=pipeline, progress=False, figure_frames=0, ground_truth=False)
    assert not (out / "per_class.csv").exists() and not (out / "confusion.csv").exists()


# ------------------------------------------------------------------------------------------------
# The CLI
# ------------------------------------------------------------------------------------------------
def test_cli_replays_a_vehicle_bag_and_exits_zero(tmp_path, bags):
    _, vehicle = bags
    out = tmp_path / "o"
    proc = cli("replay", str(vehicle), "--out", str(out), "--figure-frames", "0", "--no-progress", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sum(GT_TOPIC in line for line in proc.stderr.splitlines()) == 1, proc.stderr
    assert "no ground truth: predictions and latency only" in proc.stdout and "PQ " not in proc.stdout
    assert "4 processed" in proc.stdout and "per_class.csv" not in proc.stdout
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["ground_truth"] is False and "metrics" not in doc


def test_cli_refuses_scoring_options_without_ground_truth(tmp_path, bags):
    gt_bag, _ = bags
    mapping = tmp_path / "map.yaml"
    mapping.write_text("lorry: truck\n")
    cases = [
        (["--mapping", str(mapping)], "--mapping"),
        (["--min-points", "5"], "--min-points"),
        (["--live"], "offline only"),
    ]
    for extra, expected in cases:
        proc = cli("replay", str(gt_bag), "--no-ground-truth", "--out", str(tmp_path / "o"), *extra, timeout=300)
        assert proc.returncode == 2, (extra, proc.stdout, proc.stderr)
        assert expected in proc.stderr and "Traceback" not in proc.stderr, (extra, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, (extra, proc.stderr)
    assert not (tmp_path / "o").exists()
