"""The ray-cast kernel (_raycast.c): exact hits on each primitive kind, the hierarchy returns the same nearest
hit as testing every primitive, and bad arguments are refused with a reason."""
import numpy as np
import pytest

from ov_panoptic_ros.data.world import _raycast
from ov_panoptic_ros.data.world.parts import PartsBuilder, rot_x, rot_y, rot_z
from ov_panoptic_ros.data.world.raycast import cast

ORIGIN = np.zeros(3)


def _unit(*v):
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def _one(table, direction, origin=ORIGIN, max_range=np.inf):
    hits = cast(table, origin, _unit(*direction)[None], max_range)
    return hits.distance[0], hits.primitive[0], hits.local[0], hits.normal[0]


def test_box_face_distance_normal_and_local_point():
    table = PartsBuilder().box((5, 0, 0), (2, 4, 6), 0).build().table
    t, p, local, normal = _one(table, (1, 0, 0))
    assert (t, p) == (4.0, 0)
    np.testing.assert_allclose(normal, [-1, 0, 0])
    np.testing.assert_allclose(local, [-1, 0, 0], atol=1e-6)
    t, _, local, normal = _one(table, (5, 1.5, 0))  # through the x = 4 face at y = 1.2
    assert t == pytest.approx(np.hypot(4, 1.2))
    np.testing.assert_allclose(local, [-1, 1.2, 0], atol=1e-6)


def test_turned_box_is_hit_where_its_rotation_puts_it():
    table = PartsBuilder().box((10, 0, 0), (1, 8, 1), 0, rot_z(np.pi / 2)).build().table  # 8 m along world x
    assert _one(table, (1, 0, 0))[0] == pytest.approx(6.0)
    assert _one(table, (10, 1, 0))[1] == -1  # 1 m wide along world y: this ray passes beside it


def test_cylinder_side_and_cap():
    table = PartsBuilder().cylinder((0, 0, 5), 1.0, 2.0, 0).build().table  # axis z, caps at z = 4 and 6
    t, _, _, normal = _one(table, (0, 0, 1))
    assert t == pytest.approx(4.0)
    np.testing.assert_allclose(normal, [0, 0, -1], atol=1e-7)
    t, _, _, normal = _one(table, (1, 0, 0), origin=np.array([-5.0, 0, 5.5]))
    assert t == pytest.approx(4.0)  # on the side
    np.testing.assert_allclose(normal, [-1, 0, 0], atol=1e-7)
    side = PartsBuilder().cylinder((3, 0, 0), 0.5, 2.0, 0, radius_y=1.5).build().table  # elliptic
    assert _one(side, (1, 0, 0))[0] == pytest.approx(2.5)
    assert _one(side, (0, 1, 0), origin=np.array([3.0, -5, 0]))[0] == pytest.approx(3.5)


def test_ellipsoid():
    table = PartsBuilder().ellipsoid((0, 10, 0), (2, 4, 6), 0).build().table  # semi-axes 1, 2, 3
    t, _, local, normal = _one(table, (0, 1, 0))
    assert t == pytest.approx(8.0)
    np.testing.assert_allclose(local, [0, -2, 0], atol=1e-6)
    np.testing.assert_allclose(normal, [0, -1, 0], atol=1e-7)
    assert _one(table, (0, 0, 1), origin=np.array([0, 10.0, -10]))[0] == pytest.approx(7.0)


def test_cone_side_cap_and_tip():
    table = PartsBuilder().cone((0, 0, 0), 1.0, 0.0, 2.0, 0).build().table  # radius 1 at z = -1, tip at z = 1
    t, _, _, normal = _one(table, (1, 0, 0), origin=np.array([-5.0, 0, 0]))
    assert t == pytest.approx(4.5)  # radius 0.5 at z = 0
    np.testing.assert_allclose(normal, _unit(-2, 0, 1), atol=1e-7)
    t, _, _, normal = _one(table, (0, 0, 1), origin=np.array([0.3, 0, -5.0]))
    assert t == pytest.approx(4.0)  # the base cap
    np.testing.assert_allclose(normal, [0, 0, -1])
    assert _one(table, (0, 0, -1), origin=np.array([0, 0, 5.0]))[0] == pytest.approx(4.0)  # onto the tip
    assert _one(table, (0, 0, -1), origin=np.array([0.55, 0, 5.0]))[0] == pytest.approx(5 + 0.1)


def test_no_hit_from_inside_behind_or_beyond_range():
    table = PartsBuilder().box((0, 0, 0), (2, 2, 2), 0).box((5, 0, 0), (1, 1, 1), 1).build().table
    t, p, local, normal = _one(table, (-1, 0, 0))  # starts inside box 0, nothing behind it
    assert (t, p) == (np.inf, -1) and not local.any() and not normal.any()
    assert _one(table, (1, 0, 0))[1] == 1  # box 0 is not seen from inside; box 1 is
    assert _one(table, (1, 0, 0), max_range=4.4)[1] == -1
    assert _one(table, (1, 0, 0), max_range=4.5)[0] == 4.5


