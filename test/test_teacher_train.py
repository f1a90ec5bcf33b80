"""Training the teacher: it learns the classes of toy street images, through the pipeline's own lookup; seeded
determinism; the data contract; augmentation keeps image and labels aligned; class-balanced pixel sampling."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import maximum_filter, minimum_filter
from teacher_toy import pixel_labels, toy_samples, toy_scene

from ov_panoptic_ros.core.config import ClipConfig, ProjectionConfig
from ov_panoptic_ros.core.frame import Vocabulary
from ov_panoptic_ros.core.geometry import PointProjection, project_points
from ov_panoptic_ros.core.vision.backend import build_encoders
from ov_panoptic_ros.core.vision.features import DenseFeatures
from ov_panoptic_ros.core.vision.open_clip_dense import sample_seen_point_features
from ov_panoptic_ros.core.vision.teacher_checkpoint import read_teacher
from ov_panoptic_ros.core.vision.text import TextEncoder
from ov_panoptic_ros.data.synthetic import CLASSES, random_class_embeddings, scene_vocabulary
from ov_panoptic_ros.train.teacher import TeacherTrainConfig, pixel_cosine, sample_pixels, train_teacher
from ov_panoptic_ros.train.teacher_data import Sample, augment, shuffled
from ov_panoptic_ros.train.teacher_eval import evaluate_dense

# Tiny on purpose: 10-20 s of training on one shared core. Images 96x72, short side 72, 18x24 cells (at stride 8,
# 9x12 cells, the 59k-parameter net smeared trees over the buildings behind them on some seeds).
TINY = TeacherTrainConfig(image_size=72, crop=64, stride=4, width=8, epochs=60, batch_size=8, lr=1e-2,
                          pixels_per_image=256)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    untrained = train_teacher(toy_samples([0]), out / "untrained.pt", TeacherTrainConfig(**{**vars(TINY), "lr": 0.0,
                                                                                             "epochs": 1}), log=str)
    history = train_teacher(toy_samples(range(6)), out / "teacher.pt", TINY, log=str)
    assert untrained and len(history) == TINY.epochs
    return out / "teacher.pt", out / "untrained.pt", history


def interior_point_accuracy(path, seed):
    """Per class, the share of held-out LiDAR points named right, among points whose 9x9 pixel neighbourhood
    is all their own class: the pipeline's projection, encoder, lookup and class scoring."""
    encoder, tower = build_encoders(ClipConfig(model_name="teacher", checkpoint=str(path)), torch.device("cpu"))
    emb = TextEncoder(tower).embed(Vocabulary(tuple(CLASSES), templates=TINY.templates))
    scene = toy_scene(seed)
    proj = project_points(torch.from_numpy(scene.frame.points), scene.frame.cameras, ProjectionConfig())
    sampled = sample_seen_point_features(encoder.encode(scene.frame.images), proj)
    predicted = dict(zip(sampled.index.tolist(), emb.cosine(sampled.features).argmax(dim=1).tolist()))
    hits: dict[int, list[bool]] = {}
    for cam_index, cam in enumerate(scene.frame.cameras):
        labels = pixel_labels(cam, scene.boxes)
        uniform = minimum_filter(labels, 9, mode="nearest") == maximum_filter(labels, 9, mode="nearest")
        pairs = proj.camera == cam_index
        for point, (u, v) in zip(proj.point[pairs].tolist(), proj.uv[pairs].round().long().tolist()):
            k = int(scene.gt_labels[point])
            if uniform[v, u] and labels[v, u] == k:
                hits.setdefault(k, []).append(predicted[point] == k)
    return {CLASSES[k]: float(np.mean(h)) for k, h in hits.items() if len(h) >= 5}


@pytest.mark.slow
def test_a_point_in_a_region_of_class_k_is_named_k_after_a_short_training(trained):
    path, untrained, history = trained
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    for seed in (100, 101):  # streets never trained on
        accuracy = interior_point_accuracy(path, seed)
        assert len(accuracy) >= 3 and min(accuracy.values()) >= 0.6 and np.mean(list(accuracy.values())) >= 0.85, \
            accuracy
    assert np.mean(list(interior_point_accuracy(untrained, 100).values())) < 0.5


@pytest.mark.slow
def test_held_out_pixels_through_the_pipeline_lookup(trained):
    path, untrained, _ = trained
    held_out = toy_samples([100, 101])
    scores = {}
    for name, p in (("trained", path), ("untrained", untrained)):
        encoder, tower = build_encoders(ClipConfig(model_name="teacher", checkpoint=str(p)), torch.device("cpu"))
        scores[name] = evaluate_dense(encoder, TextEncoder(tower), held_out, TINY.templates)
    assert scores["trained"]["pixel_accuracy"] >= 0.75 and scores["trained"]["iou"]["driveable_surface"] >= 0.8
    assert scores["untrained"]["miou"] < scores["trained"]["miou"] - 0.2


@pytest.mark.slow
def test_checkpoint_records_how_it_was_trained(trained):
    payload = read_teacher(trained[0])
    assert payload["image_size"] == 72 and payload["architecture"]["width"] == 8
    config = payload["train_config"]
    assert config["epochs_done"] == TINY.epochs and config["seed"] == 0 and tuple(config["templates"]) == TINY.templates


