"""Panoptic metrics: ov_panoptic_ros.eval.metrics checked against nuscenes-devkit 1.2.0 as an oracle.

How the oracle runs. nuscenes-devkit 1.2.0 requires numpy<2 (and pulls OpenCV, Shapely,
scikit-learn, ...), while the project venv has numpy 2, and its panoptic module cannot even be
imported without those dependencies (``nuscenes/__init__`` loads the whole SDK). So the devkit lives
in a separate test-only venv, ``.venv-oracle``, built from the pinned ``requirements-oracle.txt`` by
``make oracle-venv`` (mk/oracle.mk; ``make test`` depends on it, so CI starting from nothing gets
it). The tests call it as a subprocess through ``ov_panoptic_ros/eval/devkit_oracle.py``: inputs go
in an .npz, the devkit's own ``PanopticEval.addBatch`` / ``getPQ`` / ``getSemIoU`` run unchanged,
and the numbers come back as JSON (exact floats). All oracle cases run in one subprocess per
fixture. Before the devkit sees a frame, stuff instance ids are set to 0 and UNLABELED predictions
become the ignore class: that is how nuScenes / SemanticKITTI label files encode them, not a change
to the devkit's algorithm. Set OV_PANOPTIC_ORACLE_PYTHON to use another oracle interpreter.

If the oracle venv is missing, the oracle tests fail (they do not skip) with the command to run.
Everything not covered by the devkit (group means over base/novel x thing/stuff, the label
mapping, streaming/merge, input errors, the stuff / UNLABELED rules themselves) has direct tests.
"""
from __future__ import annotations

import functools
import json
import re
import warnings

import numpy as np
import pytest

from ov_panoptic_ros.bench.metrics import synthetic_frame
from ov_panoptic_ros.core.classes import GROUPS, ClassInfo, nuscenes_classes, semantickitti_classes
from ov_panoptic_ros.core.frame import UNLABELED
from ov_panoptic_ros.eval.devkit_oracle import OracleCase, OracleUnavailable, run_devkit
from ov_panoptic_ros.eval.metrics import MAX_INSTANCE_ID, LabelMapping, PanopticEval

TOL = 1e-9
NUSC = nuscenes_classes()
KITTI = semantickitti_classes()
# A small set-up with every kind of class: 0 ignored, 1 thing/base, 2 thing/novel, 3 stuff/base, 4 stuff/novel.
SMALL = ClassInfo(
    names=("void", "thing_b", "thing_n", "stuff_b", "stuff_n"),
    is_thing=(False, True, True, False, False),
    is_novel=(False, False, True, False, True),
    ignore=(0,),
)
# Two ignored classes (0 and 3), to check that every ignored class is dropped.
TWO_IGNORED = ClassInfo(
    names=("void", "a", "b", "outlier", "road", "grass"),
    is_thing=(False, True, True, False, False, False),
    is_novel=(False, False, True, False, False, True),
    ignore=(0, 3),
)


# ------------------------------------------------------------------------------------ case makers
def _things(classes: ClassInfo) -> list[int]:
    return [c for c in classes.evaluated if classes.is_thing[c]]


def uniform_frame(rng, classes: ClassInfo, n_points: int, n_inst: int):
    """Pure noise: every label and id uniform (small id range, so segments collide often)."""
    n = classes.n_classes
    return (rng.integers(0, n, n_points), rng.integers(0, n_inst, n_points),
            rng.integers(0, n, n_points), rng.integers(0, n_inst, n_points))


def tiny_segments_frame(rng, classes: ClassInfo, n_segments: int, min_points: int):
    """Many segments around the min_points threshold; the prediction keeps, shrinks or grows each."""
    sizes = rng.integers(1, 2 * min_points + 3, n_segments)
    cls = rng.choice(_things(classes) + [c for c in classes.evaluated if not classes.is_thing[c]], n_segments)
    gs = np.repeat(cls, sizes)
    gi = np.repeat(np.arange(n_segments), sizes)
    ps, pi = gs.copy(), gi.copy() + 1000
    shift = rng.random(gs.size) < 0.3  # move some points to the next segment's prediction
    pi[shift] += 1
    ps[shift] = np.roll(ps, 1)[shift]
    return ps, pi, gs, gi


def perfect_frame(rng, classes: ClassInfo, n_points: int):
    ps, pi, gs, gi = synthetic_frame(rng, classes, n_points=n_points, instances_per_thing=6)
    return gs.copy(), gi * 3 + 7, gs, gi  # same segments, different ids


def _frames(maker, rng, k, *args, **kw):
    return [maker(rng, *args, **kw) for _ in range(k)]


