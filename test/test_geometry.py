"""Projection, distortion, visibility and box fitting, checked against hand computations."""
import math

import numpy as np
import pytest
import torch

from ov_panoptic_ros.core.config import ProjectionConfig
from ov_panoptic_ros.core.frame import CameraModel
from ov_panoptic_ros.core import geometry
from ov_panoptic_ros.core.geometry import (PointProjection, field_of_view_radius, fit_box, lens_coefficients,
                                           project_points, view_box)

K = [[500.0, 0.0, 320.5], [0.0, 400.0, 240.25], [0.0, 0.0, 1.0]]
PLUMB_BOB = [-0.28, 0.09, 0.0012, -0.0008, -0.015]
RATIONAL = [0.4, -0.12, 0.0009, 0.0011, 0.02, 0.65, -0.05, 0.01]
# LiDAR x forward, y left, z up -> camera optical frame x right, y down, z forward.
T_FORWARD = np.array([[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)


def camera(name="cam", model="none", D=(), T=None, width=640, height=480, K_=K):
    return CameraModel(name, width, height, K_, D, model, np.eye(4) if T is None else T)


def no_occlusion(**kw):
    return ProjectionConfig(occlusion=False, **kw)


def project(points, cameras, cfg=None):
    return project_points(torch.tensor(points, dtype=torch.float32), cameras, cfg or no_occlusion())


def hand_distort(x, y, k1, k2, p1, p2, k3, k4=0.0, k5=0.0, k6=0.0):
    """OpenCV's distortion equations, written out for one point."""
    r2 = x * x + y * y
    radial = (1 + k1 * r2 + k2 * r2**2 + k3 * r2**3) / (1 + k4 * r2 + k5 * r2**2 + k6 * r2**3)
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return xd, yd


def fisheye_distort(x, y, k1=0.0, k2=0.0, k3=0.0, k4=0.0):
    """OpenCV's fisheye (ROS 'equidistant') equations, written out: theta = atan(r),
    theta_d = theta (1 + k1 theta^2 + k2 theta^4 + k3 theta^6 + k4 theta^8), (xd, yd) = theta_d / r (x, y)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    r = np.hypot(x, y)
    theta = np.arctan(r)
    theta_d = theta * (1 + k1 * theta**2 + k2 * theta**4 + k3 * theta**6 + k4 * theta**8)
    scale = np.divide(theta_d, r, out=np.ones_like(r), where=r > 0)  # 1 on the optical axis (the limit)
    return x * scale, y * scale


def fisheye_fold(k1=0.0, k2=0.0, k3=0.0, k4=0.0):
    """The angle off axis (radians) at which theta_d stops increasing, inf when it increases up to 90 deg."""
    theta = np.linspace(0, math.pi / 2, 400001)
    theta_d = theta * (1 + k1 * theta**2 + k2 * theta**4 + k3 * theta**6 + k4 * theta**8)
    falling = np.flatnonzero(np.diff(theta_d) <= 0)
    return theta[falling[0]] if falling.size else math.inf


def test_point_on_optical_axis_lands_on_principal_point():
    proj = project([[0.0, 0.0, 7.0]], [camera()])
    assert proj.uv.shape == (1, 2) and proj.uv.dtype == torch.float32
    assert proj.point.tolist() == [0] and proj.camera.tolist() == [0]
    assert proj.uv[0].tolist() == pytest.approx([320.5, 240.25])
    assert proj.depth[0].item() == pytest.approx(7.0)
    assert bool(proj.visible[0, 0])


def test_known_offset_and_extrinsics():
    proj = project([[1.0, 0.5, 10.0]], [camera()])
    assert proj.uv[0].tolist() == pytest.approx([320.5 + 500 * 0.1, 240.25 + 400 * 0.05])
    # Through a LiDAR -> camera rotation plus translation: a point 10 m ahead, 1 m left, camera 0.5 m up.
    T = T_FORWARD.copy()
    T[:3, 3] = [0.0, 0.5, 0.0]  # camera sits 0.5 m above the LiDAR: optical y (down) shifts by +0.5
    proj = project([[10.0, 1.0, 0.0]], [camera(T=T)])
    assert proj.uv[0].tolist() == pytest.approx([320.5 - 500 * 0.1, 240.25 + 400 * 0.05])
    assert proj.depth[0].item() == pytest.approx(10.0)


def pixel_of(x, y, coeffs, model):
    """The pixel the projection gives a point at normalized (x, y) and depth 4, on an identity camera."""
    cam = camera(model=model, D=coeffs, width=4000, height=4000, K_=[[500.0, 0.0, 2000.5], [0.0, 400.0, 2000.25],
                                                                      [0.0, 0.0, 1.0]])
    proj = project([[4.0 * x, 4.0 * y, 4.0]], [cam])
    assert proj.point.tolist() == [0]
    return proj.uv[0].double().numpy()


@pytest.mark.parametrize("x, y", [(0.3, -0.2), (-0.45, 0.35), (0.0, 0.0), (0.6, 0.5)])
def test_lens_model_matches_hand_formula_for_both_models(x, y):
    for model, coeffs in (("plumb_bob", PLUMB_BOB), ("rational_polynomial", RATIONAL)):
        xd, yd = hand_distort(x, y, *coeffs)
        # float32 pixels: about 1e-4 px at 2000 px
        np.testing.assert_allclose(pixel_of(x, y, coeffs, model), [500 * xd + 2000.5, 400 * yd + 2000.25], atol=5e-4)


def test_distortion_model_equivalences():
    for x, y in ((0.2, 0.1), (-0.4, 0.3)):
        plumb = pixel_of(x, y, PLUMB_BOB, "plumb_bob")
        assert np.array_equal(plumb, pixel_of(x, y, PLUMB_BOB + [0.0, 0.0, 0.0], "rational_polynomial"))
        undistorted = [500 * x + 2000.5, 400 * y + 2000.25]
        np.testing.assert_allclose(pixel_of(x, y, (), "none"), undistorted, atol=5e-4)
        np.testing.assert_allclose(pixel_of(x, y, PLUMB_BOB, "none"), undistorted, atol=5e-4)  # 'none' ignores D
        np.testing.assert_allclose(pixel_of(x, y, (), "plumb_bob"), undistorted, atol=5e-4)  # empty D: no distortion
        assert not np.allclose(plumb, undistorted, atol=1.0)


def test_projection_applies_distortion_per_camera():
    point = [1.5, -0.9, 6.0]
    cams = [camera("a", "plumb_bob", PLUMB_BOB), camera("b", "rational_polynomial", RATIONAL), camera("c")]
    proj = project([point], cams)
    for m, coeffs in enumerate([PLUMB_BOB, RATIONAL, [0.0] * 5]):
        xd, yd = hand_distort(point[0] / point[2], point[1] / point[2], *coeffs)
        assert proj.dense_uv()[m, 0].tolist() == pytest.approx([500 * xd + 320.5, 400 * yd + 240.25], rel=1e-5)


def back_project(uv, depth, cam, coeffs=None, iterations=30):
    """Pixel + depth -> LiDAR point; undistorts by fixed-point iteration when coefficients are given."""
    Kn = np.asarray(cam.K)
    xd = (uv[:, 0] - Kn[0, 2]) / Kn[0, 0]
    yd = (uv[:, 1] - Kn[1, 2]) / Kn[1, 1]
    x, y = xd.copy(), yd.copy()
    if coeffs is not None:
        k1, k2, p1, p2, k3, k4, k5, k6 = (list(coeffs) + [0.0] * 8)[:8]
        for _ in range(iterations):
            r2 = x * x + y * y
            radial = (1 + k1 * r2 + k2 * r2**2 + k3 * r2**3) / (1 + k4 * r2 + k5 * r2**2 + k6 * r2**3)
            dx = 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
            dy = p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
            x, y = (xd - dx) / radial, (yd - dy) / radial
    cam_pts = np.stack([x * depth, y * depth, depth, np.ones_like(depth)], axis=1)
    return (np.linalg.inv(cam.T_cam_lidar) @ cam_pts.T).T[:, :3]


@pytest.mark.parametrize("model, coeffs", [("none", None), ("plumb_bob", PLUMB_BOB), ("rational_polynomial", RATIONAL)])
def test_round_trip_recovers_points(model, coeffs):
    rng = np.random.default_rng(0)
    T = T_FORWARD.copy()
    T[:3, 3] = [0.1, -0.3, 0.2]
    cam = camera(model=model, D=coeffs or (), T=T)
    points = np.column_stack([rng.uniform(5, 40, 200), rng.uniform(-8, 8, 200), rng.uniform(-2, 2, 200)])
    proj = project(points, [cam])
    assert bool(proj.visible.any())
    seen = proj.point.numpy()  # one camera: a pair per seen point, in point order
    assert np.array_equal(seen, np.flatnonzero(proj.visible[0].numpy()))
    recovered = back_project(proj.uv.double().numpy(), proj.depth.double().numpy(), cam, coeffs)
    np.testing.assert_allclose(recovered, points[seen], atol=2e-4 * 40)


def test_bounds_use_pixel_centers_and_margin():
    cam = camera(width=640, height=480)
    # Points at depth 1 whose u lands at -0.4, -0.6, 639.4, 639.6 (v at the center).
    us = np.array([-0.4, -0.6, 639.4, 639.6])
    pts = np.column_stack([(us - 320.5) / 500, np.zeros(4), np.ones(4)])
    assert project(pts, [cam]).visible[0].tolist() == [True, False, True, False]
    us = np.array([9.4, 9.6, 629.4, 629.6])  # margin 10: the usable span is [9.5, 629.5)
    pts = np.column_stack([(us - 320.5) / 500, np.zeros(4), np.ones(4)])
    assert project(pts, [cam], no_occlusion(image_margin_px=10.0)).visible[0].tolist() == [False, True, True, False]
    vs = np.array([-0.6, 479.4])
    pts = np.column_stack([np.zeros(2), (vs - 240.25) / 400, np.ones(2)])
    assert project(pts, [cam]).visible[0].tolist() == [False, True]


def test_depth_must_exceed_min_depth():
    pts = [[0, 0, -5.0], [0, 0, 0.0], [0, 0, 0.4], [0, 0, 0.6]]
    proj = project(pts, [camera()], no_occlusion(min_depth_m=0.5))
    assert proj.visible[0].tolist() == [False, False, False, True]
    assert torch.isfinite(proj.uv).all()


def test_folded_over_distortion_is_not_seen():
    # k1 = -0.5: the distorted radius peaks at r = 0.816 and falls back towards the image center beyond it.
    cam = camera(model="plumb_bob", D=[-0.5, 0, 0, 0, 0])
    xd, _ = hand_distort(1.3, 0.0, -0.5, 0, 0, 0, 0)
    assert 0 <= 500 * xd + 320.5 < 640  # the far point's formula lands inside the image...
    proj = project([[0.3, 0, 1.0], [1.3, 0, 1.0]], [cam])
    assert proj.visible[0].tolist() == [True, False]  # ...but it is outside the field of view


def reference_visibility(points, cam, coeffs, margin=0.0, min_depth=0.5):
    """Every point through the full lens model (no field-of-view shortcut), in float64 numpy."""
    pc = (cam.T_cam_lidar[:3, :3] @ points.T).T + cam.T_cam_lidar[:3, 3]
    z = pc[:, 2]
    zs = np.where(z > min_depth, z, 1.0)
    x, y = pc[:, 0] / zs, pc[:, 1] / zs
    xd, yd = hand_distort(x, y, *coeffs)
    u, v = 500 * xd + 320.5, 400 * yd + 240.25
    k1, k2, _, _, k3, k4, k5, k6 = (list(coeffs) + [0.0] * 8)[:8]

    def distorted_radius(rr):
        return rr * (1 + k1 * rr**2 + k2 * rr**4 + k3 * rr**6) / (1 + k4 * rr**2 + k5 * rr**4 + k6 * rr**6)

    # The lens model is valid up to its first fold, where the distorted radius stops growing.
    grid = np.linspace(0, 20, 400001)
    falling = np.flatnonzero(np.diff(distorted_radius(grid)) <= 0)
    fold = grid[falling[0]] if falling.size else np.inf
    unfolded = np.sqrt(x * x + y * y) < fold
    inside = (u >= margin - 0.5) & (u < 639.5 - margin) & (v >= margin - 0.5) & (v < 479.5 - margin)
    return (z > min_depth) & inside & unfolded


@pytest.mark.parametrize("model, coeffs", [("none", [0.0] * 5), ("plumb_bob", PLUMB_BOB),
                                           ("plumb_bob", [-0.5, 0.05, 0.002, 0.001, 0.0]),
                                           ("rational_polynomial", RATIONAL)])
def test_field_of_view_shortcut_never_changes_visibility(model, coeffs):
    rng = np.random.default_rng(4)
    # Directions over the whole sphere, many of them near the image border and beyond.
    points = rng.normal(size=(20000, 3)) * rng.uniform(1, 30, (20000, 1))
    cam = camera(model=model, D=coeffs)
    got = project(points, [cam]).visible[0].numpy()
    expected = reference_visibility(points, cam, coeffs)
    assert got.sum() > 100
    disagree = np.flatnonzero(got != expected)
    assert disagree.size <= 2, disagree  # float32 vs float64 right at the image border at most


def full_lens_visibility(points, cam, margin=0.0, min_depth=0.5, with_pixels=False):
    """Every (camera, point) pair through the whole lens model in float64, with any K (skew included):
    in front, before the lens folds, inside the image. No cull of any kind. With `with_pixels`, also
    the (N, 2) pixels."""
    pc = (cam.T_cam_lidar[:3, :3] @ points.T).T + cam.T_cam_lidar[:3, 3]
    z = pc[:, 2]
    zs = np.where(z > min_depth, z, 1.0)
    x, y = pc[:, 0] / zs, pc[:, 1] / zs
    if cam.distortion_model == "equidistant":
        fisheye = list(cam.D) or [0.0] * 4
        xd, yd = fisheye_distort(x, y, *fisheye)
        unfolded = np.arctan(np.hypot(x, y)) < fisheye_fold(*fisheye)
    else:
        lens, coeffs = lens_coefficients(cam.distortion_model, cam.D)
        assert lens == "rational"
        xd, yd = hand_distort(x, y, *coeffs)
        k1, k2, _, _, k3, k4, k5, k6 = coeffs
        grid = np.linspace(0, 20, 400001)
        g2 = grid**2
        rd = grid * (1 + k1 * g2 + k2 * g2**2 + k3 * g2**3) / (1 + k4 * g2 + k5 * g2**2 + k6 * g2**3)
        falling = np.flatnonzero(np.diff(rd) <= 0)
        fold = grid[falling[0]] if falling.size else np.inf
        unfolded = np.sqrt(x * x + y * y) < fold
    K = cam.K
    u, v = K[0, 0] * xd + K[0, 1] * yd + K[0, 2], K[1, 1] * yd + K[1, 2]
    inside = (u >= margin - 0.5) & (u < cam.width - 0.5 - margin)
    inside &= (v >= margin - 0.5) & (v < cam.height - 0.5 - margin)
    visible = (z > min_depth) & inside & unfolded
    return (visible, np.stack([u, v], axis=1)) if with_pixels else visible


def surround_rig():
    """Six cameras around a car (mixed sizes, lens models, skew and off-center principal points)."""
    rig = []
    models = [("plumb_bob", [-0.05, 0.01, 0.0, 0.0, 0.0]), ("plumb_bob", PLUMB_BOB), ("rational_polynomial", RATIONAL),
              ("none", []), ("plumb_bob", [-0.5, 0.05, 0.002, 0.001, 0.0]), ("plumb_bob", [0.3, 0.2, 0.01, -0.02, 0.1])]
    sizes = [(1600, 900), (640, 480), (1280, 720), (640, 480), (800, 600), (1600, 900)]
    for i, (yaw_deg, (model, D), (w, h)) in enumerate(zip((0, -55, 55, 180, -110, 110), models, sizes)):
        yaw = math.radians(yaw_deg)
        forward, left = np.array([math.cos(yaw), math.sin(yaw), 0.0]), np.array([-math.sin(yaw), math.cos(yaw), 0.0])
        T = np.eye(4)
        T[:3, :3] = np.stack([-left, [0.0, 0.0, -1.0], forward])
        T[:3, 3] = -T[:3, :3] @ np.array([0.1 * i, 0.0, 0.3])
        K_ = [[0.8 * w, 2.0 * (i % 2), 0.52 * w], [0.0, 0.8 * w, 0.47 * h], [0.0, 0.0, 1.0]]
        rig.append(CameraModel(f"cam{i}", w, h, K_, D, model, T))
    return rig


@pytest.mark.parametrize("margin", [0.0, 12.0, -25.0])
def test_view_box_cull_never_changes_visibility_on_a_surround_rig(margin):
    rng = np.random.default_rng(5)
    # Directions over the whole sphere, ranges from 0.2 to 60 m: many pairs near and beyond every border.
    points = rng.normal(size=(30000, 3)) * rng.uniform(0.2, 60, (30000, 1))
    _check_against_full_lens(points, surround_rig(), margin)


def _check_against_full_lens(points, rig, margin) -> None:
    """The kernel's visibility equals the full lens model's (up to float32 vs float64 right at a border), and
    the pixel of every seen pair is the full lens model's."""
    proj = project(points, rig, no_occlusion(image_margin_px=margin))
    for m, cam in enumerate(rig):
        expected, pixels = full_lens_visibility(points, cam, margin, with_pixels=True)
        got = proj.visible[m].numpy()
        assert expected.sum() > 100
        assert np.flatnonzero(got != expected).size <= 2, cam.name
        mine = (proj.camera == m).numpy()
        np.testing.assert_allclose(proj.uv.numpy()[mine], pixels[proj.point.numpy()[mine]], atol=0.05)


def test_view_box_contains_every_seen_direction():
    rig = surround_rig()
    for cam in rig:
        lens, coeffs = lens_coefficients(cam.distortion_model, cam.D)
        assert lens == "rational"
        radius = field_of_view_radius(cam, lens, coeffs)
        (cx, hx), (cy, hy) = view_box(cam, lens, coeffs, radius)
        # Undistorted directions on a fine grid over the cone; those the lens puts in the image lie in the box.
        r = np.linspace(0, radius, 400)
        a = np.linspace(0, 2 * math.pi, 720, endpoint=False)
        x, y = (r[:, None] * np.cos(a)).ravel(), (r[:, None] * np.sin(a)).ravel()
        xd, yd = hand_distort(x, y, *coeffs)
        u, v = cam.K[0, 0] * xd + cam.K[0, 1] * yd + cam.K[0, 2], cam.K[1, 1] * yd + cam.K[1, 2]
        seen = (u >= -0.5) & (u < cam.width - 0.5) & (v >= -0.5) & (v < cam.height - 0.5)
        assert seen.any()
        assert (np.abs(x[seen] - cx) <= hx).all() and (np.abs(y[seen] - cy) <= hy).all(), cam.name
    assert view_box(rig[0], "rational", np.zeros(8), math.inf) is None


def test_unbounded_field_of_view_culls_only_by_depth(monkeypatch):
    # A cone the search could not bound: the view box must not cull anything either.
    monkeypatch.setattr(geometry, "field_of_view_radius", lambda cam, lens, coeffs, grow_px=0.0: math.inf)
    monkeypatch.setattr(geometry, "_TABLE_CACHE", {})
    rng = np.random.default_rng(6)
    points = rng.normal(size=(5000, 3)) * rng.uniform(0.2, 30, (5000, 1))
    cam = camera()
    proj = project(points, [cam])
    expected, pixels = full_lens_visibility(points, cam, with_pixels=True)
    assert np.array_equal(proj.visible[0].numpy(), expected)
    np.testing.assert_allclose(proj.uv.numpy(), pixels[proj.point.numpy()], atol=0.05)


# ------------------------------------------------------------------------------- equidistant (fisheye) lens
FISHEYE_KS = [[0.0, 0.0, 0.0, 0.0], [0.05, -0.01, 0.002, -0.0005], [-0.02, 0.003, -0.001, 0.0002],
              [0.3, 0.1, -0.05, 0.01], [-0.12, 0.01, 0.0, 0.0]]


def optical_points(theta, phi, depth):
    """Points at angle `theta` off the optical axis, azimuth `phi` and depth z, in the optical frame."""
    r = np.tan(theta)
    return np.column_stack([r * np.cos(phi) * depth, r * np.sin(phi) * depth, depth])


@pytest.mark.parametrize("D", FISHEYE_KS)
def test_equidistant_matches_the_fisheye_formula(D):
    rng = np.random.default_rng(11)
    n = 3000
    # Up to 88 degrees off axis (tan = 29), a few on the axis and very near it.
    theta = np.concatenate([np.zeros(3), [1e-9, 1e-5, 1e-3], rng.uniform(0, math.radians(88), n)])
    cam_points = optical_points(theta, rng.uniform(-math.pi, math.pi, theta.size), rng.uniform(1, 20, theta.size))
    T = T_FORWARD.copy()
    T[:3, 3] = [0.1, -0.3, 0.2]  # through extrinsics: LiDAR points whose optical-frame coordinates are these
    points = ((cam_points - T[:3, 3]) @ T[:3, :3]).astype(np.float32)  # what the kernel gets: float32
    K_ = [[500.0, 1.5, 2000.5], [0.0, 400.0, 2000.25], [0.0, 0.0, 1.0]]
    cam = camera(model="equidistant", D=D, T=T, width=4000, height=4000, K_=K_)
    proj = project(points, [cam])
    assert proj.point.tolist() == list(range(theta.size))  # all in front, before any fold, inside the image
    pc = points.astype(np.float64) @ T[:3, :3].T + T[:3, 3]
    xd, yd = fisheye_distort(pc[:, 0] / pc[:, 2], pc[:, 1] / pc[:, 2], *D)
    expected = np.column_stack([500 * xd + 1.5 * yd + 2000.5, 400 * yd + 2000.25])
    np.testing.assert_allclose(proj.uv.double().numpy(), expected, atol=2e-3, rtol=0)  # float32 pixels
    np.testing.assert_allclose(proj.depth.double().numpy(), pc[:, 2], rtol=1e-6)
    assert proj.uv[:3].tolist() == [[2000.5, 2000.25]] * 3  # on the axis: the principal point exactly
    # All-zero coefficients and no coefficients are the same lens; a pinhole it is not.
    if not any(D):
        no_coeffs = project(points, [camera(model="equidistant", D=(), T=T, width=4000, height=4000, K_=K_)])
        assert torch.equal(no_coeffs.uv, proj.uv)


def test_fisheye_sees_80_degrees_off_axis_where_a_pinhole_of_the_same_K_does_not():
    K_ = [[300.0, 0.0, 640.5], [0.0, 300.0, 400.5], [0.0, 0.0, 1.0]]
    theta = math.radians(80)
    pts = optical_points(np.array([theta, theta, math.radians(100)]), np.array([0.0, math.pi, 0.0]),
                         np.array([1.0, 1.0, -1.0]))  # 80 degrees to the right, 80 to the left, 100 to the right
    fisheye = camera(model="equidistant", D=[0.0] * 4, width=1280, height=800, K_=K_)
    proj = project(pts, [fisheye])
    assert proj.point.tolist() == [0, 1]  # behind the camera (z < 0) is never seen, fisheye or not
    np.testing.assert_allclose(proj.uv.double().numpy(), [[640.5 + 300 * theta, 400.5], [640.5 - 300 * theta, 400.5]],
                               atol=1e-3)
    assert project(pts, [camera(model="none", width=1280, height=800, K_=K_)]).point.numel() == 0
    assert project(pts, [camera(model="plumb_bob", D=[0.0] * 5, width=1280, height=800, K_=K_)]).point.numel() == 0
    # The depth rule holds as for every lens: z must exceed the minimum depth, however wide the lens.
    near = project(pts * 0.4, [fisheye], no_occlusion(min_depth_m=0.5))  # z = 0.4 of the first two
    assert near.point.numel() == 0


def test_folded_over_fisheye_is_not_seen():
    # k1 = -0.3: theta_d = theta - 0.3 theta^3 peaks at theta = 1 / sqrt(0.9) (60.4 degrees), then falls back.
    cam = camera(model="equidistant", D=[-0.3, 0.0, 0.0, 0.0], K_=[[250.0, 0.0, 320.5], [0.0, 250.0, 240.25],
                                                                   [0.0, 0.0, 1.0]])
    pts = optical_points(np.radians([30.0, 55.0, 75.0, 85.0]), np.zeros(4), np.full(4, 2.0))
    xd, _ = fisheye_distort(pts[:, 0] / pts[:, 2], pts[:, 1] / pts[:, 2], -0.3)
    u = 250 * xd + 320.5
    assert ((u >= -0.5) & (u < 639.5)).all()  # the formula puts all four in the image...
    assert project(pts, [cam]).visible[0].tolist() == [True, True, False, False]  # ...past the fold is not seen
    lens, coeffs = lens_coefficients("equidistant", cam.D)
    assert lens == "equidistant"
    radius = field_of_view_radius(cam, lens, coeffs)
    assert math.degrees(math.atan(radius)) == pytest.approx(math.degrees(1 / math.sqrt(0.9)), abs=0.02)


def test_fisheye_field_of_view_follows_the_image_corners():
    # k = 0, fx = fy = 500 on 1280 x 800: the corners are 1.51 rad (86.5 degrees) off axis.
    K_ = [[500.0, 0.0, 639.5], [0.0, 500.0, 399.5], [0.0, 0.0, 1.0]]
    cam = camera(model="equidistant", D=[0.0] * 4, width=1280, height=800, K_=K_)
    lens, coeffs = lens_coefficients("equidistant", cam.D)
    corner_theta = math.hypot(640 / 500, 400 / 500)
    assert corner_theta < math.pi / 2
    limit = math.atan(field_of_view_radius(cam, lens, coeffs))
    # A conservative cone, just past the corners (the search allows 1% on the distorted radius; theta_d = theta).
    assert corner_theta <= limit <= 1.01 * corner_theta + 1e-3
    # The same lens with a short focal length has its corners past 90 degrees: the whole half space in front.
    wide = camera(model="equidistant", D=[0.0] * 4, width=1280, height=800,
                  K_=[[300.0, 0.0, 639.5], [0.0, 300.0, 399.5], [0.0, 0.0, 1.0]])
    assert field_of_view_radius(wide, lens, coeffs) == math.inf and view_box(wide, lens, coeffs, math.inf) is None


def fisheye_rig():
    """Fisheye cameras around a car: a wide one whose image reaches past 90 degrees (no finite cone), one whose
    cone ends at its corners, one that folds back inside its image, others with mixed coefficients; skew and
    off-center principal points."""
    specs = [((1280, 800), 300.0, [0.05, -0.01, 0.002, -0.0005]), ((1280, 800), 560.0, [0.0] * 4),
             ((1024, 768), 250.0, [-0.3, 0.0, 0.0, 0.0]), ((800, 600), 450.0, [0.1, 0.05, -0.02, 0.004]),
             ((1600, 900), 650.0, []), ((640, 480), 380.0, [-0.12, 0.01, 0.0, 0.0])]
    rig = []
    for i, (yaw_deg, ((w, h), f, D)) in enumerate(zip((0, -70, 70, 180, -125, 125), specs)):
        yaw = math.radians(yaw_deg)
        forward, left = np.array([math.cos(yaw), math.sin(yaw), 0.0]), np.array([-math.sin(yaw), math.cos(yaw), 0.0])
        T = np.eye(4)
        T[:3, :3] = np.stack([-left, [0.0, 0.0, -1.0], forward])
        T[:3, 3] = -T[:3, :3] @ np.array([0.1 * i, 0.0, 0.3])
        K_ = [[f, 2.0 * (i % 2), 0.52 * w], [0.0, 1.05 * f, 0.47 * h], [0.0, 0.0, 1.0]]
        rig.append(CameraModel(f"fish{i}", w, h, K_, D, "equidistant", T))
    return rig


@pytest.mark.parametrize("margin", [0.0, 12.0, -25.0])
def test_view_box_cull_never_changes_visibility_on_a_fisheye_rig(margin):
    """The field-of-view cone and the view box of a fisheye reject only pairs outside the image: the kernel
    agrees with the whole lens model run on every point in front of the camera, with no cull."""
    rng = np.random.default_rng(12)
    points = rng.normal(size=(30000, 3)) * rng.uniform(0.2, 60, (30000, 1))
    rig = fisheye_rig()
    _check_against_full_lens(points, rig, margin)
    bounded = sum(math.isfinite(_cone(cam, margin)[0]) for cam in rig)
    assert bounded == 5  # all but the first have a finite cone, so the cull is really exercised


def _cone(cam, margin=0.0):
    """(radius, lens, coefficients) of a camera as the projection finds them for an image margin."""
    lens, coeffs = lens_coefficients(cam.distortion_model, cam.D)
    return field_of_view_radius(cam, lens, coeffs, max(0.0, -margin)), lens, coeffs


def test_fisheye_view_box_contains_every_seen_direction():
    for cam in fisheye_rig():
        radius, lens, coeffs = _cone(cam)
        box = view_box(cam, lens, coeffs, radius)
        if box is None:
            assert radius == math.inf, cam.name
            continue
        (cx, hx), (cy, hy) = box
        # Directions on a fine grid of angles off axis over the cone; those the lens puts in the image lie in the box.
        theta = np.linspace(0, math.atan(radius), 600)
        a = np.linspace(0, 2 * math.pi, 720, endpoint=False)
        r = np.tan(theta)
        x, y = (r[:, None] * np.cos(a)).ravel(), (r[:, None] * np.sin(a)).ravel()
        xd, yd = fisheye_distort(x, y, *(list(cam.D) or [0.0] * 4))
        u, v = cam.K[0, 0] * xd + cam.K[0, 1] * yd + cam.K[0, 2], cam.K[1, 1] * yd + cam.K[1, 2]
        seen = (u >= -0.5) & (u < cam.width - 0.5) & (v >= -0.5) & (v < cam.height - 0.5)
        assert seen.any()
        assert (np.abs(x[seen] - cx) <= hx).all() and (np.abs(y[seen] - cy) <= hy).all(), cam.name


def test_lens_coefficients_per_model():
    assert lens_coefficients("equidistant", [0.1, 0.2, 0.3, 0.4])[1].tolist() == [0.1, 0.2, 0, 0, 0.3, 0.4, 0, 0]
    assert lens_coefficients("equidistant", [])[1].tolist() == [0.0] * 8
    assert lens_coefficients("rational_polynomial", RATIONAL) == ("rational", pytest.approx(RATIONAL))
    with pytest.raises(ValueError, match="'equidistant' needs 4 coefficients, got 5"):
        lens_coefficients("equidistant", [0.1] * 5)
    assert lens_coefficients("equidistant", [0.1] * 4)[0] == "equidistant"  # not a rational-polynomial model
    with pytest.raises(ValueError, match="camera 'fish'.*equidistant.*4"):
        project([[0, 0, 1.0]], [camera("fish", "equidistant", PLUMB_BOB)])
    # The kernel checks the model column itself.
    table = geometry.camera_table([camera()]).copy()
    table[0, geometry.COLUMNS.index("model")] = 7
    out = [np.empty(1, np.int64), np.empty((1, 2), np.float32), np.empty(1, np.float32), np.empty(1, np.int64)]
    with pytest.raises(ValueError, match="camera 0: unknown lens model 7$"):
        geometry._projection.project(np.zeros((1, 3), np.float32), table, 0.5, 0.0, 0, 0.5, *out)


def test_calibration_cache_follows_changes():
    cam = camera()
    first = project([[0.5, 0.0, 5.0]], [cam]).uv[0].tolist()
    cam.K[0, 2] += 10.0  # the same object, edited in place: its calibration is the cache key, not its identity
    second = project([[0.5, 0.0, 5.0]], [cam]).uv[0].tolist()
    assert second[0] == pytest.approx(first[0] + 10.0) and second[1] == pytest.approx(first[1])
    T = np.eye(4)
    T[0, 3] = 1.0  # one metre to the right in the optical frame: u grows by fx / z = 100 px
    assert project([[0.5, 0.0, 5.0]], [camera(T=T)]).uv[0, 0].item() == pytest.approx(first[0] + 100.0)


def reference_occlusion(points, cam, block, tolerance, margin=0.0):
    """The depth-buffer test written out in float64: per pixel block (clamped to the image's blocks) the
    nearest visible depth wins, and pairs up to `tolerance` behind it still count."""
    visible, pixels = full_lens_visibility(points, cam, margin, with_pixels=True)
    z = (cam.T_cam_lidar[:3, :3] @ points.T)[2] + cam.T_cam_lidar[2, 3]
    bx = np.clip(np.floor((pixels[:, 0] + 0.5) / block), 0, math.ceil(cam.width / block) - 1).astype(np.int64)
    by = np.clip(np.floor((pixels[:, 1] + 0.5) / block), 0, math.ceil(cam.height / block) - 1).astype(np.int64)
    cell = by * math.ceil(cam.width / block) + bx
    nearest = np.full(math.ceil(cam.width / block) * math.ceil(cam.height / block), np.inf)
    np.minimum.at(nearest, cell[visible], z[visible])
    return visible & (z <= np.where(visible, nearest[np.where(visible, cell, 0)], np.inf) + tolerance)


@pytest.mark.parametrize("block, margin", [(8, 0.0), (5, 12.0), (16, -25.0)])
def test_occlusion_matches_a_float64_depth_buffer_on_a_surround_rig(block, margin):
    rng = np.random.default_rng(7)
    points = rng.normal(size=(20000, 3)) * rng.uniform(1, 40, (20000, 1))
    cfg = ProjectionConfig(occlusion=True, occlusion_block_px=block, occlusion_tolerance_m=0.5,
                           image_margin_px=margin)
    rig = surround_rig()
    proj = project(points, rig, cfg)
    unoccluded = project(points, rig, no_occlusion(image_margin_px=margin)).visible
    for m, cam in enumerate(rig):
        expected = reference_occlusion(points, cam, block, 0.5, margin)
        got = proj.visible[m].numpy()
        assert (unoccluded[m].numpy() & ~expected).sum() >= 5, cam.name  # occlusion did hide something
        # float32 pixels right at a block edge or border may fall on the other side
        assert np.flatnonzero(got != expected).size <= 3, cam.name


def test_occlusion_near_point_hides_far_point_in_same_block_only():
    cfg = ProjectionConfig(occlusion=True, occlusion_block_px=8, occlusion_tolerance_m=0.5)
    # Pixel (320.5, 240.25) lies in block x 40, y 30 (blocks of 8 px, edges at -0.5 + 8k).
    near = [0.0, 0.0, 5.0]
    far_same_block = [0.002 * 20, 0.0, 20.0]  # u = 320.5 + 1.0, same block
    far_other_block = [0.03 * 20, 0.0, 20.0]  # u = 335.5, next block
    within_tolerance = [0.0, 0.001 * 5.3, 5.3]  # same block, 0.3 m behind the nearest
    pts = [near, far_same_block, far_other_block, within_tolerance]
    proj = project(pts, [camera()], cfg)
    assert proj.visible[0].tolist() == [True, False, True, True]
    assert project(pts, [camera()]).visible[0].tolist() == [True, True, True, True]  # occlusion off


def test_occlusion_is_per_camera():
    cfg = ProjectionConfig(occlusion=True)
    turned = np.eye(4)
    turned[:3, :3] = [[-1, 0, 0], [0, 1, 0], [0, 0, -1]]  # second camera looks backwards
    pts = [[0, 0, 5.0], [0, 0, 20.0], [0, 0, -10.0]]
    proj = project(pts, [camera("front"), camera("back", T=turned)], cfg)
    assert proj.visible.tolist() == [[True, False, False], [False, False, True]]


def test_vectorized_over_many_cameras_matches_one_at_a_time():
    rng = np.random.default_rng(1)
    pts = rng.uniform(-20, 20, (500, 3))
    cams = []
    for i in range(4):
        T = np.eye(4)
        a = i * math.pi / 2
        T[:3, :3] = [[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]]
        cams.append(camera(f"c{i}", ["none", "plumb_bob", "rational_polynomial", "equidistant"][i],
                           [(), PLUMB_BOB, RATIONAL, FISHEYE_KS[1]][i], T=T))
    cfg = ProjectionConfig(occlusion=True)
    together = project(pts, cams, cfg)
    for m, cam in enumerate(cams):
        alone = project(pts, [cam], cfg)
        assert torch.equal(alone.visible[0], together.visible[m])
        assert torch.allclose(alone.dense_uv()[0], together.dense_uv()[m])


def test_zero_cameras_give_empty_projection():
    proj = project(np.zeros((5, 3)), [])
    assert proj.uv.shape == (0, 2) and proj.visible.shape == (0, 5) and proj.point.numel() == 0
    assert proj.seen.tolist() == [False] * 5
    assert proj.visible.dtype == torch.bool


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="camera 'left'.*plumb_bob.*5"):
        project([[0, 0, 1.0]], [camera("left", "plumb_bob", [0.1, 0.2])])
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        project_points(torch.zeros(4, 2), [camera()], no_occlusion())


def box_points(center, size, yaw, n, rng):
    """Points filling an oriented box, plus its 8 corners so the extent is exact."""
    local = rng.uniform(-0.5, 0.5, (n, 3))
    corners = np.array([[sx, sy, sz] for sx in (-0.5, 0.5) for sy in (-0.5, 0.5) for sz in (-0.5, 0.5)])
    local = np.vstack([local, corners]) * size
    c, s = math.cos(yaw), math.sin(yaw)
    R = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    return local @ R.T + center


@pytest.mark.parametrize("yaw", [0.6, -1.2, 1.5])
def test_fit_box_recovers_rotated_box(yaw):
    rng = np.random.default_rng(2)
    center, size = np.array([10.0, -3.0, 0.75]), np.array([4.5, 1.8, 1.5])
    center_fit, size_fit, yaw_fit = fit_box(box_points(center, size, yaw, 300, rng))
    np.testing.assert_allclose(center_fit, center, atol=1e-6)
    np.testing.assert_allclose(size_fit, size, atol=1e-6)
    assert -math.pi / 2 < yaw_fit <= math.pi / 2
    assert math.isclose(math.cos(2 * (yaw_fit - yaw)), 1.0, abs_tol=1e-9)  # same axis (yaw is mod pi)


def test_fit_box_length_is_the_long_side_and_degenerate_inputs_work():
    rng = np.random.default_rng(3)
    _, size, yaw = fit_box(box_points(np.zeros(3), np.array([1.0, 3.0, 1.0]), 0.0, 100, rng))
    assert size.tolist() == pytest.approx([3.0, 1.0, 1.0])
    assert math.isclose(abs(yaw), math.pi / 2)
    center, size, _ = fit_box(np.array([[1.0, 2.0, 3.0]]))
    assert center.tolist() == [1.0, 2.0, 3.0] and size.tolist() == [0.0, 0.0, 0.0]
    line = np.column_stack([np.linspace(0, 2, 5), np.linspace(0, 2, 5), np.zeros(5)])
    center, size, yaw = fit_box(line)
    assert size[0] == pytest.approx(2 * math.sqrt(2)) and size[1] == pytest.approx(0.0, abs=1e-9)
    assert yaw == pytest.approx(math.pi / 4)
    with pytest.raises(ValueError, match="non-empty"):
        fit_box(np.zeros((0, 3)))


def test_pairs_are_sorted_by_camera_then_point_and_agree_with_the_dense_view():
    rng = np.random.default_rng(8)
    points = rng.normal(size=(4000, 3)) * rng.uniform(1, 40, (4000, 1))
    rig = surround_rig()
    proj = project(points, rig, ProjectionConfig(occlusion=True))
    n = points.shape[0]
    key = proj.camera * n + proj.point
    assert proj.point.numel() > 500 and bool((key[1:] > key[:-1]).all())  # camera-major, no duplicates
    assert proj.uv.shape == (proj.point.numel(), 2) and proj.depth.shape == proj.point.shape
    visible = proj.visible
    assert int(visible.sum()) == proj.point.numel()
    assert torch.equal(proj.seen, visible.any(dim=0))
    assert torch.equal(proj.cameras_per_point, visible.sum(dim=0))
    assert int((proj.cameras_per_point > 1).sum()) > 10  # the rig's views overlap: some points have two pairs
    dense = proj.dense_uv()
    assert bool((dense[~visible] == -1).all())
    again = PointProjection.from_dense(dense, visible)
    assert torch.equal(again.point, proj.point) and torch.equal(again.camera, proj.camera)
    assert torch.equal(again.uv, proj.uv)
    # Depth is the optical-frame z of each seen pair.
    for m, cam in enumerate(rig):
        mine = (proj.camera == m).numpy()
        pc = (cam.T_cam_lidar[:3, :3] @ points[proj.point.numpy()[mine]].T).T + cam.T_cam_lidar[:3, 3]
        np.testing.assert_allclose(proj.depth.numpy()[mine], pc[:, 2], rtol=1e-5, atol=1e-4)


def test_non_finite_points_are_never_seen_and_do_not_disturb_the_others():
    good = [[0.0, 0.0, 5.0], [0.5, 0.2, 8.0]]
    bad = [[np.nan, 0.0, 5.0], [0.0, np.inf, 5.0], [0.0, 0.0, np.inf], [-np.inf, 0.0, 5.0], [0.0, 0.0, np.nan]]
    cfg = ProjectionConfig(occlusion=True)
    alone = project(good, [camera()], cfg)
    mixed = project(bad[:2] + good[:1] + bad[2:] + good[1:], [camera()], cfg)
    assert mixed.point.tolist() == [2, 6]
    assert torch.equal(mixed.uv, alone.uv) and torch.equal(mixed.depth, alone.depth)


def test_minimum_depth_is_exclusive_and_not_blurred_by_the_cull():
    cfg = no_occlusion(min_depth_m=0.5)
    # z just above 0.5 in float32 is seen, z = 0.5 is not (the float32 cull keeps a slack below the minimum)
    just_above = float(np.nextafter(np.float32(0.5), np.float32(1.0)))
    proj = project([[0.0, 0.0, 0.5], [0.0, 0.0, just_above], [0.0, 0.0, 0.499]], [camera()], cfg)
    assert proj.point.tolist() == [1]


def test_points_of_any_float_dtype_and_layout_give_the_same_pairs():
    rng = np.random.default_rng(11)
    pts = rng.normal(size=(3000, 3)) * rng.uniform(1, 30, (3000, 1))
    rig = surround_rig()
    cfg = ProjectionConfig(occlusion=True)
    reference = project_points(torch.tensor(pts, dtype=torch.float32), rig, cfg)
    as_double = project_points(torch.tensor(pts, dtype=torch.float64), rig, cfg)  # rounded to float32 first
    strided = torch.tensor(pts.T.copy(), dtype=torch.float32).T  # column-major view
    assert not strided.is_contiguous()
    for other in (as_double, project_points(strided, rig, cfg)):
        assert torch.equal(other.point, reference.point) and torch.equal(other.camera, reference.camera)
        assert torch.equal(other.uv, reference.uv) and torch.equal(other.depth, reference.depth)
    moved = reference.to("cpu")
    assert moved.uv.device.type == "cpu" and torch.equal(moved.point, reference.point)


def test_projection_kernel_rejects_malformed_buffers():
    from ov_panoptic_ros.core import _projection

    table = geometry.camera_table([camera()])
    pts = np.zeros((4, 3), np.float32)

    def outs(capacity=4, index=np.int64):
        return (np.empty(capacity, index), np.empty((capacity, 2), np.float32), np.empty(capacity, np.float32),
                np.empty(1, np.int64))

    assert _projection.project(pts, table, 0.5, 0.0, 8, 0.5, *outs()) == 0
    with pytest.raises(ValueError, match="out_point"):
        _projection.project(pts, table, 0.5, 0.0, 8, 0.5, *outs(capacity=3))  # room for fewer than M * N pairs
    with pytest.raises(ValueError, match="out_point"):
        _projection.project(pts, table, 0.5, 0.0, 8, 0.5, *outs(index=np.int32))
    with pytest.raises(ValueError, match="points"):
        _projection.project(pts.astype(np.float64), table, 0.5, 0.0, 8, 0.5, *outs())
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        _projection.project(np.zeros((4, 2), np.float32), table, 0.5, 0.0, 8, 0.5, *outs())
    with pytest.raises(ValueError, match="block"):
        _projection.project(pts, table, 0.5, 0.0, -1, 0.5, *outs())
    with pytest.raises(ValueError, match="image size"):
        bad = table.copy()
        bad[0, geometry.COLUMNS.index("width")] = 0
        _projection.project(pts, bad, 0.5, 0.0, 8, 0.5, *outs())
    with pytest.raises(ValueError, match="contiguous"):
        _projection.project(pts, table, 0.5, 0.0, 8, 0.5, np.empty(8, np.int64)[::2], *outs()[1:])
    read_only = outs()
    read_only[1].setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        _projection.project(pts, table, 0.5, 0.0, 8, 0.5, *read_only)
    assert len(geometry.COLUMNS) == table.shape[1] and set(geometry.COEFF_NAMES) <= set(geometry.COLUMNS)


def test_fit_boxes_of_a_frame_match_one_box_at_a_time():
    rng = np.random.default_rng(12)
    points = rng.normal(size=(3000, 3)) * [10, 10, 1]
    ids = rng.choice([0, 3, 7, 8, 20], size=3000).astype(np.uint32)  # 0: no box; gaps between ids
    ids[5] = 21  # a one-point group
    boxes = geometry.fit_boxes(points, ids)
    assert boxes.ids.tolist() == [3, 7, 8, 20, 21]
    for k, i in enumerate(boxes.ids):
        center, size, yaw = fit_box(points[ids == i])
        np.testing.assert_array_equal(boxes.centers[k], center)
        np.testing.assert_array_equal(boxes.sizes[k], size)
        assert boxes.yaws[k] == yaw
        assert boxes.counts[k] == (ids == i).sum() and boxes.first[k] == np.flatnonzero(ids == i)[0]
    assert boxes.sizes[4].tolist() == [0.0, 0.0, 0.0] and np.array_equal(boxes.centers[4], points[5])
    none = geometry.fit_boxes(points, np.zeros(3000, np.uint32))
    assert none.ids.size == 0 and none.centers.shape == (0, 3)


@pytest.mark.parametrize("seed", range(4))
def test_fit_box_is_the_minimum_area_box_and_holds_every_point(seed):
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(int(rng.integers(3, 80)), 3)) * np.append(rng.uniform(0.2, 5, 2), 1.0)
    center, size, yaw = fit_box(points)
    c, s = math.cos(yaw), math.sin(yaw)
    local = (points[:, :2] - center[:2]) @ np.array([[c, -s], [s, c]])  # into the box frame
    assert (np.abs(local) <= size[:2] / 2 + 1e-9).all() and size[0] >= size[1]
    angles = np.linspace(0, math.pi / 2, 20001)  # a rectangle repeats every quarter turn
    along = points[:, 0, None] * np.cos(angles) + points[:, 1, None] * np.sin(angles)
    across = -points[:, 0, None] * np.sin(angles) + points[:, 1, None] * np.cos(angles)
    best = (np.ptp(along, axis=0) * np.ptp(across, axis=0)).min()
    assert size[0] * size[1] <= best + 1e-9 and size[0] * size[1] >= best * (1 - 1e-3)


def test_box_kernel_rejects_bad_groups():
    from ov_panoptic_ros.core import _boxes

    pts = np.zeros((4, 3))
    out = np.empty((1, 7))
    with pytest.raises(ValueError, match="non-empty"):
        _boxes.fit_boxes(pts, np.arange(4), np.array([2]), np.array([2]), out)
    with pytest.raises(ValueError, match="not a point index"):
        _boxes.fit_boxes(pts, np.array([0, 9]), np.array([0]), np.array([2]), out)
    with pytest.raises(ValueError, match="float64"):
        _boxes.fit_boxes(pts.astype(np.float32), np.arange(4), np.array([0]), np.array([4]), out)
    with pytest.raises(ValueError, match=r"\(N,\) ids"):
        geometry.fit_boxes(pts, np.ones(3))