def test_training_is_deterministic_per_seed(tmp_path):
    data = toy_samples([3])
    cfg = TeacherTrainConfig(**{**vars(TINY), "epochs": 2, "batch_size": 1})
    runs = [train_teacher(data, tmp_path / f"{i}.pt", cfg, log=str) for i in range(2)]
    train_teacher(data, tmp_path / "other.pt", TeacherTrainConfig(**{**vars(cfg), "seed": 1}), log=str)
    weights = [read_teacher(tmp_path / f"{name}.pt")["state_dict"] for name in ("0", "1", "other")]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert [r["loss"] for r in runs[0]] == [r["loss"] for r in runs[1]]
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


def test_data_errors_are_named(tmp_path):
    data = toy_samples([3])
    with pytest.raises(ValueError, match="re-iterable"):
        train_teacher(iter(data), tmp_path / "t.pt", TINY, log=str)
    bad = [data[0], (data[1][0], data[1][1] + 8, data[1][2])]  # labels beyond the class list
    with pytest.raises(ValueError, match="teacher sample 1: labels reach 15 but there are 8 class names"):
        train_teacher(bad, tmp_path / "t.pt", TINY, log=str)
    sky = [(data[0][0], np.full(data[0][1].shape, -1), data[0][2])]
    with pytest.raises(ValueError, match="no labelled pixel in epoch 1"):
        train_teacher(sky, tmp_path / "t.pt", TINY, log=str)
    assert not (tmp_path / "t.pt").exists()


def test_shuffle_buffer_is_a_seeded_permutation():
    order = list(shuffled(range(100), 16, np.random.default_rng(0)))
    assert sorted(order) == list(range(100)) and order != list(range(100))
    assert order == list(shuffled(range(100), 16, np.random.default_rng(0)))
    assert list(shuffled(range(10), 1, np.random.default_rng(0))) == list(range(10))


def test_augmentation_keeps_image_and_labels_aligned():
    """Left third red (class 0), the rest blue (class 1), a sky row (-1) on top: after any scale, crop and flip
    every labelled pixel keeps its colour, except within a pixel of the resampled edge."""
    rgb = np.zeros((60, 90, 3), np.uint8)
    labels = np.ones((60, 90), np.int64)
    rgb[:, :30, 0], rgb[:, 30:, 2], labels[:, :30] = 220, 220, 0
    labels[:6] = -1
    rng = np.random.default_rng(0)
    for _ in range(20):
        x, y = augment(Sample(rgb, labels, ("a", "b")), 48, 32, (0.75, 1.5), 0.2, rng)
        assert x.shape == (3, 32, 32) and y.shape == (32, 32) and 0 <= x.min() and x.max() <= 1
        red = x[0] > x[2]
        edge = torch.from_numpy(maximum_filter(y.numpy(), 3) != minimum_filter(y.numpy(), 3))
        inside = ~edge & (y >= 0)
        assert torch.equal(red[inside], (y == 0)[inside])


def test_pixel_sampling_balances_classes():
    labels = torch.zeros(100, 100, dtype=torch.long)
    labels[:10] = 1  # 10 % of the pixels
    labels[:, :5] = -1
    gen = torch.Generator().manual_seed(0)
    _, uniform = sample_pixels(labels, 2, 200, 0.0, gen)
    uv, balanced = sample_pixels(labels, 2, 200, 1.0, gen)  # few draws: without replacement barely depletes
    assert 0.03 < float((uniform == 1).float().mean()) < 0.18
    assert 0.38 < float((balanced == 1).float().mean()) < 0.62
    assert torch.equal(labels[uv[:, 1].long(), uv[:, 0].long()], balanced)  # (u, v) = (column, row)
    assert bool((uv[:, 0] >= 5).all())  # never an ignored pixel


def test_training_reads_features_exactly_as_the_pipeline_reads_them():
    """The loss's pixel lookup = sample_seen_point_features on the encoder's unit maps, at any pixel, edges included."""
    torch.manual_seed(0)
    fmap = torch.randn(16, 8, 8) * torch.rand(1, 8, 8) * 5  # cells of very different norms
    emb = random_class_embeddings(scene_vocabulary(), 16)
    uv = torch.cat([torch.rand(200, 2) * 32 - 0.5, torch.tensor([[-0.5, -0.5], [31.4, 0.0], [13.5, 31.49]])])
    stride = 4  # a 32x32 crop, 8x8 cells
    maps = F.normalize(fmap, dim=0)[None]  # what the encoder hands the pipeline
    proj = PointProjection(torch.arange(len(uv)), torch.zeros(len(uv), dtype=torch.long), uv, torch.ones(len(uv)),
                           1, len(uv))
    sampled = sample_seen_point_features(DenseFeatures(maps, torch.tensor([[1 / stride, 1 / stride]])), proj)
    assert torch.allclose(pixel_cosine(fmap, uv, 32, emb), emb.cosine(sampled.features), atol=1e-5)