def hand_frame():
    """The hand-computed frame of test_group_means_hand_computed (min_points = 1).

    thing_b: gt A (20 pts) predicted exactly; gt B (20 pts) predicted UNLABELED -> TP 1, FN 1.
    thing_n: gt C (10 pts) predicted with 10 stuff_b points added -> IoU exactly 0.5, not a match.
    stuff_b: 40 pts, 30 predicted right -> segment IoU 0.75.
    stuff_n: 20 pts predicted right under four instance ids (ignored for stuff) -> IoU 1.
    void: 5 points predicted stuff_n, dropped.
    """
    gs = np.array([1] * 40 + [2] * 10 + [3] * 40 + [4] * 20 + [0] * 5)
    gi = np.array([1] * 20 + [2] * 20 + [9] * 10 + [0] * 40 + [0] * 20 + [0] * 5)
    ps = np.array([1] * 20 + [UNLABELED] * 20 + [2] * 10 + [3] * 30 + [2] * 10 + [4] * 20 + [4] * 5)
    pi = np.array([5] * 20 + [0] * 20 + [3] * 10 + [0] * 30 + [3] * 10 + [1, 2, 3, 4] * 5 + [0] * 5)
    return ps, pi, gs, gi


def build_cases(slow: bool) -> dict[str, tuple[ClassInfo, int, list]]:
    """name -> (classes, min_points, frames). Seeded, so every run checks the same inputs."""
    rng = np.random.default_rng(1234 if not slow else 4321)
    cases: dict[str, tuple[ClassInfo, int, list]] = {}
    if slow:
        cases["nusc_34k_multi"] = (NUSC, 15, _frames(synthetic_frame, rng, 6, NUSC))
        cases["nusc_34k_large_ids"] = (NUSC, 15, _frames(synthetic_frame, rng, 3, NUSC, large_ids=True))
        cases["kitti_60k"] = (KITTI, 50, _frames(synthetic_frame, rng, 3, KITTI, n_points=60_000))
        for seed in range(10):
            r = np.random.default_rng(seed)
            cases[f"nusc_realistic_seed{seed}"] = (
                NUSC, 15, _frames(synthetic_frame, r, 2, NUSC, n_points=12_000, instances_per_thing=12))
        return cases

    for seed in range(12):  # realistic, varied sizes, one to three frames
        r = np.random.default_rng(seed)
        k = 1 + seed % 3
        cases[f"nusc_realistic_{seed}"] = (NUSC, 15, _frames(
            synthetic_frame, r, k, NUSC, n_points=int(r.integers(1500, 6000)),
            instances_per_thing=int(r.integers(2, 10)), noise_fraction=float(r.uniform(0, 0.3))))
    for seed in range(4):
        r = np.random.default_rng(100 + seed)
        cases[f"kitti_realistic_{seed}"] = (KITTI, 50, _frames(
            synthetic_frame, r, 2, KITTI, n_points=5000, instances_per_thing=4))
    for seed in range(6):
        r = np.random.default_rng(200 + seed)
        cases[f"small_uniform_{seed}"] = (SMALL, int(r.integers(0, 4)), _frames(uniform_frame, r, 2, SMALL, 400, 4))
    cases["two_ignored_uniform"] = (TWO_IGNORED, 2, _frames(uniform_frame, rng, 3, TWO_IGNORED, 600, 3))
    cases["two_ignored_realistic"] = (TWO_IGNORED, 15, _frames(synthetic_frame, rng, 2, TWO_IGNORED, n_points=3000,
                                                                instances_per_thing=5))
    cases["tiny_segments_min15"] = (NUSC, 15, [tiny_segments_frame(rng, NUSC, 300, 15)])
    cases["tiny_segments_min50"] = (KITTI, 50, [tiny_segments_frame(rng, KITTI, 120, 50)])
    cases["many_two_point_segments"] = (NUSC, 0, [tiny_segments_frame(rng, NUSC, 1500, 1)])  # unique() paths
    cases["large_ids"] = (NUSC, 15, _frames(synthetic_frame, rng, 2, NUSC, n_points=4000, large_ids=True))
    cases["perfect"] = (NUSC, 15, _frames(perfect_frame, rng, 2, NUSC, 3000))
    cases["hand"] = (SMALL, 1, [hand_frame()])

    # Edge cases built from one realistic frame.
    ps, pi, gs, gi = synthetic_frame(rng, NUSC, n_points=4000, instances_per_thing=5)
    cases["all_unlabeled_pred"] = (NUSC, 15, [(np.full_like(ps, UNLABELED), pi, gs, gi)])
    cases["all_pred_ignore_class"] = (NUSC, 15, [(np.zeros_like(ps), pi, gs, gi)])
    cases["pred_zero_instances"] = (NUSC, 15, [(ps, np.zeros_like(pi), gs, gi)])
    cases["stuff_with_instance_ids"] = (NUSC, 15, [(ps, pi + rng.integers(0, 5, pi.size), gs,
                                                    gi + rng.integers(0, 5, gi.size))])
    heavy_ignore = gs.copy()
    heavy_ignore[rng.random(gs.size) < 0.6] = 0
    cases["mostly_ignored"] = (NUSC, 15, [(ps, pi, heavy_ignore, gi)])
    cases["all_ignored"] = (NUSC, 15, [(ps, pi, np.zeros_like(gs), gi)])
    one = np.full(2000, 4)  # car only, three instances
    one_inst = np.repeat([0, 1, 2], [1000, 600, 400])
    cases["one_class_only"] = (NUSC, 15, [(one, np.repeat([7, 8, 9, 9], [900, 500, 300, 300]), one, one_inst)])
    reuse_g = np.repeat([4, 10, 3, 4, 10], [300, 300, 300, 40, 40])
    reuse_i = np.repeat([1, 1, 1, 2, 2], [300, 300, 300, 40, 40])  # id 1 and 2 in car, truck and bus
    reuse_p = np.repeat([4, 10, 3, 10, 4], [300, 300, 300, 40, 40])
    cases["ids_reused_across_classes"] = (NUSC, 15, [(reuse_p, reuse_i, reuse_g, reuse_i)])
    empty = np.zeros(0, dtype=np.int64)
    cases["empty_frame_between"] = (NUSC, 15, [(ps, pi, gs, gi), (empty, empty, empty, empty), (ps, pi, gs, gi)])
    cases["multi_frame_accumulation"] = (NUSC, 15, _frames(synthetic_frame, rng, 5, NUSC, n_points=2500,
                                                           instances_per_thing=4))
    return cases


