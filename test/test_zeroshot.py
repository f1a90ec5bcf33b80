"""The CLIP-only baseline: per-point classification by text similarity plus Euclidean clustering of things."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ov_panoptic_ros.core.config import ZeroShotConfig
from ov_panoptic_ros.core.frame import UNLABELED, Vocabulary
from ov_panoptic_ros.core.pipeline import StageTimer
from ov_panoptic_ros.core.vision.features import PointFeatures
from ov_panoptic_ros.core.vision.text import ClassEmbeddings
from ov_panoptic_ros.core.zeroshot import ZeroShotSegmenter

D = 32
CLASSES = ("car", "truck", "road", "building")
STUFF = ("road", "building")


def class_embeddings(classes=CLASSES, stuff=STUFF, seed=0):
    gen = torch.Generator().manual_seed(seed)
    emb = F.normalize(torch.randn(len(classes), D, generator=gen), dim=1)
    vocab = Vocabulary(classes, stuff)
    return ClassEmbeddings(vocab, emb, torch.arange(len(classes)), torch.from_numpy(vocab.is_stuff), "test")


def features_for(labels, emb, noise=0.05, seed=1):
    """CLIP-like features: the true class's text embedding plus noise."""
    gen = torch.Generator().manual_seed(seed)
    f = emb.embeddings[torch.as_tensor(labels)] + noise * torch.randn(len(labels), D, generator=gen)
    return F.normalize(f, dim=1)


def compact(features, seen):
    """PointFeatures of the seen rows of (N, D) `features`, as sampling gives them."""
    index = seen.nonzero().squeeze(1)
    return PointFeatures(seen, index, features[index])


def blob(center, n, spread=0.4, seed=0):
    rng = np.random.default_rng(seed)
    return np.asarray(center, dtype=np.float32) + rng.uniform(-spread, spread, (n, 3)).astype(np.float32)


def run(points, labels, emb, seen=None, cfg=None):
    points = torch.as_tensor(np.asarray(points, dtype=np.float32))
    seen = torch.ones(len(points), dtype=torch.bool) if seen is None else torch.as_tensor(seen)
    timer = StageTimer(torch.device("cpu"))
    result = ZeroShotSegmenter(cfg or ZeroShotConfig())(points, compact(features_for(labels, emb), seen), emb, timer)
    return result, timer


def test_labels_follow_the_closest_text_embedding():
    emb = class_embeddings()
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 400)
    points = rng.uniform(-50, 50, (400, 3))  # spread out: things become singletons, so test stuff+things apart
    cfg = ZeroShotConfig(min_cluster_points=1)
    result, timer = run(points, truth, emb, cfg=cfg)
    assert result.labels.dtype == np.uint16 and result.scores.dtype == np.float32
    assert result.instance_ids.dtype == np.uint32
    np.testing.assert_array_equal(result.labels, truth)
    # The score is the softmax probability of the winning class at the configured temperature.
    f = features_for(truth, emb)
    prob = torch.softmax(emb.cosine(f) / cfg.temperature, dim=1).max(dim=1).values.numpy()
    np.testing.assert_allclose(result.scores, prob, rtol=1e-5)
    assert ((result.scores > 0) & (result.scores <= 1)).all()
    assert {"classify", "cluster"} <= set(timer.ms)
    assert result.vocabulary is emb.vocabulary


def test_two_cars_three_metres_apart_are_two_instances():
    emb = class_embeddings()
    car_a, car_b = blob([10, 0, 0], 60, seed=1), blob([13, 0, 0], 60, seed=2)  # 3 m apart, each 0.8 m wide
    result, _ = run(np.vstack([car_a, car_b]), [0] * 120, emb)
    ids = result.instance_ids
    assert len(set(ids[:60])) == 1 and len(set(ids[60:])) == 1
    assert ids[0] != ids[60] and sorted({int(ids[0]), int(ids[60])}) == [1, 2]
    assert [inst.instance_id for inst in result.instances] == [1, 2]
    inst = result.instances[0]
    assert inst.label == 0 and inst.num_points == 60
    assert inst.score == pytest.approx(float(result.scores[:60].mean()), rel=1e-6)
    np.testing.assert_allclose(inst.center[:2], [10, 0], atol=0.1)
    assert inst.size[0] <= 0.8 * np.sqrt(2) + 1e-6


