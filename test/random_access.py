"""Random access of a FrameSource (data/source.py), checked alike for every source that offers it: `source[i]` is
the frame iteration yields, and the consumers that test for `__len__` and `__getitem__` (a training order,
sharded replay, the feature cache extraction) build only the frames they take, counted by wrapping the source's
one frame builder."""
import itertools

import numpy as np

from ov_panoptic_ros.eval.strided import StridedSource
from ov_panoptic_ros.train.data import FrameOrder
from ov_panoptic_ros.train.feature_extract import _shard


def assert_same_item(a, b) -> None:
    """Two (Frame, GroundTruth | None) alike: points, intensity, stamp, images, camera models, ground truth."""
    (fa, ta), (fb, tb) = a, b
    assert (fa.stamp_ns, fa.frame_id) == (fb.stamp_ns, fb.frame_id)
    np.testing.assert_array_equal(fa.points, fb.points)
    np.testing.assert_array_equal(fa.intensity, fb.intensity)
    assert len(fa.images) == len(fb.images) and len(fa.cameras) == len(fb.cameras)
    for image_a, image_b in zip(fa.images, fb.images):
        np.testing.assert_array_equal(image_a, image_b)
    for ca, cb in zip(fa.cameras, fb.cameras):
        assert (ca.name, ca.width, ca.height, ca.distortion_model, ca.time_offset_s) == \
               (cb.name, cb.width, cb.height, cb.distortion_model, cb.time_offset_s)
        for name in ("K", "D", "T_cam_lidar"):
            np.testing.assert_array_equal(getattr(ca, name), getattr(cb, name))
    assert (ta is None) == (tb is None)
    if ta is not None:
        np.testing.assert_array_equal(ta.labels, tb.labels)
        np.testing.assert_array_equal(ta.instance_ids, tb.instance_ids)


def assert_same_items(a: list, b: list) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert_same_item(x, y)


def count_builds(source) -> list[int]:
    """The indices the source builds frames for from now on (its `_frame(i)`, behind iteration and [i])."""
    built, build = [], source._frame

    def counted(i):
        built.append(i)
        return build(i)

    source._frame = counted
    return built


def check_indexed_as_iterated(make) -> list:
    """`make()` opens a fresh source: [i] over range(len) gives iteration's frames, sets `position` as iteration
    does, and refuses an index out of range. Returns the iterated items."""
    iterated, positions = [], []
    source = make()
    for item in source:
        iterated.append(item)
        positions.append(source.position)
    indexed = make()
    assert len(indexed) == len(iterated)
    for i in reversed(range(len(indexed))):  # any order: an index does not depend on the frames read before
        assert_same_item(indexed[i], iterated[i])
        assert indexed.position == positions[i]
    for bad in (len(indexed), len(indexed) + 5, -1):
        try:
            indexed[bad]
        except IndexError:
            continue
        raise AssertionError(f"[{bad}] of a {len(indexed)}-frame source gave a frame")
    return iterated


def check_training_order_shuffles(make, iterated: list, seed: int = 0) -> None:
    """FrameOrder takes the source as indexed: two epochs, each every frame once, not both in order, each frame
    built once when its turn comes (no read-through)."""
    source = make()
    order = FrameOrder(source, seed=seed)
    assert order.indexed and order.epoch_frames == len(iterated)
    built = count_builds(source)
    n = len(iterated)
    taken = list(itertools.islice(order.numbered_frames(0), 2 * n))
    epochs = [[k for _, k, _, _ in taken[e * n:(e + 1) * n]] for e in (0, 1)]
    assert all(sorted(e) == list(range(n)) for e in epochs)
    assert any(e != list(range(n)) for e in epochs)  # shuffled
    assert built == epochs[0] + epochs[1]
    for _, k, frame, truth in taken:
        assert_same_item((frame, truth), iterated[k])


def check_shards_build_only_their_frames(make, iterated: list) -> None:
    """Sharded replay (StridedSource) and the feature extraction's shard build rank r's frames r, r + W, ...
    only, and those are iteration's frames."""
    n = len(iterated)
    for world in (2, 3):
        for rank in range(world):
            mine = list(range(rank, n, world))
            source = make()
            built = count_builds(source)
            strided = StridedSource(source, rank, world)
            assert strided.indexed and len(strided) == len(mine)
            items, ordinals = [], []
            for item in strided:
                items.append(item)
                ordinals.append(strided.ordinal)
            assert built == mine and ordinals == mine and strided.yielded == len(mine)
            assert_same_items(items, [iterated[k] for k in mine])

            source = make()
            built, count = count_builds(source), [0]
            frames = [(i, get()) for i, get in _shard(source, rank, world, count)]
            assert built == [i for i, _ in frames] == mine and count[0] == n
            for i, frame in frames:
                np.testing.assert_array_equal(frame.points, iterated[i][0].points)