FAST_CASES = build_cases(slow=False)
SLOW_CASE_NAMES = ["nusc_34k_multi", "nusc_34k_large_ids", "kitti_60k"] + [f"nusc_realistic_seed{s}" for s in range(10)]


@functools.lru_cache(maxsize=1)
def slow_cases() -> dict:
    """Built only when a slow test runs (34k-60k point frames)."""
    cases = build_cases(slow=True)
    assert sorted(cases) == sorted(SLOW_CASE_NAMES)
    return cases


def ours(classes: ClassInfo, min_points: int, frames: list, keep_frame_iou: bool = False) -> PanopticEval:
    ev = PanopticEval(classes, min_points=min_points, keep_frame_iou=keep_frame_iou)
    for frame in frames:
        ev.add(*frame)
    return ev


def _run_oracle(cases: dict) -> dict:
    oracle_cases = [OracleCase(name, cl.n_classes, cl.ignore, _things(cl), mp, frames)
                    for name, (cl, mp, frames) in cases.items()]
    try:
        return run_devkit(oracle_cases)
    except OracleUnavailable as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def devkit_fast():
    return _run_oracle(FAST_CASES)


@pytest.fixture(scope="module")
def devkit_slow():
    return _run_oracle(slow_cases())


def assert_matches_devkit(ev: PanopticEval, dk: dict) -> None:
    res = ev.compute()
    idx = list(ev.classes.evaluated)
    for key, mine in (("tp", ev.pan_tp), ("fp", ev.pan_fp), ("fn", ev.pan_fn)):
        np.testing.assert_array_equal(mine[idx], np.array(dk[key])[idx], err_msg=key)
    for key, mine in (("pq", res.pq), ("sq", res.sq), ("rq", res.rq), ("iou", res.iou)):
        np.testing.assert_allclose(mine[idx], np.array(dk[key])[idx], rtol=0, atol=TOL, err_msg=key)
    np.testing.assert_allclose(ev.pan_iou[idx], np.array(dk["iou_sum"])[idx], rtol=1e-12, atol=TOL)
    for key in ("PQ", "SQ", "RQ", "mIoU", "PQ_dagger"):
        assert abs(res.groups["all"][key] - dk[key]) <= TOL, (key, res.groups["all"][key], dk[key])


# ------------------------------------------------------------------------------------ oracle tests
def test_oracle_is_the_pinned_devkit(devkit_fast):
    assert devkit_fast["devkit"] == "1.2.0"
    assert devkit_fast["numpy"].startswith("1.")
    assert set(devkit_fast["cases"]) == set(FAST_CASES)


@pytest.mark.parametrize("name", sorted(FAST_CASES))
def test_matches_devkit(name, devkit_fast):
    classes, min_points, frames = FAST_CASES[name]
    assert_matches_devkit(ours(classes, min_points, frames), devkit_fast["cases"][name])


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW_CASE_NAMES)
def test_matches_devkit_large(name, devkit_slow):
    classes, min_points, frames = slow_cases()[name]
    assert_matches_devkit(ours(classes, min_points, frames), devkit_slow["cases"][name])


def test_cases_are_not_trivial(devkit_fast):
    """The oracle cases must exercise matches, FPs, FNs and both sides of min_points, or agreeing proves little."""
    tot = {k: sum(sum(c[k]) for c in devkit_fast["cases"].values()) for k in ("tp", "fp", "fn")}
    assert min(tot.values()) > 100, tot
    r = devkit_fast["cases"]["nusc_realistic_0"]
    assert 0.05 < r["PQ"] < 0.95 and 0.05 < r["mIoU"] < 0.95
    assert devkit_fast["cases"]["perfect"]["PQ"] == pytest.approx(1.0)
    assert devkit_fast["cases"]["all_unlabeled_pred"]["PQ"] == 0.0
    # min_points matters in the tiny-segment case: with min_points 0 there would be more FPs/FNs.
    classes, _, frames = FAST_CASES["tiny_segments_min15"]
    unfiltered = ours(classes, 0, frames)
    filtered = devkit_fast["cases"]["tiny_segments_min15"]
    assert unfiltered.pan_fn.sum() > sum(filtered["fn"]) and unfiltered.pan_fp.sum() > sum(filtered["fp"])


