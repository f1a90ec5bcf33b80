"""Camera geometry: lens distortion, LiDAR-to-pixel projection with visibility, oriented boxes.

Pixel convention (OpenCV / ROS CameraInfo): integer pixel coordinates are pixel *centers*, so pixel
(0, 0) covers [-0.5, 0.5) x [-0.5, 0.5) and an image W pixels wide spans u in [-0.5, W - 0.5).
Projection is vectorized over all points and all cameras at once; there is no Python loop over points.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ov_panoptic_ros.core.config import ProjectionConfig
from ov_panoptic_ros.core.frame import CameraModel

# OpenCV's 8-coefficient rational model: k1, k2, p1, p2, k3, k4, k5, k6. plumb_bob is its first five.
NUM_RATIONAL_COEFFS = 8
COEFF_COUNTS = {"none": (0,), "plumb_bob": (0, 5), "rational_polynomial": (0, 8)}


@dataclass
class PointProjection:
    """Where each point lands in each camera. Row m belongs to `cameras[m]`.

    Use `uv` only where `visible`: it is -1 for points behind a camera or outside its field-of-view
    cone (the lens model is not evaluated there), the projected pixel otherwise.
    """

    uv: torch.Tensor  # (M, N, 2) float32 pixel coordinates in the original image
    visible: torch.Tensor  # (M, N) bool
    depth: torch.Tensor  # (M, N) float32, z in the camera optical frame (metres)

    @property
    def num_cameras(self) -> int:
        return int(self.uv.shape[0])


def rational_coefficients(model: str, D) -> np.ndarray:
    """Any supported distortion model as the 8 rational-polynomial coefficients (missing terms are zero)."""
    D = np.asarray(D, dtype=np.float64).reshape(-1)
    if model not in COEFF_COUNTS:
        raise ValueError(f"unknown distortion model {model!r} (supported: {', '.join(COEFF_COUNTS)})")
    out = np.zeros(NUM_RATIONAL_COEFFS)
    if model == "none":
        return out  # a 'none' camera ignores whatever D it carries
    if D.size not in COEFF_COUNTS[model]:
        raise ValueError(f"distortion model {model!r} needs {COEFF_COUNTS[model][-1]} coefficients, got {D.size}")
    out[: D.size] = D
    return out


def _horner(r2, coeffs):
    """1 + c1 r2 + c2 r2^2 + c3 r2^3, skipping terms given as None; None when every term is."""
    terms = list(coeffs)
    while terms and terms[-1] is None:
        terms.pop()
    if not terms:
        return None
    acc = terms[-1]
    for c in reversed(terms[:-1]):
        acc = r2 * acc if c is None else c + r2 * acc
    return 1 + r2 * acc


def _distort_terms(xn, yn, k1, k2, p1, p2, k3, k4, k5, k6):
    """OpenCV's rational distortion. Each coefficient is a tensor that broadcasts with xn, a float, or
    None for a term that is zero everywhere (skipped: undistorted cameras pay nothing)."""
    r2 = xn * xn + yn * yn
    num, den = _horner(r2, (k1, k2, k3)), _horner(r2, (k4, k5, k6))
    if den is None:
        radial = num
    else:
        radial = 1 / den if num is None else num / den
    xd = xn if radial is None else xn * radial
    yd = yn if radial is None else yn * radial
    if p1 is not None or p2 is not None:
        xy2 = 2 * xn * yn
        p1 = 0.0 if p1 is None else p1
        p2 = 0.0 if p2 is None else p2
        xd = xd + p1 * xy2 + p2 * (r2 + 2 * xn * xn)
        yd = yd + p1 * (r2 + 2 * yn * yn) + p2 * xy2
    return xd, yd


def _radial_factor(r2, k1, k2, k3, k4, k5, k6):
    num = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    den = 1 + r2 * (k4 + r2 * (k5 + r2 * k6))
    return num / den


def distort(xn, yn, model: str, D) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply a lens model to normalized image coordinates (x/z, y/z), with OpenCV's semantics.

    plumb_bob D = (k1, k2, p1, p2, k3); rational_polynomial D = (k1, k2, p1, p2, k3, k4, k5, k6).
    """
    xn = torch.as_tensor(xn, dtype=torch.float64 if isinstance(xn, np.ndarray) else None)
    yn = torch.as_tensor(yn, dtype=xn.dtype)
    coeffs = [float(c) if c else None for c in rational_coefficients(model, D)]
    return _distort_terms(xn, yn, *coeffs)