def test_points_within_radius_chain_into_one_instance():
    emb = class_embeddings()
    chain = np.column_stack([np.arange(12) * 0.5, np.zeros(12), np.zeros(12)])  # 5.5 m long, 0.5 m steps
    sparse = np.column_stack([np.arange(6) * 0.7, np.full(6, 20.0), np.zeros(6)])  # steps beyond 0.6 m
    result, _ = run(np.vstack([chain, sparse]), [1] * 18, emb, cfg=ZeroShotConfig(cluster_radius_m=0.6,
                                                                                 min_cluster_points=3))
    assert (result.instance_ids[:12] == 1).all() and result.labels[0] == 1
    # Each sparse point is its own cluster of one: too small, so unlabeled with score 0.
    assert (result.instance_ids[12:] == 0).all() and (result.labels[12:] == UNLABELED).all()
    assert (result.scores[12:] == 0).all()
    assert len(result.instances) == 1 and result.instances[0].size[0] == pytest.approx(5.5)


def test_different_classes_never_merge():
    emb = class_embeddings()
    car, truck = blob([0, 0, 0], 30, seed=3), blob([0.5, 0, 0], 30, seed=4)  # overlapping in space
    result, _ = run(np.vstack([car, truck]), [0] * 30 + [1] * 30, emb)
    assert set(result.instance_ids[:30]) == {1} and set(result.instance_ids[30:]) == {2}
    assert [i.label for i in result.instances] == [0, 1]


def test_stuff_keeps_its_label_with_instance_zero_and_unseen_points_are_unlabeled_without_propagation():
    emb = class_embeddings()
    road = blob([0, 0, -1.5], 50, spread=3.0, seed=5)
    car = blob([5, 5, 0], 20, seed=6)
    points = np.vstack([road, car])
    labels = [2] * 50 + [0] * 20
    seen = np.ones(70, dtype=bool)
    seen[[3, 60]] = False
    result, _ = run(points, labels, emb, seen=seen, cfg=ZeroShotConfig(propagate_radius_m=0.0))
    assert (result.labels[:50][seen[:50]] == 2).all() and (result.instance_ids[:50] == 0).all()
    assert result.labels[3] == UNLABELED and result.scores[3] == 0 and result.instance_ids[3] == 0
    assert result.labels[60] == UNLABELED and result.instance_ids[60] == 0
    assert set(result.instance_ids[50:][seen[50:]]) == {1}
    assert result.instances[0].num_points == 19


def test_vocabulary_size_does_not_change_the_answer():
    small = class_embeddings(("car", "truck", "road"), ("road",))
    names = ["car", "truck", "road"] + [f"thing{i}" for i in range(27)]
    extra = F.normalize(torch.randn(27, D, generator=torch.Generator().manual_seed(9)), dim=1)
    vocab = Vocabulary(tuple(names), ("road",))
    large = ClassEmbeddings(vocab, torch.cat([small.embeddings, extra]), torch.arange(30),
                            torch.from_numpy(vocab.is_stuff), "test")
    points = np.vstack([blob([0, 0, 0], 20, seed=7), blob([6, 0, 0], 20, seed=8), blob([0, 0, -2], 40, 2.0, 9)])
    truth = [0] * 20 + [1] * 20 + [2] * 40
    seg = ZeroShotSegmenter(ZeroShotConfig())
    out = []
    for emb in (small, large):
        timer = StageTimer(torch.device("cpu"))
        out.append(seg(torch.from_numpy(points), compact(features_for(truth, small), torch.ones(80, dtype=torch.bool)),
                       emb, timer))
    np.testing.assert_array_equal(out[0].labels, truth)
    np.testing.assert_array_equal(out[0].labels, out[1].labels)
    np.testing.assert_array_equal(out[0].instance_ids, out[1].instance_ids)
    assert len(out[1].instances) == 2 and out[1].vocabulary.classes == tuple(names)