# ------------------------------------------------------------------------------------ group means
def test_group_means_hand_computed():
    ev = PanopticEval(SMALL, min_points=1)
    ev.add(*hand_frame())
    res = ev.compute()
    pq = {1: 2 / 3, 2: 0.0, 3: 0.75, 4: 1.0}
    sq = {1: 1.0, 2: 0.0, 3: 0.75, 4: 1.0}
    rq = {1: 2 / 3, 2: 0.0, 3: 1.0, 4: 1.0}
    iou = {1: 0.5, 2: 0.5, 3: 0.75, 4: 1.0}
    for c in pq:
        assert res.pq[c] == pytest.approx(pq[c]) and res.sq[c] == pytest.approx(sq[c])
        assert res.rq[c] == pytest.approx(rq[c]) and res.iou[c] == pytest.approx(iou[c])
    assert [ev.pan_tp[1:].tolist(), ev.pan_fp[1:].tolist(), ev.pan_fn[1:].tolist()] == [
        [1, 0, 1, 1], [0, 1, 0, 0], [1, 1, 0, 0]]
    members = {"all": [1, 2, 3, 4], "things": [1, 2], "stuff": [3, 4], "base": [1, 3], "novel": [2, 4],
               "things_base": [1], "things_novel": [2], "stuff_base": [3], "stuff_novel": [4]}
    assert set(res.groups) == set(GROUPS) == set(members)
    for group, cls in members.items():
        g = res.groups[group]
        assert g["PQ"] == pytest.approx(np.mean([pq[c] for c in cls])), group
        assert g["SQ"] == pytest.approx(np.mean([sq[c] for c in cls])), group
        assert g["RQ"] == pytest.approx(np.mean([rq[c] for c in cls])), group
        assert g["mIoU"] == pytest.approx(np.mean([iou[c] for c in cls])), group
        dagger = [pq[c] if SMALL.is_thing[c] else iou[c] for c in cls]
        assert g["PQ_dagger"] == pytest.approx(np.mean(dagger)), group
    # Spelled out once, so a wrong grouping cannot hide behind the loop above.
    assert res.groups["things_base"]["PQ"] == pytest.approx(2 / 3)
    assert res.groups["stuff_novel"]["mIoU"] == pytest.approx(1.0)
    assert res.groups["novel"]["PQ"] == pytest.approx(0.5)
    assert res.groups["all"]["PQ_dagger"] == pytest.approx((2 / 3 + 0 + 0.75 + 1) / 4)


def test_nuscenes_preset_groups():
    assert NUSC.n_classes == 17 and NUSC.ignore == (0,) and NUSC.names[0] == "noise"
    names = lambda idx: {NUSC.names[i] for i in idx}  # noqa: E731
    assert names(NUSC.group("things_novel")) == {"bus", "motorcycle", "pedestrian"}
    assert names(NUSC.group("stuff_novel")) == {"vegetation"}
    assert names(NUSC.group("stuff_base")) == {"driveable_surface", "other_flat", "sidewalk", "terrain", "manmade"}
    assert len(NUSC.group("things_base")) == 7 and len(NUSC.group("all")) == 16
    assert [NUSC.index(n) for n in ("barrier", "truck", "driveable_surface", "vegetation")] == [1, 10, 11, 16]
    assert PanopticEval.nuscenes().min_points == 15
    kitti = PanopticEval.semantickitti()
    assert kitti.min_points == 50 and kitti.classes.n_classes == 20 and len(kitti.classes.group("things")) == 8


def test_group_means_match_devkit_per_class(devkit_fast):
    """Group means are means of the devkit's own per-class numbers over the preset's groups."""
    classes, min_points, frames = FAST_CASES["nusc_realistic_3"]
    res = ours(classes, min_points, frames).compute()
    dk = devkit_fast["cases"]["nusc_realistic_3"]
    for group in GROUPS:
        idx = list(classes.group(group))
        for key, dkey in (("PQ", "pq"), ("SQ", "sq"), ("RQ", "rq"), ("mIoU", "iou")):
            assert abs(res.groups[group][key] - np.mean(np.array(dk[dkey])[idx])) <= TOL, (group, key)


