"""DDP: `torchrun --nproc_per_node=2` with gloo gives the gradients of one process on the combined batch."""
import subprocess
import sys
from pathlib import Path

import torch

from train_ddp_worker import step_gradients

HERE = Path(__file__).parent
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
CONFIG = """
preset: tiny
device: cpu
train:
  data: {spec: "synthetic:4", options: {frames: 2, num_points: 1500, image_size: [64, 48]}}
  batch_frames: BATCH
  out: unused
"""


def _config(tmp_path, batch: int) -> Path:
    path = tmp_path / f"batch{batch}.yaml"
    path.write_text(CONFIG.replace("BATCH", str(batch)))
    return path


def test_two_gloo_processes_give_the_gradients_of_one_process_on_both_frames(tmp_path):
    ddp = subprocess.run(TORCHRUN + [str(HERE / "train_ddp_worker.py"), str(_config(tmp_path, 1)),
                                     str(tmp_path / "ddp.pt")], capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    step_gradients(str(_config(tmp_path, 2)), str(tmp_path / "one.pt"))  # rank 0's frame, then rank 1's
    ddp_grads = torch.load(tmp_path / "ddp.pt", weights_only=True)["grads"]
    one_grads = torch.load(tmp_path / "one.pt", weights_only=True)["grads"]
    assert set(ddp_grads) == set(one_grads)
    missing = [n for n, g in one_grads.items() if g is None]
    assert not missing, f"parameters without a gradient: {missing} (DDP would need find_unused_parameters)"
    for name, g in one_grads.items():
        torch.testing.assert_close(ddp_grads[name], g, rtol=1e-5, atol=1e-7, msg=name)
    # The control: rank 0's frame alone is another gradient, so the equality above is the averaging's work.
    step_gradients(str(_config(tmp_path, 1)), str(tmp_path / "rank0_alone.pt"))
    alone = torch.load(tmp_path / "rank0_alone.pt", weights_only=True)["grads"]
    assert max(float((alone[n] - g).abs().max()) for n, g in one_grads.items()) > 1e-4


def test_torchrun_runs_the_cli_with_rank_0_alone_writing(tmp_path):
    config = _config(tmp_path, 1)
    out = tmp_path / "run"
    run = subprocess.run(TORCHRUN + ["--no-python", str(Path(sys.executable).parent / "ov-panoptic"), "train",
                                     "--config", str(config), "--out", str(out), "--steps", "2", "--no-progress"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("done at step 2/2") == 1  # rank 1 says nothing
    assert len(list((out / "tensorboard").glob("events.out.tfevents.*"))) == 1
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["step"] == 2 and state["data"]["position"] == 4  # two steps of one frame on each of two ranks