def test_no_seen_points_and_bad_config():
    emb = class_embeddings()
    result, _ = run(np.zeros((5, 3)), [0] * 5, emb, seen=np.zeros(5, dtype=bool))
    assert (result.labels == UNLABELED).all() and not result.instances
    with pytest.raises(ValueError, match="cluster_radius_m"):
        ZeroShotSegmenter(ZeroShotConfig(cluster_radius_m=0))
    with pytest.raises(ValueError, match="temperature"):
        ZeroShotSegmenter(ZeroShotConfig(temperature=0))
    seg, timer = ZeroShotSegmenter(ZeroShotConfig()), StageTimer(torch.device("cpu"))
    all_seen = torch.ones(5, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"features must be \(S, %d\) = \(5, %d\).*got \(4, %d\)" % (D, D, D)):
        seg(torch.zeros(5, 3), PointFeatures(all_seen, torch.arange(5), torch.zeros(4, D)), emb, timer)
    with pytest.raises(ValueError, match=r"seen must be an \(N,\) = \(5,\) bool tensor, got \(4,\)"):
        seg(torch.zeros(5, 3), compact(torch.zeros(4, D), torch.ones(4, dtype=torch.bool)), emb, timer)
    with pytest.raises(ValueError, match="seen marks 4 points but index lists 5"):
        seg(torch.zeros(5, 3), PointFeatures(torch.arange(5) > 0, torch.arange(5), torch.zeros(5, D)), emb, timer)
    with pytest.raises(ValueError, match="must be PointFeatures"):
        seg(torch.zeros(5, 3), torch.zeros(5, D), emb, timer)


def test_unseen_points_take_the_nearest_seen_label_within_the_radius():
    emb = class_embeddings()
    car = blob([0, 0, 0], 30, spread=0.5, seed=11)
    road = np.column_stack([np.linspace(3, 9, 30), np.zeros(30), np.full(30, -1.5)]).astype(np.float32)
    hidden_car = np.array([[0.9, 0.0, 0.0], [1.2, 0.3, 0.0]], np.float32)  # the car's far side, out of view
    hidden_road = np.array([[9.5, 0.0, -1.5]], np.float32)  # 0.5 m past the last seen road point
    far = np.array([[30.0, 30.0, 0.0]], np.float32)  # nothing seen near it
    points = np.vstack([car, road, hidden_car, hidden_road, far])
    labels = [0] * 30 + [2] * 30 + [3, 3, 3, 3]  # what CLIP would say if it saw them: never used
    seen = np.array([True] * 60 + [False] * 4)
    cfg = ZeroShotConfig(propagate_radius_m=1.0)
    result, timer = run(points, labels, emb, seen=seen, cfg=cfg)
    assert result.labels[60:63].tolist() == [0, 0, 2] and result.labels[63] == UNLABELED
    assert result.scores[63] == 0 and result.instance_ids[63] == 0
    # the hidden car points join the car's instance, the road point stays stuff
    assert set(result.instance_ids[:30]) == {1} and result.instance_ids[60:62].tolist() == [1, 1]
    assert result.instance_ids[62] == 0 and result.instances[0].num_points == 32
    # the score falls with the distance travelled: 0.5 m of 1 m halves the nearest seen point's score
    nearest_road = result.scores[59]
    assert result.scores[62] == pytest.approx(nearest_road * 0.5, rel=1e-5)
    assert (result.scores[60:62] < result.scores[:30].max()).all()
    assert "propagate" in timer.ms
    off, _ = run(points, labels, emb, seen=seen, cfg=ZeroShotConfig(propagate_radius_m=0.0))
    assert (off.labels[60:] == UNLABELED).all()
    with pytest.raises(ValueError, match="propagate_radius_m"):
        ZeroShotSegmenter(ZeroShotConfig(propagate_radius_m=-1.0))


