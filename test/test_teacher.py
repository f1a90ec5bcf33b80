"""The teacher backend: the factory, dense features and their geometry, the checkpoint and its refusals."""
import hashlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ov_panoptic_ros.core.config import ClipConfig
from ov_panoptic_ros.core.geometry import PointProjection
from ov_panoptic_ros.core.vision.backend import DenseImageEncoder, TextTower, build_encoders
from ov_panoptic_ros.core.vision.minilm_text import NAME as MINILM, MiniLMTextTower, model_dir, weights_id
from ov_panoptic_ros.core.vision.open_clip_dense import DenseClipEncoder, sample_seen_point_features
from ov_panoptic_ros.core.vision.teacher import TeacherEncoder
from ov_panoptic_ros.core.vision.teacher_checkpoint import (FORMAT_VERSION, TeacherCheckpointError, read_teacher,
                                                            save_teacher)
from ov_panoptic_ros.core.vision.teacher_net import TeacherNet

CPU = torch.device("cpu")


def tiny_teacher(path, width=8, stride=8, image_size=48, seed=0, text_model=None):
    """An untrained teacher file: the plumbing needs no training."""
    torch.manual_seed(seed)
    net = TeacherNet(width, stride)
    text_model = text_model or {"name": MINILM, "model_id": weights_id(model_dir())}
    return save_teacher(path, net, image_size, text_model, {"seed": seed}), net


def load(path, **kwargs):
    return build_encoders(ClipConfig(model_name="teacher", checkpoint=str(path), **kwargs), CPU)


def image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    path, net = tiny_teacher(tmp_path_factory.mktemp("teacher") / "teacher.pt")
    encoder, text = load(path)
    return path, net, encoder, text


def test_factory_builds_both_backends(teacher):
    path, _, encoder, text = teacher
    assert isinstance(encoder, TeacherEncoder) and isinstance(text, MiniLMTextTower)
    assert isinstance(encoder, DenseImageEncoder) and isinstance(text, TextTower)
    assert encoder.embed_dim == text.embed_dim == 384
    assert encoder.model_id == f"teacher@{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}"
    clip_image, clip_text = build_encoders(ClipConfig(model_name="ov-tiny-vit"), CPU)
    assert isinstance(clip_image, DenseClipEncoder) and clip_text is clip_image  # one CLIP, both towers
    assert isinstance(clip_image, DenseImageEncoder) and isinstance(clip_text, TextTower)


def test_teacher_needs_a_checkpoint():
    with pytest.raises(ValueError, match="clip.checkpoint"):
        build_encoders(ClipConfig(model_name="teacher"), CPU)


