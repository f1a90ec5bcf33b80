"""Bad input to the trainer: each a clear error naming the key or file, with nothing written over."""
import dataclasses
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from ov_panoptic_ros.core.config import ConfigError
from ov_panoptic_ros.core.model.checkpoint import CheckpointError
from ov_panoptic_ros.core.model.losses import PanopticLoss
from ov_panoptic_ros.train.checkpoint import RunDirError
from ov_panoptic_ros.train.loop import train
from ov_panoptic_ros.train.trainer import NonFiniteLossError
from test_train import TINY_DATA, tiny_config

CLI = [str(Path(sys.executable).parent / "ov-panoptic")]


def snapshot(out: Path) -> dict:
    return {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished two-step run, copied by the tests that tamper with it."""
    tmp = tmp_path_factory.mktemp("finished")
    pipeline_config, cfg = tiny_config(tmp, steps=2)
    train(pipeline_config, cfg, progress=False)
    return tmp, pipeline_config, cfg


def _copy(finished, tmp_path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(finished[2].out, out)
    return out


@pytest.mark.parametrize("pipeline, message", [
    ({"vocabulary": {"novel": ["spaceship"]}}, r"vocabulary.novel: class\(es\) \['spaceship'\] are not in the"),
    ({"vocabulary": {"novel": ["car", "truck", "bus", "pedestrian", "road", "sidewalk", "building", "vegetation"]}},
     "every class of .* is novel: nothing to train on"),
    ({"vocabulary": {"classes": ["car", "truck", "bus", "pedestrian", "road", "building", "vegetation"],
                     "stuff": ["road", "building", "vegetation"]}},
     r"train.data.spec 'synthetic:1': ground-truth class\(es\) \['sidewalk'\] map onto no class of vocabulary"),
])
def test_vocabulary_errors_name_the_key_and_write_nothing(tmp_path, pipeline, message):
    pipeline_config, cfg = tiny_config(tmp_path, pipeline=pipeline, steps=2)
    with pytest.raises(ConfigError, match=message):
        train(pipeline_config, cfg, progress=False)
    assert not Path(cfg.out).exists()


def test_source_options_that_do_not_fit_name_the_key(tmp_path):
    pipeline_config, cfg = tiny_config(tmp_path, data={"spec": "synthetic:1", "options": {"framez": 2}})
    with pytest.raises(ConfigError, match=r"train.data.options \{'framez': 2\} do not fit the source 'synthetic:1'"):
        train(pipeline_config, cfg, progress=False)


def test_an_output_directory_of_another_run_is_refused_naming_both_values(tmp_path, finished):
    out = _copy(finished, tmp_path)
    before = snapshot(out)
    pipeline_config, cfg = tiny_config(tmp_path, steps=2, optimizer={"lr": 0.001})
    with pytest.raises(RunDirError, match=rf"output directory {out} holds another run .*train.optimizer.lr: 0.003 in "
                                          r"that run, 0.001 in this config; choose another --out"):
        train(pipeline_config, dataclasses.replace(cfg, out=str(out)), progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    _, cfg = tiny_config(tmp_path, steps=2, out=str(tmp_path / "other"))
    with pytest.raises(RunDirError, match="is not empty and holds no run.json"):
        train(pipeline_config, cfg, progress=False)
    assert snapshot(out) == before


@pytest.mark.parametrize("tamper, error, message", [
    ("truncate", CheckpointError, r"training checkpoint .*checkpoint.pt cannot be read .*delete it to start over"),
    ("clip", CheckpointError, r"was trained with CLIP ViT-B-16@0123456789abcdef, but the configured CLIP is "
                              r"ov-tiny-vit@random"),
    ("config", CheckpointError, r"is of another config .*train.seed: 7 in the checkpoint, 0 in this config"),
])
def test_a_bad_resume_checkpoint_is_refused_and_kept(tmp_path, finished, tamper, error, message):
    out = _copy(finished, tmp_path)
    state_file = out / "checkpoint.pt"
    if tamper == "truncate":
        state_file.write_bytes(state_file.read_bytes()[:1000])
    else:
        state = torch.load(state_file, weights_only=True)
        if tamper == "clip":
            state["clip_model_id"] = "ViT-B-16@0123456789abcdef"
        else:
            state["identity"]["train"]["seed"], state["config_hash"] = 7, "0000000000000000"
        torch.save(state, state_file)
    before = snapshot(out)
    pipeline_config, cfg = finished[1], finished[2]
    with pytest.raises(error, match=message):
        train(pipeline_config, dataclasses.replace(cfg, out=str(out)), progress=False)
    assert snapshot(out) == before


def test_resume_without_a_checkpoint_is_an_error(tmp_path):
    pipeline_config, cfg = tiny_config(tmp_path, steps=2)
    with pytest.raises(RunDirError, match="--resume: .* holds no checkpoint of this run"):
        train(pipeline_config, cfg, resume=True, progress=False)
    assert not Path(cfg.out).exists()


def test_a_nan_loss_stops_the_run_naming_step_and_term_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real = PanopticLoss.__call__
    calls = []

    def poisoned(self, outputs, targets):
        losses = real(self, outputs, targets)
        calls.append(1)
        if len(calls) == 3:  # the third step's frame
            losses["mask"] = losses["mask"] * float("nan")
            losses["total"] = losses["total"] + losses["mask"]
        return losses

    monkeypatch.setattr(PanopticLoss, "__call__", poisoned)
    pipeline_config, cfg = tiny_config(tmp_path, steps=5, checkpoint_every=2)
    with pytest.raises(NonFiniteLossError, match=r"training stopped at step 3: loss term 'mask' is nan .*checkpoint.pt "
                                                 r"\(step 2\) is the last good checkpoint"):
        train(pipeline_config, cfg, progress=False)
    assert torch.load(Path(cfg.out) / "checkpoint.pt", weights_only=True)["step"] == 2


# ------------------------------------------------------------------------------------------------ CLI
def _write_config(tmp_path, **train_keys) -> Path:
    doc = {"preset": "tiny", "device": "cpu",
           "train": {"data": {"spec": "synthetic:1", "options": TINY_DATA}, "log_every": 1, **train_keys}}
    path = tmp_path / "cli.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_cli_errors_are_one_line(tmp_path):
    bad = _write_config(tmp_path, stepz=3)
    run = subprocess.run(CLI + ["train", "--config", str(bad), "--out", str(tmp_path / "o")], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: training config {bad}: train: unknown key(s) ['stepz']")


def test_cli_ctrl_c_saves_and_exits_130(tmp_path):
    config = _write_config(tmp_path, steps=10_000)
    out = tmp_path / "run"
    proc = subprocess.Popen(CLI + ["train", "--config", str(config), "--out", str(out), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not ((out / "scalars.csv").exists() and len((out / "scalars.csv").read_text().splitlines()) > 1):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    step = torch.load(out / "checkpoint.pt", weights_only=True)["step"]
    assert step >= 1 and f"interrupted, saved at step {step}/10000" in stdout