def scipy_components(xyz, labels, radius):
    """The radius graph's components as scipy numbers them (the reference for the C kernel)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    xyz = xyz.astype(np.float64)
    gap = 4.0 * (float(np.ptp(xyz, axis=0).max()) + radius) + 1.0  # the class as a far-apart 4th coordinate
    pairs = cKDTree(np.column_stack([xyz, labels * gap])).query_pairs(radius, output_type="ndarray")
    n = len(xyz)
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


@pytest.mark.parametrize("seed, radius", [(0, 0.6), (1, 0.3), (2, 1.0), (3, 0.05), (4, 2.5)])
def testradius_components_of_match_the_full_radius_graph(seed, radius):
    from ov_panoptic_ros.core.zeroshot import radius_components_of

    rng = np.random.default_rng(seed)
    # surfaces and blobs at LiDAR densities, sparse clutter, duplicates and negative coordinates
    plane = np.column_stack([rng.uniform(-20, 20, 6000), rng.uniform(-20, 20, 6000), rng.normal(-1.7, 0.02, 6000)])
    blobs = np.vstack([rng.normal(c, 0.5, (400, 3)) for c in rng.uniform(-15, 15, (8, 3))])
    clutter = rng.uniform(-30, 30, (600, 3))
    xyz = np.vstack([plane, blobs, clutter, plane[:50]]).astype(np.float32)
    labels = rng.integers(0, 3, len(xyz)).astype(np.uint16)
    got = radius_components_of(xyz, labels, radius)
    expected = scipy_components(xyz, labels, radius)
    assert got.dtype == np.int64 and np.array_equal(got, expected)
    assert 1 < got.max() + 1 < len(xyz)  # neither one blob nor all singletons


def testradius_components_of_edge_cases():
    from ov_panoptic_ros.core import _clustering
    from ov_panoptic_ros.core.zeroshot import radius_components_of

    exact = np.array([[0, 0, 0], [0.5, 0, 0], [1.0, 0, 0], [1.0, 0.5000001, 0], [1.0, 0.5000001, 0]], np.float32)
    # 0.5 apart links (distance <= radius), just over does not; identical points always do
    assert radius_components_of(exact, np.zeros(5, np.uint16), 0.5).tolist() == [0, 0, 0, 1, 1]
    assert radius_components_of(exact, np.array([0, 1, 0, 0, 0], np.uint16), 0.5).tolist() == [0, 1, 2, 3, 3]
    assert radius_components_of(np.zeros((0, 3), np.float32), np.zeros(0, np.uint16), 0.5).tolist() == []
    assert radius_components_of(np.ones((1, 3), np.float32), np.zeros(1, np.uint16), 0.5).tolist() == [0]
    far = np.array([[0, 0, 0], [1e12, 0, 0]], np.float32)
    with pytest.raises(ValueError, match="point 1 .*too far"):
        radius_components_of(far, np.zeros(2, np.uint16), 0.5)
    with pytest.raises(ValueError, match="not finite"):
        radius_components_of(np.array([[np.nan, 0, 0]], np.float32), np.zeros(1, np.uint16), 0.5)
    with pytest.raises(ValueError, match="radius"):
        radius_components_of(exact, np.zeros(5, np.uint16), 0.0)
    with pytest.raises(ValueError, match="float32"):
        _clustering.radius_components(exact.astype(np.float64), np.zeros(5, np.uint16), 0.5, np.empty(5, np.int64))
    with pytest.raises(ValueError, match="int64"):
        _clustering.radius_components(exact, np.zeros(5, np.uint16), 0.5, np.empty(4, np.int64))