def test_empty_group_is_nan_and_none_in_dict():
    cl = ClassInfo(names=("void", "car", "road"), is_thing=(False, True, False), is_novel=(False, False, False),
                   ignore=(0,))
    ev = PanopticEval(cl, min_points=0)
    ev.add(np.array([1, 2]), np.array([0, 0]), np.array([1, 2]), np.array([0, 0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an empty group is NaN by rule, not numpy's "mean of empty slice"
        res = ev.compute()
    assert np.isnan(res.groups["novel"]["PQ"]) and res.groups["base"]["PQ"] == 1.0
    d = res.to_dict()
    assert d["novel"]["PQ"] is None and d["classes"]["car"]["PQ"] == 1.0 and "void" not in d["classes"]
    json.dumps(d, allow_nan=False)


def test_to_dict_names_every_number_of_the_report():
    ev = PanopticEval(SMALL, min_points=1)
    ev.add(*hand_frame())
    res = ev.compute()
    assert (res.n_frames, res.n_points) == (1, 110)  # the 5 void points are not counted
    d = res.to_dict()
    assert set(d) == set(GROUPS) | {"classes", "n_frames", "n_points"}
    assert (d["n_frames"], d["n_points"]) == (1, 110)
    assert all(set(d[g]) == {"PQ", "SQ", "RQ", "mIoU", "PQ_dagger"} for g in GROUPS)
    assert list(d["classes"]) == ["thing_b", "thing_n", "stuff_b", "stuff_n"]
    thing_b = d["classes"]["thing_b"]
    assert thing_b == {"PQ": pytest.approx(2 / 3), "SQ": 1.0, "RQ": pytest.approx(2 / 3), "IoU": 0.5,
                       "TP": 1, "FP": 0, "FN": 1, "thing": True, "novel": False}
    assert d["classes"]["stuff_n"] == {"PQ": 1.0, "SQ": 1.0, "RQ": 1.0, "IoU": 1.0, "TP": 1, "FP": 0, "FN": 0,
                                       "thing": False, "novel": True}
    assert d["classes"]["thing_n"]["FP"] == 1 and d["classes"]["thing_n"]["FN"] == 1


def test_counts_are_exact_integers():
    ev = PanopticEval(SMALL, min_points=1)
    ev.add(*hand_frame())
    for name in ("confusion", "pan_tp", "pan_fp", "pan_fn"):
        assert getattr(ev, name).dtype == np.int64, name
    ev.reset()
    assert all(getattr(ev, name).dtype == np.int64 for name in ("confusion", "pan_tp", "pan_fp", "pan_fn"))


# ------------------------------------------------------------------------------------ semantics
def test_stuff_instance_ids_are_ignored():
    gs = np.array([11] * 100)
    ev = PanopticEval(NUSC, min_points=15)
    ev.add(gs, np.repeat([1, 2, 3, 4], 25), gs, np.repeat([5, 6], 50))
    assert ev.compute().pq[11] == 1.0 and ev.pan_fp[11] == 0 and ev.pan_fn[11] == 0


def test_thing_instance_ids_are_not_ignored():
    gs = np.array([4] * 100)
    ev = PanopticEval(NUSC, min_points=15)
    ev.add(gs, np.repeat([1, 2, 3, 4], 25), gs, np.zeros(100, dtype=int))
    assert ev.pan_tp[4] == 0 and ev.pan_fp[4] == 4 and ev.pan_fn[4] == 1


def test_unlabeled_prediction_is_wrong_not_ignored():
    gs = np.repeat([4, 11], [50, 50])
    ev = PanopticEval(NUSC, min_points=15)
    ev.add(np.full(100, UNLABELED), np.zeros(100, dtype=int), gs, np.zeros(100, dtype=int))
    res = ev.compute()
    assert res.iou[4] == 0.0 and res.iou[11] == 0.0  # counted as misses, not dropped
    assert ev.pan_fn[4] == 1 and ev.pan_fn[11] == 1 and ev.pan_fp.sum() == 0
    assert ev.confusion[NUSC.n_classes, 4] == 50  # the "no prediction" row
    assert ev.n_points == 100


def test_ignored_ground_truth_is_removed():
    ev = PanopticEval(NUSC, min_points=1)
    gs = np.repeat([4, 0], [20, 80])
    ev.add(np.full(100, 4), np.zeros(100, dtype=int), gs, np.zeros(100, dtype=int))
    res = ev.compute()
    assert res.iou[4] == 1.0 and res.pq[4] == 1.0 and ev.n_points == 20  # the 80 noise points count nowhere
    assert ev.pan_fn[0] == 0 and ev.pan_fp[0] == 0 and ev.pan_tp[0] == 0


def test_min_points_boundary():
    """A segment of exactly min_points counts as FP/FN; one point fewer does not."""
    for size, counted in ((15, 1), (14, 0)):
        ev = PanopticEval(NUSC, min_points=15)
        gs = np.full(size, 4)
        ev.add(np.full(size, 10), np.zeros(size, dtype=int), gs, np.zeros(size, dtype=int))
        assert (ev.pan_fn[4], ev.pan_fp[10]) == (counted, counted), size


def test_iou_must_exceed_half():
    gs, gi = np.full(4, 4), np.zeros(4, dtype=int)
    ev = PanopticEval(NUSC, min_points=0)
    ev.add(np.array([4, 4, 0, 0]), gi, gs, gi)  # IoU exactly 0.5
    assert ev.pan_tp[4] == 0
    ev.reset()
    ev.add(np.array([4, 4, 4, 0]), gi, gs, gi)  # IoU 0.75
    assert ev.pan_tp[4] == 1 and ev.pan_iou[4] == pytest.approx(0.75)


# ------------------------------------------------------------------------------------ streaming
def test_streaming_equals_merge():
    classes, min_points, frames = FAST_CASES["multi_frame_accumulation"]
    whole = ours(classes, min_points, frames)
    a, b = ours(classes, min_points, frames[:2]), ours(classes, min_points, frames[2:])
    assert a.merge(b) is a
    for attr in ("confusion", "pan_tp", "pan_fp", "pan_fn"):
        np.testing.assert_array_equal(getattr(a, attr), getattr(whole, attr), err_msg=attr)
    np.testing.assert_allclose(a.pan_iou, whole.pan_iou, rtol=1e-12)
    assert (a.n_frames, a.n_points) == (whole.n_frames, whole.n_points) == (5, whole.n_points)
    ra, rw = a.compute().to_dict(), whole.compute().to_dict()
    for group in GROUPS:
        for key, value in rw[group].items():
            assert ra[group][key] == pytest.approx(value, abs=1e-12), (group, key)


def test_merge_is_not_concatenation():
    """Segments belong to one frame: two frames added separately differ from one big add."""
    gs, gi = np.full(20, 4), np.zeros(20, dtype=int)
    sep = PanopticEval(NUSC, min_points=15)
    sep.add(gs, gi, gs, gi)
    sep.add(gs, gi, gs, gi)
    assert sep.pan_tp[4] == 2


def test_kept_frame_iou_rows_add_up_to_the_running_sum_to_the_bit():
    """keep_frame_iou (a sharded replay merges by it): one row per add, an empty frame a row of zeros, and the
    rows re-added in order give the running sum's exact bits."""
    classes, min_points, frames = FAST_CASES["multi_frame_accumulation"]
    ev = PanopticEval(classes, min_points, keep_frame_iou=True)
    for frame in [frames[0], (np.zeros(0, dtype=int),) * 4, *frames[1:]]:
        ev.add(*frame)
    assert len(ev.frame_iou) == ev.n_frames == len(frames) + 1
    assert ev.frame_iou[1].shape == (classes.n_classes,) and not ev.frame_iou[1].any()
    total = np.zeros(classes.n_classes)
    for row in ev.frame_iou:
        total += row
    assert ev.pan_iou.any() and total.tobytes() == ev.pan_iou.tobytes()
    b = PanopticEval(classes, min_points, keep_frame_iou=True)
    b.add(*frames[0])
    rows = list(ev.frame_iou)
    assert ev.merge(b).frame_iou == rows + b.frame_iou and ev.merge(PanopticEval(classes, min_points)).frame_iou
    ev.reset()
    assert ev.frame_iou == [] and ours(classes, min_points, frames).frame_iou is None


def test_memory_is_constant_over_frames():
    classes, min_points, frames = FAST_CASES["multi_frame_accumulation"]
    ev = PanopticEval(classes, min_points)
    ev.add(*frames[0])

    def footprint():
        return sum(v.nbytes if isinstance(v, np.ndarray) else len(v) if isinstance(v, (list, dict, tuple)) else 0
                   for v in vars(ev).values())

    before = footprint()
    for _ in range(10):
        for frame in frames:
            ev.add(*frame)
    assert footprint() == before


def test_reset_and_compute_do_not_leak_state():
    classes, min_points, frames = FAST_CASES["nusc_realistic_1"]
    ev = ours(classes, min_points, frames)
    first = ev.compute().to_dict()
    assert ev.compute().to_dict() == first  # compute() does not change the counts
    ev.reset()
    assert ev.n_frames == 0 and not ev.confusion.any() and not ev.pan_tp.any() and not ev.pan_iou.any()
    for frame in frames:
        ev.add(*frame)
    assert ev.compute().to_dict() == first


def test_merge_rejects_other_setups():
    with pytest.raises(ValueError, match=r"^PanopticEval\.merge: the evaluators differ in classes or min_points$"):
        PanopticEval(NUSC, 15).merge(PanopticEval(NUSC, 50))
    with pytest.raises(ValueError, match="classes"):
        PanopticEval(NUSC, 15).merge(PanopticEval(nuscenes_classes(novel=("bus",)), 15))
    with pytest.raises(TypeError, match="^can only merge a PanopticEval, got dict$"):
        PanopticEval(NUSC, 15).merge({"pan_tp": 1})
    classes, min_points, frames = FAST_CASES["multi_frame_accumulation"]
    keeps, drops = PanopticEval(classes, min_points, keep_frame_iou=True), ours(classes, min_points, frames[:1])
    with pytest.raises(ValueError, match=r"^PanopticEval\.merge: this evaluator keeps frame_iou .* with 1 frames,"
                                         r" does not$"):
        keeps.merge(drops)  # its rows would no longer be one per frame
    assert keeps.n_frames == 0 and keeps.frame_iou == []
    assert drops.merge(keeps.merge(ours(classes, min_points, frames[1:2], keep_frame_iou=True))).n_frames == 2


# ------------------------------------------------------------------------------------ label mapping
def test_mapping_default_is_first_synonym_case_insensitive():
    m = LabelMapping(["Car", "pedestrian,person", "person,pedestrian", "tree", " Vegetation "], NUSC)
    assert m.lut.tolist() == [4, 7, UNLABELED, UNLABELED, 16]
    assert m.unmapped == ["person,pedestrian", "tree"]


def test_mapping_table_wins_and_tries_synonyms_in_order():
    table = {"PERSON": "pedestrian", "tree": "Vegetation", "car": None, "bush,shrub": "vegetation"}
    m = LabelMapping(["car", "person,pedestrian", "tree", "bush,shrub", "truck"], NUSC, table=table)
    assert m.lut.tolist() == [UNLABELED, 7, 16, 16, 10]
    assert m.unmapped == ["car"]


def test_mapping_maps_arrays_and_passes_unlabeled():
    m = LabelMapping(["car", "vegetation", "ufo"], NUSC)
    out = m(np.array([0, 1, 2, UNLABELED, 0], dtype=np.uint16))
    assert out.tolist() == [4, 16, UNLABELED, UNLABELED, 4]
    assert m(np.array([1])).tolist() == [16]  # a single label too
    assert m(np.array([], dtype=np.int64)).tolist() == []
    with pytest.raises(ValueError, match="outside the vocabulary"):
        m(np.array([0, 3]))
    expected = ("LabelMapping: predicted labels [-1, 3, 4, 5, 6, 7, 8, 9, 10, 11] are outside the vocabulary 0..2 "
                "(and are not UNLABELED=65535)")
    with pytest.raises(ValueError, match="^" + re.escape(expected) + "$"):
        m(np.array([0, 2, -1, *range(3, 14), UNLABELED]))
    with pytest.raises(ValueError, match="integers"):
        m(np.array([0.0, 1.0]))


def test_mapping_errors():
    with pytest.raises(ValueError, match="not a ground-truth class"):
        LabelMapping(["person"], NUSC, table={"person": "human"})
    with pytest.raises(ValueError, match="map to no ground-truth class"):
        LabelMapping(["car", "ufo"], NUSC, strict=True)


def test_unmapped_prediction_scores_as_miss_end_to_end():
    vocab = ["automobile", "road,street"]
    m = LabelMapping(vocab, NUSC, table={"street": "driveable_surface"})
    gs = np.repeat([4, 11], [40, 60])
    pred_vocab = np.repeat([0, 1], [40, 60])
    ev = PanopticEval(NUSC, min_points=15)
    ev.add(m(pred_vocab), np.zeros(100, dtype=int), gs, np.zeros(100, dtype=int))
    res = ev.compute()
    assert res.iou[4] == 0.0 and ev.pan_fn[4] == 1 and ev.pan_fp.sum() == 0  # automobile: unmapped -> a miss
    assert res.iou[11] == 1.0 and res.pq[11] == 1.0  # road,street: first synonym unmatched, table hit on "street"


# ------------------------------------------------------------------------------------ bad input
def _msg(text):
    """An exact error message, as a pattern."""
    return "^" + re.escape("PanopticEval.add: " + text) + "$"


_PRED = "(and are not UNLABELED=65535); map vocabulary labels with LabelMapping first"


@pytest.mark.parametrize(
    "frame, message",
    [
        ((np.zeros(3, int), np.zeros(3, int), np.zeros(4, int), np.zeros(4, int)), _msg(
            "arrays differ in length: {'pred_labels': 3, 'pred_instances': 3, 'gt_labels': 4, 'gt_instances': 4}")),
        ((np.zeros(3, int), np.zeros(3, int), np.array([1, 17, 2]), np.zeros(3, int)), r"gt_labels \[17\]"),
        ((np.zeros(3, int), np.zeros(3, int), np.array([1, -1, 2]), np.zeros(3, int)), r"gt_labels \[-1\]"),
        ((np.zeros(3, int), np.zeros(3, int), np.array([0, 17, -1]), np.zeros(3, int)),
         _msg("gt_labels [-1, 17] are outside the class range 0..16")),
        ((np.zeros(12, int), np.zeros(12, int), np.arange(17, 29), np.zeros(12, int)),
         _msg("gt_labels [17, 18, 19, 20, 21, 22, 23, 24, 25, 26] are outside the class range 0..16")),
        ((np.array([1, 17, 70000]), np.zeros(3, int), np.zeros(3, int), np.zeros(3, int)),
         r"pred_labels \[17, 70000\]"),
        ((np.array([0, 1, 17]), np.zeros(3, int), np.zeros(3, int), np.zeros(3, int)),  # exactly n: not "none"
         _msg(f"pred_labels [17] are outside the class range 0..16 {_PRED}")),
        ((np.arange(17, 29), np.zeros(12, int), np.zeros(12, int), np.zeros(12, int)),
         _msg(f"pred_labels [17, 18, 19, 20, 21, 22, 23, 24, 25, 26] are outside the class range 0..16 {_PRED}")),
        ((np.array([-2, 1, 1]), np.zeros(3, int), np.zeros(3, int), np.zeros(3, int)), r"pred_labels \[-2\]"),
        ((np.zeros(3, int), np.array([0, -1, 0]), np.zeros(3, int), np.zeros(3, int)),
         _msg("pred_instances must lie in 0..4294967294, got min -1 max 0")),
        ((np.zeros(3, int), np.zeros(3, int), np.zeros(3, int), np.array([0, 2**32, 0])),
         _msg("gt_instances must lie in 0..4294967294, got min 0 max 4294967296")),
        ((np.zeros(3), np.zeros(3, int), np.zeros(3, int), np.zeros(3, int)), "pred_labels must be an integer"),
        ((np.zeros(3, int), np.zeros(3), np.zeros(3, int), np.zeros(3, int)),
         _msg("pred_instances must be an integer array, got dtype float64")),
        ((np.zeros(3, int), np.zeros(3, int), np.zeros(3, bool), np.zeros(3, int)), "gt_labels must be an integer"),
        ((np.zeros(3, int), np.zeros(3, int), np.zeros(3, int), np.zeros(3, np.float32)),
         _msg("gt_instances must be an integer array, got dtype float32")),
    ],
)
def test_bad_input_is_rejected(frame, message):
    ev = PanopticEval(NUSC, min_points=15)
    with pytest.raises(ValueError, match=message):
        ev.add(*frame)
    assert ev.n_frames == 0 and not ev.confusion.any()  # a rejected frame leaves no trace


def test_arrays_of_any_shape_are_flattened():
    flat = PanopticEval(SMALL, min_points=1)
    flat.add(*hand_frame())
    shaped = PanopticEval(SMALL, min_points=1)
    shaped.add(*(a.reshape(5, 23) for a in hand_frame()))
    for name in ("confusion", "pan_tp", "pan_fp", "pan_fn", "pan_iou"):
        np.testing.assert_array_equal(getattr(shaped, name), getattr(flat, name), err_msg=name)


def test_uint64_input_is_accepted_up_to_the_int64_range():
    ref = PanopticEval(SMALL, min_points=1)
    ref.add(*hand_frame())
    ev = PanopticEval(SMALL, min_points=1)
    ps, pi, gs, gi = hand_frame()
    ev.add(ps.astype(np.uint64), pi.astype(np.uint64), gs.astype(np.uint64), gi.astype(np.uint64))
    np.testing.assert_array_equal(ev.pan_tp, ref.pan_tp)
    np.testing.assert_array_equal(ev.confusion, ref.confusion)
    zeros = np.zeros(2, dtype=np.uint64)
    # 2**63 - 1 still fits int64: it is refused by the instance range, not by the conversion
    with pytest.raises(ValueError, match=r"gt_instances must lie in 0\.\.4294967294, got min 0 max 9223372036854775807"):
        ev.add(zeros, zeros, zeros, np.array([0, 2**63 - 1], dtype=np.uint64))
    with pytest.raises(ValueError, match=r"^PanopticEval.add: gt_instances holds values beyond int64$"):
        ev.add(zeros, zeros, zeros, np.array([0, 2**63], dtype=np.uint64))
    assert ev.n_frames == 1


def test_instance_ids_up_to_max_instance_id_are_accepted():
    ev = PanopticEval(SMALL, min_points=1)
    ids = np.array([MAX_INSTANCE_ID] * 3)
    ev.add(np.array([1, 1, 1]), ids, np.array([1, 1, 1]), ids)
    assert MAX_INSTANCE_ID == 2**32 - 2 and ev.pan_tp[1] == 1
    with pytest.raises(ValueError, match=r"pred_instances must lie in 0\.\.4294967294, got min 0 max 4294967295"):
        ev.add(np.array([1, 1]), np.array([0, MAX_INSTANCE_ID + 1]), np.array([1, 1]), np.array([0, 0]))


def test_bad_class_info_is_rejected():
    with pytest.raises(ValueError, match="is_thing"):
        ClassInfo(names=("a", "b"), is_thing=(True,), is_novel=(False, False))
    with pytest.raises(ValueError, match="outside"):
        ClassInfo(names=("a", "b"), is_thing=(True, False), is_novel=(False, False), ignore=(2,))
    with pytest.raises(ValueError, match="duplicate"):
        ClassInfo(names=("car", "Car"), is_thing=(True, True), is_novel=(False, False))
    with pytest.raises(ValueError, match="every class is ignored"):
        ClassInfo(names=("a",), is_thing=(False,), is_novel=(False,), ignore=(0,))
    with pytest.raises(ValueError, match="not among the class names"):
        ClassInfo.from_names(["car", "road"], things=["truck"])
    with pytest.raises(ValueError, match="min_points"):
        PanopticEval(NUSC, min_points=-1)
    with pytest.raises(ValueError, match="unknown group"):
        NUSC.group("things_rare")


# ------------------------------------------------------------------------------------ benchmark
@pytest.mark.slow
def test_bench_runs_and_agrees_with_devkit():
    """The benchmark's numbers are comparable only if both sides computed the same metrics; the speed-up
    itself is reported by `ov-panoptic bench`, never asserted here."""
    from ov_panoptic_ros.bench.metrics import bench_metrics

    out = bench_metrics(quick=True)
    json.dumps(out, allow_nan=False)
    assert out["points_per_frame"] == 34_000 and out["classes"] == 17
    assert out["max_abs_diff_pq"] <= TOL
    assert out["speedup"] > 0 and out["ours_points_per_s"] > 0, out


def test_the_oracle_is_found_only_through_configuration(monkeypatch, tmp_path):
    """An installed package has no source tree to search: the oracle venv is named by the variable."""
    from ov_panoptic_ros.eval.devkit_oracle import ORACLE_ENV, oracle_python

    monkeypatch.delenv(ORACLE_ENV)
    with pytest.raises(OracleUnavailable, match=f"\\${ORACLE_ENV} is not set.*make oracle-venv"):
        oracle_python()
    monkeypatch.setenv(ORACLE_ENV, str(tmp_path / "nowhere" / "python"))
    with pytest.raises(OracleUnavailable, match="nowhere/python, which does not exist"):
        run_devkit([])