@dataclass
class _StackedCameras:
    """Per-camera calibration stacked into tensors so projection broadcasts over cameras."""

    R: torch.Tensor  # (M, 3, 3)
    t: torch.Tensor  # (M, 3)
    K: torch.Tensor  # (M, 3, 3)
    coeffs: torch.Tensor  # (M, 8)
    size: torch.Tensor  # (M, 2) width, height
    max_radius: torch.Tensor  # (M,) undistorted normalized radius beyond which no point can be seen


def _stack_cameras(cameras: list[CameraModel], device: torch.device) -> _StackedCameras:
    coeffs = []
    for cam in cameras:
        try:
            coeffs.append(rational_coefficients(cam.distortion_model, cam.D))
        except ValueError as e:
            raise ValueError(f"camera {cam.name!r}: {e}") from None
    T = np.stack([cam.T_cam_lidar for cam in cameras])
    radius = [field_of_view_radius(cam, c) for cam, c in zip(cameras, coeffs)]

    def f32(a):
        return torch.as_tensor(np.asarray(a), dtype=torch.float32, device=device)

    return _StackedCameras(
        R=f32(T[:, :3, :3]), t=f32(T[:, :3, 3]), K=f32(np.stack([cam.K for cam in cameras])),
        coeffs=f32(np.stack(coeffs)), size=f32([[cam.width, cam.height] for cam in cameras]), max_radius=f32(radius),
    )


# Undistorted normalized radii searched for a camera's field of view (up to ~89.4 degrees off axis).
_RADIUS_GRID = np.concatenate([np.linspace(0.0, 2.0, 2001), np.geomspace(2.0, 100.0, 600)[1:]])


def field_of_view_radius(cam: CameraModel, coeffs: np.ndarray) -> float:
    """The largest sqrt(x^2 + y^2) / z at which a point can be seen: a conservative field-of-view cone.

    Two limits: the distorted radius must not exceed the image corners' (plus what the tangential terms can
    add), and the undistorted radius must stay before the lens model folds back; beyond the fold a
    polynomial model maps points far outside the field of view back into the image, and they are not
    seen. Projection runs the lens model only inside this cone. `inf` when neither limit is reached.
    """
    k1, k2, p1, p2, k3, k4, k5, k6 = coeffs
    K = cam.K
    corners_u = np.array([-0.5, cam.width - 0.5, -0.5, cam.width - 0.5])
    corners_v = np.array([-0.5, -0.5, cam.height - 0.5, cam.height - 0.5])
    yd = (corners_v - K[1, 2]) / K[1, 1]
    xd = (corners_u - K[0, 2] - K[0, 1] * yd) / K[0, 0]
    corner_radius = float(np.sqrt(xd**2 + yd**2).max())
    r = _RADIUS_GRID
    r2 = r * r
    radial = _radial_factor(r2, k1, k2, k3, k4, k5, k6)
    rd = r * radial
    folded = np.flatnonzero((radial <= 0) | (np.diff(rd, prepend=-1.0) <= 0))
    end = int(folded[0]) if folded.size else r.size  # grid radii [0, end) come before the fold
    fold_limit = float(r[end - 1]) if folded.size else float("inf")
    tangential_reach = 3.0 * (abs(p1) + abs(p2)) * r2[:end]
    last_in_view = int(np.flatnonzero(rd[:end] - tangential_reach <= corner_radius * 1.01)[-1])  # r = 0 always is
    corner_limit = float(r[last_in_view + 1] * 1.01) if last_in_view + 1 < end else float("inf")
    return min(corner_limit, fold_limit)