def _random_scene(rng, n):
    b = PartsBuilder()
    for _ in range(n):
        rotation = rot_z(rng.uniform(0, 6.3)) @ rot_y(rng.uniform(0, 6.3)) @ rot_x(rng.uniform(0, 6.3))
        center, size = rng.uniform(-40, 40, 3), rng.uniform(0.05, 6, 3)
        kind = rng.integers(4)
        if kind == 0:
            b.box(center, size, 0, rotation)
        elif kind == 1:
            b.cylinder(center, size[0], size[2], 0, rotation, radius_y=size[1])
        elif kind == 2:
            b.ellipsoid(center, size, 0, rotation)
        else:
            b.cone(center, size[0], rng.choice([0.0, size[1]]), size[2], 0, rotation)
    b.box((0, 0, -30), (400, 400, 1), 0)  # a ground far larger than everything: the hierarchy's worst case
    return b.build().table


def test_hierarchy_finds_the_same_nearest_hit_as_every_primitive_alone():
    rng = np.random.default_rng(7)
    table = _random_scene(rng, 600)
    origin = np.array([1.0, -2.0, 0.5])
    dirs = rng.normal(size=(3000, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    dirs[:4] = [[1, 0, 0], [0, 1, 0], [0, 0, -1], [0, 0, 1]]  # axis-parallel rays: zero components
    hits = cast(table, origin, dirs)
    best = np.full(len(dirs), np.inf)
    best_p = np.full(len(dirs), -1)
    for p in range(len(table)):
        one = cast(table[p:p + 1], origin, dirs)
        better = one.distance < best  # strict: ties go to the lower index
        best[better], best_p[better] = one.distance[better], p
    np.testing.assert_array_equal(hits.primitive, best_p)
    np.testing.assert_array_equal(hits.distance, best)
    assert 0.3 < hits.hit.mean() < 1.0
    hit = hits.hit
    world = origin + hits.distance[hit, None] * dirs[hit]  # the local point is the world point in the part's frame
    rows = table[hits.primitive[hit]]
    rotation = rows[:, 4:13].reshape(-1, 3, 3)
    np.testing.assert_allclose(np.einsum("pij,pj->pi", rotation, world - rows[:, 1:4]), hits.local[hit], atol=1e-4)
    assert (np.einsum("ij,ij->i", hits.normal[hit], dirs[hit]) <= 1e-6).all()  # entered surfaces face the ray


def _buffers(n):
    return np.empty(n), np.empty(n, np.int64), np.empty((n, 3), np.float32), np.empty((n, 3), np.float32)


def test_argument_checks():
    table = PartsBuilder().box((5, 0, 0), (1, 1, 1), 0).build().table
    dirs = np.array([[1.0, 0, 0]])
    _raycast.cast(table, ORIGIN, dirs, 10.0, *_buffers(1))
    with pytest.raises(ValueError, match="primitives must be a C-contiguous float64"):
        _raycast.cast(table.astype(np.float32), ORIGIN, dirs, 10.0, *_buffers(1))
    with pytest.raises(ValueError, match="out_primitive must be a C-contiguous int64"):
        _raycast.cast(table, ORIGIN, dirs, 10.0, np.empty(1), np.empty(1, np.int32), *_buffers(1)[2:])
    with pytest.raises(ValueError, match=r"expected primitives \(P, 16\)"):
        _raycast.cast(table[:, :15].copy(), ORIGIN, dirs, 10.0, *_buffers(1))
    with pytest.raises(ValueError, match=r"expected primitives"):
        _raycast.cast(table, ORIGIN, dirs, 10.0, *_buffers(2))
    with pytest.raises(ValueError, match="not a unit vector"):
        _raycast.cast(table, ORIGIN, dirs * 2, 10.0, *_buffers(1))
    with pytest.raises(ValueError, match="origin is not finite"):
        _raycast.cast(table, np.array([np.nan, 0, 0]), dirs, 10.0, *_buffers(1))
    with pytest.raises(ValueError, match="max_range must be positive"):
        _raycast.cast(table, ORIGIN, dirs, 0.0, *_buffers(1))
    read_only = _buffers(1)
    read_only[0].setflags(write=False)
    with pytest.raises((ValueError, BufferError)):
        _raycast.cast(table, ORIGIN, dirs, 10.0, *read_only)
    for column, value, reason in (("kind", 4.0, "kind 4 is not one of"), ("kind", 0.5, "kind 0.5"),
                                  ("a", -1.0, "must be finite and positive"), ("c", np.inf, "finite and positive"),
                                  ("r00", 2.0, "not orthonormal"), ("cx", np.nan, "centre is not finite")):
        bad = table.copy()
        bad[0, _raycast.COLUMNS.index(column)] = value
        with pytest.raises(ValueError, match=reason):
            _raycast.cast(bad, ORIGIN, dirs, 10.0, *_buffers(1))
    cone = PartsBuilder().cone((0, 0, 0), 0.0, 0.0, 1.0, 0).build().table
    with pytest.raises(ValueError, match="one end radius may be 0"):
        _raycast.cast(cone, ORIGIN, dirs, 10.0, *_buffers(1))