def test_dense_features_shape_norm_and_cell_geometry(teacher):
    _, net, encoder, _ = teacher
    # 60x80 -> short side 48 -> 48x64 (6x8 cells); 40x100 -> 48x120 (6x15); batch padded to 6x15.
    feats = encoder.encode([image(60, 80), image(40, 100, 1)])
    assert feats.maps.shape == (2, 384, 6, 15) and feats.maps.dtype == torch.float32
    assert feats.maps.permute(0, 2, 3, 1).is_contiguous()  # channels-last, as sampling wants
    assert torch.allclose(feats.maps.norm(dim=1), torch.ones(2, 6, 15), atol=1e-5)
    assert torch.allclose(feats.pixel_to_cell, torch.tensor([[64 / 80 / 8, 48 / 60 / 8], [120 / 100 / 8, 48 / 40 / 8]]))
    # Alone (48x64 needs no padding), an image's maps are the network's output on it resized, unit per cell.
    resized = F.interpolate(torch.from_numpy(image(60, 80)).permute(2, 0, 1)[None].float() / 255, size=(48, 64),
                            mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    with torch.no_grad():
        direct = F.normalize(net.eval()(resized), dim=1)
    assert torch.allclose(encoder.encode([image(60, 80)]).maps, direct, atol=1e-5)
    # A pixel at a cell centre reads exactly that cell through the pipeline's lookup.
    uv = torch.tensor([[8 * 3 + 4, 8 * 2 + 4]]) / torch.tensor([64 / 80, 48 / 60]) - 0.5  # centre of cell (2, 3), image 0
    proj = PointProjection(torch.tensor([0]), torch.tensor([0]), uv.float(), torch.ones(1), 2, 1)
    sampled = sample_seen_point_features(feats, proj)
    assert torch.allclose(sampled.features[0], feats.maps[0, :, 2, 3], atol=1e-5)
    assert encoder.encode([]).maps.shape == (0, 384, 0, 0)


def test_image_size_comes_from_the_checkpoint_unless_configured(teacher):
    path, _, encoder, _ = teacher
    assert encoder.preprocess.short_side == 48
    larger, _ = load(path, image_size=96)
    assert larger.encode([image(60, 80)]).maps.shape == (1, 384, 12, 16)


def test_checkpoint_round_trip_gives_the_same_network(teacher, tmp_path):
    path, net, encoder, _ = teacher
    payload = read_teacher(path)
    assert payload["architecture"] == {"name": "fpn-cnn-v1", "width": 8, "stride": 8, "embed_dim": 384}
    assert payload["image_size"] == 48 and payload["text_model"]["name"] == MINILM
    assert all(torch.equal(v, payload["state_dict"][k]) for k, v in net.state_dict().items())
    other_path, _ = tiny_teacher(tmp_path / "other.pt", seed=1)
    other, _ = load(other_path)
    assert other.model_id != encoder.model_id  # other weights, other identity
    assert not torch.allclose(other.encode([image(48, 48)]).maps, encoder.encode([image(48, 48)]).maps)
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("stride", [4, 8])
def test_stride_sets_the_feature_grid(tmp_path, stride):
    path, _ = tiny_teacher(tmp_path / "t.pt", stride=stride, image_size=32)
    encoder, _ = load(path)
    assert encoder.encode([image(32, 64)]).maps.shape == (1, 384, 32 // stride, 64 // stride)


def _rewrite(path, **changes):
    payload = read_teacher(path)
    payload.update(changes)
    torch.save(payload, path)
    return path


def refusals(tmp_path):
    """name -> (a bad teacher file, what the error must say)."""
    good, _ = tiny_teacher(tmp_path / "good.pt")
    out = {}
    foreign = tmp_path / "foreign.pt"
    torch.save(TeacherNet(8).state_dict(), foreign)  # bare weights, no metadata
    out["foreign"] = (foreign, "is not a teacher checkpoint")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(good.read_bytes()[:1000])
    out["corrupt"] = (corrupt, "cannot be read")
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    out["text"] = (text, "cannot be read")
    out["version"] = (_rewrite(tiny_teacher(tmp_path / "v.pt")[0], format_version=FORMAT_VERSION + 1), "format version")
    arch = read_teacher(good)["architecture"]
    out["architecture"] = (_rewrite(tiny_teacher(tmp_path / "a.pt")[0], architecture={**arch, "name": "vit"}),
                           "architecture 'vit'")
    out["weights"] = (_rewrite(tiny_teacher(tmp_path / "w.pt")[0], architecture={**arch, "width": 16}),
                      "weights do not fit")
    out["text_id"] = (tiny_teacher(tmp_path / "id.pt", text_model={"name": MINILM, "model_id": f"{MINILM}@0000"})[0],
                      f"aligned to {MINILM}@0000, but the installed text model is {weights_id(model_dir())}")
    out["text_name"] = (tiny_teacher(tmp_path / "n.pt", text_model={"name": "clip-text", "model_id": "x"})[0],
                        "aligned to text model 'clip-text'")
    return out


def test_foreign_corrupt_and_mismatched_files_are_refused_with_the_file_named(tmp_path):
    for name, (path, reason) in refusals(tmp_path).items():
        with pytest.raises(TeacherCheckpointError) as err:
            load(path)
        message = str(err.value)
        assert str(path) in message and reason in message, (name, message)


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "none.pt")):
        load(tmp_path / "none.pt")
