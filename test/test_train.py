"""The training loop end to end on a tiny synthetic street: the loss falls, runs are deterministic, resume
equals an uninterrupted run, validation writes the evaluation report, the outputs are usable."""
import csv
import dataclasses
import json
import multiprocessing
import signal
from pathlib import Path

import pytest
import torch
import yaml

from ov_panoptic_ros.core.pipeline import PanopticPipeline
from ov_panoptic_ros.train.config import load_train_config
from ov_panoptic_ros.train.loop import train

TINY_DATA = {"frames": 2, "num_points": 2000, "image_size": [64, 48]}


def tiny_config(tmp_path: Path, name: str = "cfg", pipeline: dict | None = None, **train_keys):
    """(pipeline config, train config) of a tiny run on the synthetic street, written as a training YAML."""
    doc = {"preset": "tiny", "device": "cpu", **(pipeline or {}),
           "train": {"data": {"spec": "synthetic:1", "options": TINY_DATA}, "optimizer": {"lr": 0.003},
                     "checkpoint_every": 100, "log_every": 1, "out": str(tmp_path / name), **train_keys}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_train_config(path)


def weights(out: Path) -> dict:
    return torch.load(out / "network.pt", weights_only=True)["state_dict"]


def scalars(out: Path, tag: str) -> list[float]:
    return [float(r["value"]) for r in csv.DictReader(open(out / "scalars.csv")) if r["tag"] == tag]


def test_fifty_steps_lower_the_loss_and_validation_writes_the_report(tmp_path):
    val = {"spec": "synthetic:2", "options": {**TINY_DATA, "frames": 1}}
    pipeline_config, cfg = tiny_config(tmp_path, steps=50, val=val, val_every=25, cache_frames=2)
    result = train(pipeline_config, cfg, progress=False)
    out = Path(cfg.out)
    assert result.step == 50 and not result.interrupted and 0 <= result.data_wait_share < 1
    assert not multiprocessing.active_children()  # the frame reader is gone

    total = scalars(out, "loss/total")
    assert len(total) == 50
    assert sum(total[-10:]) / 10 < 0.6 * sum(total[:5]) / 5, total
    tags = {r["tag"] for r in csv.DictReader(open(out / "scalars.csv"))}
    assert {"loss/cls", "loss/mask", "loss/dice", "loss/object_distill", "loss/voxel_distill", "lr", "grad_norm",
            "time/steps_per_s", "time/data_wait_share", "val/PQ", "val/PQ_base", "val/PQ_novel", "val/mIoU"} <= tags
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))

    for step in (25, 50):
        report = out / "val" / f"step_{step:06d}"
        doc = json.loads((report / "metrics.json").read_text())
        assert doc["mode"] == "evaluate" and doc["source"] == "synthetic:2" and doc["step"] == step
        assert doc["pipeline_mode"] == "ov" and doc["frames"]["processed"] == 1
        assert doc["vocabulary"]["names"] == ["car", "truck", "bus", "pedestrian", "road", "sidewalk", "building",
                                              "vegetation"]  # base and novel: the whole dataset
        assert {"base", "novel", "things_novel", "stuff_base"} <= set(doc["metrics"]["groups"])
        rows = {r["class"]: r["base_novel"] for r in csv.DictReader(open(report / "per_class.csv"))}
        assert [c for c, split in rows.items() if split == "novel"] == ["bus", "pedestrian", "vegetation"]
    assert set(result.validation) >= {"val/PQ", "val/PQ_base", "val/PQ_novel", "val/mIoU"}
    assert all(0 <= v <= 1 for v in result.validation.values())

    # The network checkpoint is the pipeline's: it loads from `checkpoint:` and labels a frame.
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["train"]["steps"] == 50 and len(run["config_hash"]) == 16
    pipe = PanopticPipeline(dataclasses.replace(pipeline_config, checkpoint=str(out / "network.pt")))
    from ov_panoptic_ros.data.synthetic import make_scene

    assert pipe(make_scene(seed=9, num_points=1000, image_size=(64, 48)).frame).labels.shape == (1000,)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Six steps of two frames each over a three-frame street, start to end."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    pipeline_config, cfg = tiny_config(tmp, steps=6, batch_frames=2, data={"spec": "synthetic:1",
                                                                           "options": {**TINY_DATA, "frames": 3}})
    train(pipeline_config, cfg, progress=False)
    return pipeline_config, cfg


def test_the_same_run_twice_gives_identical_weights(tmp_path, uninterrupted):
    pipeline_config, cfg = uninterrupted
    again = dataclasses.replace(cfg, out=str(tmp_path / "again"))
    train(pipeline_config, again, progress=False)
    first, second = weights(Path(cfg.out)), weights(Path(again.out))
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_resume_equals_uninterrupted_training(tmp_path, uninterrupted):
    """Interrupted mid-epoch (position 8 of a 3-frame street, batches of two), then continued; a shuffled,
    random-access source resumes through the same position (test_train_parts.py)."""
    pipeline_config, cfg = uninterrupted
    resumed = dataclasses.replace(cfg, out=str(tmp_path / "resumed"), checkpoint_every=2)

    def ctrl_c(step):
        if step == 3:
            signal.raise_signal(signal.SIGINT)

    first = train(pipeline_config, resumed, progress=False, on_step=ctrl_c)
    assert first.interrupted and first.step == 4  # the step under way when Ctrl-C came is finished, then saved
    state = torch.load(Path(resumed.out) / "checkpoint.pt", weights_only=True)
    assert state["step"] == 4 and state["data"]["position"] == 8
    second = train(pipeline_config, resumed, progress=False)  # the run directory holds it: continues
    assert second.step == 6 and not second.interrupted
    reference, continued = weights(Path(cfg.out)), weights(Path(resumed.out))
    assert all(torch.equal(reference[k], continued[k]) for k in reference)
    assert scalars(Path(resumed.out), "loss/total") == scalars(Path(cfg.out), "loss/total")  # one run's log
    assert scalars(Path(resumed.out), "lr") == scalars(Path(cfg.out), "lr")


def test_a_training_frame_without_ground_truth_stops_the_run_naming_it(tmp_path):
    from ov_panoptic_ros.train.data import TrainingDataError

    pipeline_config, cfg = tiny_config(tmp_path, steps=2, data={"spec": "synthetic:1",
                                                                "options": {**TINY_DATA, "ground_truth": False}})
    with pytest.raises(TrainingDataError, match="training frame at position 0 .* has no ground truth"):
        train(pipeline_config, cfg, progress=False)
    assert not (Path(cfg.out) / "checkpoint.pt").exists()