def _check_points(points: torch.Tensor) -> None:
    if not isinstance(points, torch.Tensor) or points.ndim != 2 or points.shape[1] != 3:
        shape = tuple(points.shape) if hasattr(points, "shape") else type(points).__name__
        raise ValueError(f"points must be an (N, 3) tensor, got {shape}")


def project_points(points: torch.Tensor, cameras: list[CameraModel], cfg: ProjectionConfig) -> PointProjection:
    """Project LiDAR points into every camera and decide which camera sees which point.

    Depth is computed for every (camera, point) pair; the lens model runs only on pairs in front of the
    camera and inside its conservative field-of-view cone, so `uv` is -1 (off-image) for the others.
    """
    _check_points(points)
    n, device = points.shape[0], points.device
    m = len(cameras)
    if not m:
        empty = torch.zeros(0, n, device=device)
        return PointProjection(torch.zeros(0, n, 2, device=device), empty.bool(), empty)
    cams = _stack_cameras(cameras, device)
    x, y, depth = _camera_frame(points.float(), cams)  # each (M, N), contiguous
    limit = (cams.max_radius[:, None] * depth).square_()
    candidate = torch.addcmul(x * x, y, y).le_(limit).logical_and_(depth > cfg.min_depth_m)
    flat = candidate.view(-1).nonzero().squeeze(1)  # (camera, point) pairs as flat indices, camera-major
    cam = torch.div(flat, n, rounding_mode="floor")
    z = depth.view(-1).index_select(0, flat)
    xn, yn = x.view(-1).index_select(0, flat) / z, y.view(-1).index_select(0, flat) / z
    xd, yd = _distort_terms(xn, yn, *_per_pair(cams.coeffs, cam))
    fx, cx, fy, cy = (col.index_select(0, cam) for col in cams.K.view(m, 9)[:, [0, 2, 4, 5]].T.contiguous())
    (skew,) = _per_pair(cams.K[:, 0, 1:2], cam)
    u = fx * xd + cx if skew is None else fx * xd + skew * yd + cx
    v = fy * yd + cy
    width, height = _per_pair(cams.size, cam)
    ok = _inside_image(u, width, cfg.image_margin_px) & _inside_image(v, height, cfg.image_margin_px)
    uv_pairs = torch.stack((u, v), dim=-1)
    if cfg.occlusion:
        ok &= _unoccluded(uv_pairs, z, cam, ok, cams.size, cfg)
    uv = torch.full((m * n, 2), -1.0, device=device).index_copy_(0, flat, uv_pairs)
    visible = torch.zeros(m * n, dtype=torch.bool, device=device)
    visible[flat[ok]] = True
    return PointProjection(uv=uv.view(m, n, 2), visible=visible.view(m, n), depth=depth)


def _camera_frame(points: torch.Tensor, cams: _StackedCameras) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x, y, z of every point in every camera's optical frame, as three contiguous (M, N) tensors."""
    m = cams.R.shape[0]
    rows = cams.R.transpose(0, 1).reshape(3 * m, 3)  # row (axis a, camera c) = R[c, a]
    offset = cams.t.T.reshape(3 * m, 1)
    xyz = torch.addmm(offset, rows, points.T).view(3, m, -1)
    return xyz[0], xyz[1], xyz[2]


def _per_pair(values: torch.Tensor, cam: torch.Tensor) -> list[torch.Tensor | None]:
    """Each column of per-camera `values` (M, K) gathered per pair; None for a column that is all zero."""
    return [col.index_select(0, cam) if bool(col.any()) else None for col in values.T.contiguous()]


def _inside_image(coord: torch.Tensor, size, margin: float) -> torch.Tensor:
    """Pixel-center convention: an image axis of `size` pixels spans [-0.5, size - 0.5); the margin
    shrinks it at both ends. NaN or inf coordinates are outside."""
    return (coord >= margin - 0.5) & (coord < size - 0.5 - margin)


