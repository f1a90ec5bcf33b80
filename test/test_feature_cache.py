"""The CLIP feature cache (`ov-panoptic extract-features`, `train.data.feature_cache`): extraction, resume after
a deleted, damaged or half-written frame, the key that refuses another CLIP or source, sharding under torchrun,
and training from it with the losses of training without it and no image encoder call."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ov_panoptic_ros.core.config import load_config
from ov_panoptic_ros.core.frame import Frame
from ov_panoptic_ros.train import feature_store
from ov_panoptic_ros.train.config import SourceConfig, load_train_config
from ov_panoptic_ros.train.feature_cache import FeatureCache
from ov_panoptic_ros.train.feature_extract import extract_features
from ov_panoptic_ros.train.feature_store import FeatureCacheError, frame_path, read_frame

TINY = {"frames": 4, "num_points": 2000, "image_size": [64, 48]}
SOURCE = SourceConfig("synthetic:1", TINY)
CLI = str(Path(sys.executable).parent / "ov-panoptic")


def _extract(root: Path, source: SourceConfig = SOURCE, config=None, **kwargs):
    return extract_features(config or load_config("tiny"), source, root, progress=False, **kwargs)


def _files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "frames").iterdir())}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("features") / "cache"
    result = _extract(root)
    assert result.written == [0, 1, 2, 3] and result.kept == 0 and result.frames == 4
    index = result.index
    assert index["frames"] == 4 and [e[0] for e in index["entries"]] == [0, 1, 2, 3]
    assert index["bytes"] == sum(p.stat().st_size for p in (root / "frames").iterdir()) == result.shard_bytes
    assert 0 < index["seen_share"] < 1 and index["bytes_per_frame"]["min"] <= index["bytes_per_frame"]["max"]
    return root


def test_frames_hold_the_pipelines_point_features_in_float16(cache):
    from ov_panoptic_ros.core.pipeline import PanopticPipeline
    from ov_panoptic_ros.data.factory import open_source

    pipeline = PanopticPipeline(load_config("tiny"))
    frame = next(iter(open_source(SOURCE.spec, **SOURCE.options)))[0]
    _, expected = pipeline.point_features(frame)
    head, index, features = read_frame(frame_path(cache, 0))
    assert (head["frame"], head["points"], head["stamp_ns"]) == (0, 2000, frame.stamp_ns)
    assert features.dtype == np.float16 and features.shape == (head["seen"], 64)
    np.testing.assert_array_equal(index, expected.index.numpy())
    np.testing.assert_allclose(features.astype(np.float32), expected.features.numpy(), rtol=0, atol=2e-3)
    key = json.loads((cache / "cache.json").read_text())["key"]
    cached = FeatureCache(cache, key).point_features(0, frame, torch.device("cpu"))
    assert torch.equal(cached.seen, expected.seen) and torch.equal(cached.index, expected.index)
    torch.testing.assert_close(cached.features, expected.features, rtol=0, atol=2e-3)
    with pytest.raises(FeatureCacheError, match="frame 0 of the source has 5 points .* has 2000"):
        FeatureCache(cache, key).point_features(0, Frame(np.zeros((5, 3)), stamp_ns=frame.stamp_ns), "cpu")


def test_a_rerun_redoes_only_deleted_damaged_or_half_written_frames(cache, tmp_path):
    root = tmp_path / "cache"
    shutil.copytree(cache, root)
    before = _files(root)
    frame_path(root, 1).unlink()
    damaged = frame_path(root, 2)
    damaged.write_bytes(damaged.read_bytes()[:-100])  # truncated: shorter than its header says
    # What a process killed while writing frame 3 leaves: a partial temporary, no frame, no index.
    partial = frame_path(root, 3).with_name(".0000003.feat.99999.tmp")
    partial.write_bytes(frame_path(root, 3).read_bytes()[:50])
    frame_path(root, 3).unlink()
    (root / "index.json").unlink()
    with pytest.raises(FeatureCacheError, match="incomplete"):
        FeatureCache(root, json.loads((root / "cache.json").read_text())["key"])
    result = _extract(root)
    assert result.written == [1, 2, 3] and result.kept == 1 and result.index["frames"] == 4
    assert _files(root) == before and not partial.exists()  # the same bytes again, the temporary gone

    # A flipped payload byte keeps the length: found by --verify (and by training, which checks the CRC-32).
    data = bytearray(frame_path(root, 0).read_bytes())
    data[-3] ^= 0xFF
    frame_path(root, 0).write_bytes(bytes(data))
    assert _extract(root).written == []
    with pytest.raises(FeatureCacheError, match="corrupt"):
        read_frame(frame_path(root, 0))
    assert _extract(root, verify=True).written == [0] and _files(root) == before


def test_an_interrupted_write_leaves_neither_the_file_nor_its_temporary(tmp_path, monkeypatch):
    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(feature_store.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        feature_store.atomic_write(tmp_path / "0000000.feat", [b"header\n", b"payload"])
    assert list(tmp_path.iterdir()) == []


def test_a_cache_of_another_clip_or_source_is_refused_naming_both(cache, tmp_path):
    root = tmp_path / "cache"
    shutil.copytree(cache, root)
    listing = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    other_clip = load_config("tiny", overrides={"clip": {"image_size": 64}})
    with pytest.raises(FeatureCacheError, match=r"encoder.image_size: 96 in the cache, 64 in this config"):
        _extract(root, config=other_clip)
    other_source = SourceConfig("synthetic:1", {**TINY, "num_points": 1500})
    with pytest.raises(FeatureCacheError, match=r"source.options.num_points: 2000 in the cache, 1500 in this config"):
        _extract(root, source=other_source)
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == listing  # nothing written

    # Training refuses it too, before any step.
    from ov_panoptic_ros.train.loop import train

    pipeline_config, cfg = _train_config(tmp_path, "refused", root, num_points=1500)
    with pytest.raises(FeatureCacheError, match="num_points: 2000 in the cache, 1500 in this config"):
        train(pipeline_config, cfg, progress=False)
    assert not (tmp_path / "refused" / "checkpoint.pt").exists()


def test_the_command_takes_source_and_directory_from_a_training_config(cache, tmp_path, capsys):
    import importlib

    from ov_panoptic_ros.cli.app import run

    importlib.import_module("ov_panoptic_ros.cli.features")  # registers the command

    _, cfg = _train_config(tmp_path, "run", tmp_path / "cache")
    shutil.copytree(cache, tmp_path / "cache")
    frame_path(tmp_path / "cache", 3).unlink()
    assert run(["extract-features", "--config", str(tmp_path / "run.yaml"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "4 frames (1 extracted, 3 kept)" in out and f"feature cache {tmp_path / 'cache'}: 4 frames" in out
    assert " kB a frame" in out and _files(tmp_path / "cache") == _files(cache)
    assert run(["extract-features", "--config", str(tmp_path / "run.yaml"), "--option", "frames=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: feature cache") and "source.options.frames: 4 in the cache, 3 in this config" \
        in err and "\n" not in err


def _train_config(tmp_path: Path, name: str, feature_cache: Path | None, **options):
    data = {"spec": SOURCE.spec, "options": {**TINY, **options}}
    if feature_cache is not None:
        data["feature_cache"] = str(feature_cache)
    doc = {"preset": "tiny", "device": "cpu",
           "train": {"data": data, "steps": 3, "cache_frames": 4, "optimizer": {"lr": 0.003}, "seed": 5,
                     "checkpoint_every": 100, "log_every": 1, "out": str(tmp_path / name)}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_train_config(path)


def _train_counting_image_encodings(pipeline_config, cfg) -> tuple[list[float], int]:
    """The run's total losses and how many times an image went through a CLIP patch embedding (the first
    layer of the image tower; the 3D network has no 2D convolution), counted by a global forward hook."""
    import csv

    from ov_panoptic_ros.train.loop import train

    calls = [0]

    def count(module, args, output):
        if isinstance(module, torch.nn.Conv2d) and module.in_channels == 3:
            calls[0] += 1

    handle = torch.nn.modules.module.register_module_forward_hook(count)
    try:
        train(pipeline_config, cfg, progress=False)
    finally:
        handle.remove()
    rows = csv.DictReader(open(Path(cfg.out) / "scalars.csv"))
    return [float(r["value"]) for r in rows if r["tag"] == "loss/total"], calls[0]


def test_training_from_the_cache_gives_the_same_losses_without_running_the_image_encoder(cache, tmp_path):
    plain_losses, plain_calls = _train_counting_image_encodings(*_train_config(tmp_path, "plain", None))
    cached_losses, cached_calls = _train_counting_image_encodings(*_train_config(tmp_path, "cached", cache))
    assert plain_calls >= 3 and cached_calls == 0  # the control counts one call per frame prepared
    assert len(cached_losses) == len(plain_losses) == 3
    np.testing.assert_allclose(cached_losses, plain_losses, rtol=1e-2)
    assert cached_losses != plain_losses  # float16 features: close, not equal
    run = json.loads((tmp_path / "cached" / "run.json").read_text())
    assert run["identity"]["train"]["data"]["feature_cache"] == "float16"  # another run than the plain one
    assert "feature_cache" not in json.loads((tmp_path / "plain" / "run.json").read_text())["identity"]["train"]["data"]


def test_two_torchrun_processes_write_the_files_of_one_and_the_last_merges_the_index(cache, tmp_path):
    root = tmp_path / "sharded"
    options = [arg for k, v in TINY.items() for arg in ("--option", f"{k}={json.dumps(v)}")]
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "--no-python", CLI, "extract-features", "--config", "tiny", "--source", SOURCE.spec,
                          *options, "--out", str(root), "--no-progress"],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("rank 0/2: 2 frames (2 extracted") == 1 and run.stdout.count("rank 1/2: 2 frames") == 1
    assert "feature cache" in run.stdout  # the rank that finished last merged (both may, with the same bytes)
    assert _files(root) == _files(cache)
    one, two = (json.loads((r / "index.json").read_text()) for r in (cache, root))
    assert {**one, "world": 2} == two
    assert sorted(p.name for p in (root / "shards").iterdir()) == ["shard-0-of-2.json", "shard-1-of-2.json"]

    # In-process, one rank after the other: the first leaves the index to the second.
    root = tmp_path / "in_process"
    assert _extract(root, rank=1, world=2).index is None and not (root / "index.json").exists()
    assert _extract(root, rank=0, world=2).index["frames"] == 4 and _files(root) == _files(cache)