def _unoccluded(uv, depth, cam, candidate, size, cfg: ProjectionConfig) -> torch.Tensor:
    """Depth-buffer test over (camera, point) pairs: per camera and pixel block, the nearest depth wins
    and pairs up to `occlusion_tolerance_m` behind it still count. Only `candidate` pairs write the buffer."""
    block = float(cfg.occlusion_block_px)
    if block <= 0:
        raise ValueError(f"projection.occlusion_block_px must be positive, got {cfg.occlusion_block_px}")
    blocks_x = int(math.ceil(float(size[:, 0].max()) / block))
    blocks_y = int(math.ceil(float(size[:, 1].max()) / block))
    bx = torch.floor((uv[:, 0] + 0.5) / block).long().clamp_(0, blocks_x - 1)
    by = torch.floor((uv[:, 1] + 0.5) / block).long().clamp_(0, blocks_y - 1)
    key = (cam * blocks_y + by) * blocks_x + bx  # one depth-buffer cell per camera and block
    cells = size.shape[0] * blocks_y * blocks_x
    nearest = torch.full((cells,), float("inf"), device=uv.device)
    nearest.scatter_reduce_(0, key[candidate], depth[candidate], reduce="amin", include_self=True)
    return depth <= nearest[key] + cfg.occlusion_tolerance_m


def fit_box(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Minimum-area oriented box in the ground plane (rotating calipers on the xy hull); z from min/max.

    Returns center (3,), size (3,) as [length, width, height] with length along yaw, and yaw in
    (-pi/2, pi/2]. Collinear or single points give a box of zero width.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or pts.shape[0] == 0:
        raise ValueError(f"fit_box needs a non-empty (K, 3) array of points, got shape {pts.shape}")
    xy = pts[:, :2]
    angle = _min_area_angle(xy)
    rot = _rotation_2d(-angle)
    local = xy @ rot.T  # box-aligned coordinates
    lo, hi = local.min(axis=0), local.max(axis=0)
    extent = hi - lo
    center_xy = _rotation_2d(angle) @ ((lo + hi) / 2)
    if extent[1] > extent[0]:  # make the first side the long one
        angle += np.pi / 2
        extent = extent[::-1]
    zmin, zmax = pts[:, 2].min(), pts[:, 2].max()
    center = np.array([center_xy[0], center_xy[1], (zmin + zmax) / 2])
    size = np.array([extent[0], extent[1], zmax - zmin])
    return center, size, _wrap_half_turn(angle)


def _min_area_angle(xy: np.ndarray) -> float:
    """Angle of the hull edge whose aligned bounding rectangle has the least area."""
    hull = _convex_hull_xy(xy)
    if hull.shape[0] < 3:  # a point or a segment: align with its principal direction
        spread = xy - xy.mean(axis=0)
        if not np.any(spread):
            return 0.0
        _, _, vt = np.linalg.svd(spread, full_matrices=False)
        return float(np.arctan2(vt[0, 1], vt[0, 0]))
    edges = np.roll(hull, -1, axis=0) - hull
    angles = np.arctan2(edges[:, 1], edges[:, 0])  # (E,)
    cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]
    along = hull[None, :, 0] * cos + hull[None, :, 1] * sin  # (E, H) hull in each edge's frame
    across = -hull[None, :, 0] * sin + hull[None, :, 1] * cos
    area = np.ptp(along, axis=1) * np.ptp(across, axis=1)
    return float(angles[int(np.argmin(area))])


def _convex_hull_xy(xy: np.ndarray) -> np.ndarray:
    """Hull vertices in order; fewer than 3 rows when the points are collinear or identical."""
    from scipy.spatial import ConvexHull, QhullError

    if xy.shape[0] < 3:
        return xy
    try:
        return xy[ConvexHull(xy).vertices]
    except QhullError:  # collinear or coincident: no 2-D hull
        return xy[:2]


def _rotation_2d(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _wrap_half_turn(angle: float) -> float:
    """A box's yaw is defined modulo pi; map it to (-pi/2, pi/2]."""
    wrapped = math.pi / 2 - (math.pi / 2 - angle) % math.pi
    return float(wrapped)
