"""Camera geometry: lens distortion, LiDAR-to-pixel projection with visibility, oriented boxes.

Pixel convention (OpenCV / ROS CameraInfo): integer pixel coordinates are pixel *centers*, so pixel
(0, 0) covers [-0.5, 0.5) x [-0.5, 0.5) and an image W pixels wide spans u in [-0.5, W - 0.5).
Projection is vectorized over all points and all cameras at once; there is no Python loop over points.
"""
from __future__ import annotations

import math
import threading
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
    """The (camera, point) pairs in which a point is seen, sorted by camera and then by point.

    Sparse on purpose: a surround rig sees each point from one camera or two, so dense (M, N) grids would
    be mostly empty and cost more to fill than the projection itself. `visible` and `dense_uv` give the
    dense view for inspection and tests.
    """

    point: torch.Tensor  # (P,) int64 point index
    camera: torch.Tensor  # (P,) int64 camera index: row of the `cameras` list
    uv: torch.Tensor  # (P, 2) float32 pixel coordinates in the original image
    depth: torch.Tensor  # (P,) float32 z in the camera optical frame (metres)
    num_cameras: int
    num_points: int

    @classmethod
    def from_dense(cls, uv: torch.Tensor, visible: torch.Tensor, depth: torch.Tensor | None = None):
        """From (M, N, 2) pixels, an (M, N) bool mask and optionally (M, N) depths."""
        m, n = visible.shape
        camera, point = visible.nonzero(as_tuple=True)  # sorted by camera, then point
        depth = torch.ones(m, n, device=uv.device) if depth is None else depth
        return cls(point, camera, uv[camera, point].float(), depth[camera, point].float(), m, n)

    @property
    def visible(self) -> torch.Tensor:
        """(M, N) bool: camera m sees point n."""
        out = torch.zeros(self.num_cameras, self.num_points, dtype=torch.bool, device=self.point.device)
        out[self.camera, self.point] = True
        return out

    def dense_uv(self, fill: float = -1.0) -> torch.Tensor:
        """(M, N, 2) pixels, `fill` where the camera does not see the point."""
        out = torch.full((self.num_cameras, self.num_points, 2), fill, device=self.uv.device)
        out[self.camera, self.point] = self.uv
        return out

    @property
    def cameras_per_point(self) -> torch.Tensor:
        """(N,) int64: how many cameras see each point."""
        return torch.bincount(self.point, minlength=self.num_points)

    @property
    def seen(self) -> torch.Tensor:
        """(N,) bool: at least one camera sees the point."""
        return self.cameras_per_point > 0


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
    """1 + c1 r2 + c2 r2^2 + c3 r2^3, skipping terms given as None; None when every term is.
    One fused multiply-add per term (addcmul): the lens model runs on every candidate pair."""
    terms = [None if c is None else torch.as_tensor(c, dtype=r2.dtype, device=r2.device) for c in coeffs]
    while terms and terms[-1] is None:
        terms.pop()
    if not terms:
        return None
    acc = terms[-1]
    for c in reversed(terms[:-1]):
        acc = r2 * acc if c is None else torch.addcmul(c, r2, acc)
    return torch.addcmul(torch.ones((), dtype=r2.dtype, device=r2.device), r2, acc)


def _distort_terms(xn, yn, k1, k2, p1, p2, k3, k4, k5, k6, r2=None):
    """OpenCV's rational distortion. Each coefficient is a tensor that broadcasts with xn, a float, or
    None for a term that is zero everywhere (skipped: undistorted cameras pay nothing). `r2` is
    xn^2 + yn^2 when the caller has it already."""
    r2 = torch.addcmul(xn * xn, yn, yn) if r2 is None else r2
    num, den = _horner(r2, (k1, k2, k3)), _horner(r2, (k4, k5, k6))
    if den is None:
        radial = num
    else:
        radial = 1 / den if num is None else num / den
    xd = xn if radial is None else xn * radial
    yd = yn if radial is None else yn * radial
    if p1 is not None or p2 is not None:
        xy2 = torch.mul(xn, yn).mul_(2)
        # x += p1 xy2 + p2 (r2 + 2 x^2) and y += p1 (r2 + 2 y^2) + p2 xy2, one fused op per product
        if p1 is not None:
            p1 = torch.as_tensor(p1, dtype=xn.dtype, device=xn.device)
            xd = torch.addcmul(xd, p1, xy2)
            yd = torch.addcmul(yd, p1, torch.addcmul(r2, yn, yn, value=2.0))
        if p2 is not None:
            p2 = torch.as_tensor(p2, dtype=xn.dtype, device=xn.device)
            xd = torch.addcmul(xd, p2, torch.addcmul(r2, xn, xn, value=2.0))
            yd = torch.addcmul(yd, p2, xy2)
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


COEFF_NAMES = ("k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6")  # the rational model's order


@dataclass
class _StackedCameras:
    """Per-camera calibration stacked into tensors so projection broadcasts over cameras.

    `rows` / `offset` take a LiDAR point to three values per camera in one matrix product, laid out
    (3, M): z in the optical frame, then the view-box coordinates bx = (x - cx z) / hx and
    by = (y - cy z) / hy (see `view_box`). A pair can only be seen where |bx| <= z and |by| <= z, and
    x = hx bx + cx z, y = hy by + cy z.
    `table` holds every other per-camera value as one row per camera (`columns` names its columns);
    projection spreads it over each camera's range of pairs (`_PerPair`). A distortion coefficient, the skew
    and the image size have a column only when some camera needs one (otherwise the term is skipped).
    """

    rows: torch.Tensor  # (3M, 3)
    offset: torch.Tensor  # (3M, 1)
    table: torch.Tensor  # (M, K)
    columns: dict[str, int]
    size: torch.Tensor  # (M, 2) width, height
    image_limits: tuple[float, float] | None  # (width, height) when every camera has the same size


_STACK_CACHE: dict[tuple, _StackedCameras] = {}
_STACK_CACHE_SIZE = 16
_STACK_CACHE_LOCK = threading.Lock()


def _calibration_key(cameras: list[CameraModel], device: torch.device, grow_px: float) -> tuple:
    return (str(device), grow_px) + tuple(
        (cam.width, cam.height, cam.distortion_model, np.asarray(cam.K).tobytes(), np.asarray(cam.D).tobytes(),
         np.asarray(cam.T_cam_lidar).tobytes()) for cam in cameras)


def _stacked_cameras(cameras: list[CameraModel], device: torch.device, margin_px: float) -> _StackedCameras:
    """The stacked calibration, cached by value: a rig is calibrated once and projected every frame."""
    grow_px = max(0.0, -float(margin_px))  # a negative margin widens the usable image
    key = _calibration_key(cameras, device, grow_px)
    stacked = _STACK_CACHE.get(key)
    if stacked is None:
        stacked = _stack_cameras(cameras, device, grow_px)
        with _STACK_CACHE_LOCK:
            while len(_STACK_CACHE) >= _STACK_CACHE_SIZE:
                _STACK_CACHE.pop(next(iter(_STACK_CACHE)))
            _STACK_CACHE[key] = stacked
    return stacked


def _stack_cameras(cameras: list[CameraModel], device: torch.device, grow_px: float = 0.0) -> _StackedCameras:
    coeffs = []
    for cam in cameras:
        try:
            coeffs.append(rational_coefficients(cam.distortion_model, cam.D))
        except ValueError as e:
            raise ValueError(f"camera {cam.name!r}: {e}") from None
    T = np.stack([cam.T_cam_lidar for cam in cameras])
    R, t = T[:, :3, :3], T[:, :3, 3]
    radius = np.array([field_of_view_radius(cam, c, grow_px) for cam, c in zip(cameras, coeffs)])
    m = len(cameras)
    box = np.empty((4, m))  # cx, hx, cy, hy per camera
    rows, offset = np.empty((3, m, 3)), np.empty((3, m))  # row (value a, camera c)
    rows[0], offset[0] = R[:, 2], t[:, 2]
    for c, (cam, coeff, r) in enumerate(zip(cameras, coeffs, radius)):
        # No finite cone: a box so wide it culls nothing (z > min depth still applies).
        bounds = view_box(cam, coeff, float(r), grow_px) or ((0.0, _UNBOUNDED), (0.0, _UNBOUNDED))
        for axis, (center, half) in enumerate(bounds):
            box[2 * axis:2 * axis + 2, c] = center, half
            rows[1 + axis, c] = (R[c, axis] - center * R[c, 2]) / half
            offset[1 + axis, c] = (t[c, axis] - center * t[c, 2]) / half
    sizes = {(cam.width, cam.height) for cam in cameras}
    values = {"box_cx": box[0], "box_hx": box[1], "box_cy": box[2], "box_hy": box[3],
              "max_radius_sq": np.square(radius), "fx": [cam.K[0, 0] for cam in cameras],
              "cx": [cam.K[0, 2] for cam in cameras], "fy": [cam.K[1, 1] for cam in cameras],
              "cy": [cam.K[1, 2] for cam in cameras]}
    values.update((name, col) for name, col in zip(COEFF_NAMES, np.stack(coeffs).T) if col.any())
    if any(cam.K[0, 1] for cam in cameras):
        values["skew"] = [cam.K[0, 1] for cam in cameras]
    if len(sizes) > 1:
        values["width"], values["height"] = [cam.width for cam in cameras], [cam.height for cam in cameras]

    def f32(a):
        return torch.as_tensor(np.asarray(a), dtype=torch.float32, device=device)

    return _StackedCameras(
        rows=f32(rows.reshape(3 * m, 3)), offset=f32(offset.reshape(3 * m, 1)),
        table=f32(np.stack([np.asarray(v, dtype=np.float64) for v in values.values()], axis=1)),
        columns={name: k for k, name in enumerate(values)}, size=f32([[cam.width, cam.height] for cam in cameras]),
        image_limits=tuple(float(s) for s in sizes.pop()) if len(sizes) == 1 else None,
    )


FLOAT32_EXACT_INT = 1 << 24  # integers up to this are exact in float32: index arithmetic may run in float32
_UNBOUNDED = 1e6  # half-width of the view box of a camera whose field-of-view cone is unbounded

# Undistorted normalized radii searched for a camera's field of view (up to ~89.4 degrees off axis).
_RADIUS_GRID = np.concatenate([np.linspace(0.0, 2.0, 2001), np.geomspace(2.0, 100.0, 600)[1:]])


def field_of_view_radius(cam: CameraModel, coeffs: np.ndarray, grow_px: float = 0.0) -> float:
    """The largest sqrt(x^2 + y^2) / z at which a point can be seen: a conservative field-of-view cone.
    `grow_px` widens the image on every side (a negative image margin).

    Two limits: the distorted radius must not exceed the image corners' (plus what the tangential terms can
    add), and the undistorted radius must stay before the lens model folds back; beyond the fold a
    polynomial model maps points far outside the field of view back into the image, and they are not
    seen. Projection runs the lens model only inside this cone. `inf` when neither limit is reached.
    """
    k1, k2, p1, p2, k3, k4, k5, k6 = coeffs
    K = cam.K
    lo_u, hi_u, lo_v, hi_v = -0.5 - grow_px, cam.width - 0.5 + grow_px, -0.5 - grow_px, cam.height - 0.5 + grow_px
    corners_u = np.array([lo_u, hi_u, lo_u, hi_u])
    corners_v = np.array([lo_v, lo_v, hi_v, hi_v])
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


def view_box(cam: CameraModel, coeffs: np.ndarray, radius: float, grow_px: float = 0.0):
    """A conservative box of undistorted normalized coordinates (x/z, y/z) outside which no point of the
    field-of-view cone `radius` lands in the image (grown by `grow_px` on every side): ((center, half
    width) along x, (center, half height) along y), or None when the cone is unbounded.

    Inside the cone the lens is before its fold, so the radial factor rho(r^2) lies in [rho_min, rho_max]
    (> 0), and the tangential terms move a coordinate by at most 3 (|p1| + |p2|) r^2. A seen point has a
    distorted coordinate inside the image's, which bounds the undistorted one. Skew is allowed.
    """
    if not radius <= _RADIUS_GRID[-1]:  # inf (or beyond the searched radii): no bound
        return None
    k1, k2, p1, p2, k3, k4, k5, k6 = coeffs
    K = np.asarray(cam.K, dtype=np.float64)
    v_lo, v_hi = -0.5 - grow_px, cam.height - 0.5 + grow_px
    u_lo, u_hi = -0.5 - grow_px, cam.width - 0.5 + grow_px
    yd = np.array([v_lo - K[1, 2], v_hi - K[1, 2]]) / K[1, 1]
    xd_lo = float(((u_lo - K[0, 2] - K[0, 1] * yd) / K[0, 0]).min())
    xd_hi = float(((u_hi - K[0, 2] - K[0, 1] * yd) / K[0, 0]).max())
    r = _RADIUS_GRID[: int(np.searchsorted(_RADIUS_GRID, radius)) + 1]  # the grid up to one point past the cone
    rho = _radial_factor(r * r, k1, k2, k3, k4, k5, k6)
    rho_min, rho_max = float(rho.min()) * (1 - 1e-3), float(rho.max()) * (1 + 1e-3)  # slack between grid points
    if not rho_min > 0:
        return None
    reach = 3.0 * (abs(p1) + abs(p2)) * radius * radius
    box = []
    for lo, hi in ((xd_lo, xd_hi), (float(yd.min()), float(yd.max()))):
        top, bottom = hi + reach, lo - reach
        upper = top / (rho_min if top >= 0 else rho_max)
        lower = bottom / (rho_min if bottom <= 0 else rho_max)
        upper, lower = min(upper, radius), max(lower, -radius)
        pad = 1e-3 * max(1.0, upper - lower)  # far above float32 rounding of the box test
        upper, lower = upper + pad, lower - pad
        box.append(((upper + lower) / 2, (upper - lower) / 2))
    return tuple(box)


def _check_points(points: torch.Tensor) -> None:
    if not isinstance(points, torch.Tensor) or points.ndim != 2 or points.shape[1] != 3:
        shape = tuple(points.shape) if hasattr(points, "shape") else type(points).__name__
        raise ValueError(f"points must be an (N, 3) tensor, got {shape}")


def project_points(points: torch.Tensor, cameras: list[CameraModel], cfg: ProjectionConfig) -> PointProjection:
    """Project LiDAR points into every camera and decide which camera sees which point.

    Depth is computed for every (camera, point) pair in one matrix product, together with a conservative
    view box per camera (`view_box`); the lens model, the image bounds and the occlusion test run only on
    pairs in front of a camera and inside its box. The cull never changes which pairs are visible: it
    only skips pairs that cannot land in the image.
    """
    _check_points(points)
    n, device = points.shape[0], points.device
    m = len(cameras)
    if not m or not n:
        none = torch.zeros(0, dtype=torch.long, device=device)
        return PointProjection(none, none, torch.zeros(0, 2, device=device), torch.zeros(0, device=device), m, n)
    cams = _stacked_cameras(cameras, device, cfg.image_margin_px)
    frame = torch.addmm(cams.offset, cams.rows, points.float().T).view(3, m, n)
    depth, bx, by = frame[0], frame[1], frame[2]  # each (M, N), contiguous
    # In front (z > min depth) and inside the view box (|bx|, |by| <= z); the box is slack, so < is fine.
    reach = frame[1:].abs()
    reach = torch.maximum(reach[0], reach[1], out=reach[0]).clamp_min_(cfg.min_depth_m)
    flat = torch.lt(reach, depth).view(-1).nonzero().squeeze(1)  # candidate pairs, camera-major
    segments = _ranges(flat, [c * n for c in range(m + 1)])  # each camera's candidate pairs
    point = flat.clone()
    value = _PerPair(cams, segments, flat.numel())
    for c, (start, end) in enumerate(segments):
        point[start:end] -= c * n
    z = depth.reshape(-1).index_select(0, flat)
    xn = torch.addcmul(value("box_cx"), value("box_hx"), bx.reshape(-1).index_select(0, flat).div_(z))
    yn = torch.addcmul(value("box_cy"), value("box_hy"), by.reshape(-1).index_select(0, flat).div_(z))
    r2 = torch.addcmul(xn * xn, yn, yn)
    ok = r2 <= value("max_radius_sq")  # the field-of-view cone: before the lens folds
    xd, yd = _distort_terms(xn, yn, *(value(name) for name in COEFF_NAMES), r2=r2)
    u = torch.addcmul(value("cx"), value("fx"), xd)
    if "skew" in cams.columns:
        u.addcmul_(value("skew"), yd)
    v = torch.addcmul(value("cy"), value("fy"), yd)
    width, height = cams.image_limits or (value("width"), value("height"))
    margin = cfg.image_margin_px
    ok &= _inside_image(u, width, margin)
    ok &= _inside_image(v, height, margin)
    if cfg.occlusion:
        ok &= _unoccluded(u, v, z, segments, ok, cams.size, cfg)
    keep = ok.nonzero().squeeze(1)
    cam = torch.empty_like(keep)  # kept pairs stay camera-major: fill each camera's range
    for c, (start, end) in enumerate(_ranges(keep, [start for start, _ in segments] + [len(flat)])):
        cam[start:end] = c
    uv = torch.stack((u.index_select(0, keep), v.index_select(0, keep))).T  # (P, 2) view of two rows
    return PointProjection(point.index_select(0, keep), cam, uv, z.index_select(0, keep), m, n)


def _ranges(sorted_index: torch.Tensor, edges: list[int]) -> list[tuple[int, int]]:
    """[start, end) of the values in each [edges[c], edges[c + 1]) of a sorted index: a camera's pairs."""
    bounds = torch.searchsorted(sorted_index, torch.tensor(edges, device=sorted_index.device)).tolist()
    return list(zip(bounds[:-1], bounds[1:]))


class _PerPair:
    """Each pair's camera values, one contiguous row per value: filled camera by camera over the
    pairs' contiguous per-camera ranges (no per-pair gather), built once for all values."""

    def __init__(self, cams: _StackedCameras, segments: list[tuple[int, int]], num_pairs: int):
        self.columns = cams.columns
        self.rows = cams.table.new_empty(cams.table.shape[1], num_pairs)
        for c, (start, end) in enumerate(segments):
            self.rows[:, start:end] = cams.table[c].unsqueeze(1)

    def __call__(self, name: str) -> torch.Tensor | None:
        k = self.columns.get(name)
        return None if k is None else self.rows[k]


def _inside_image(coord: torch.Tensor, size, margin: float) -> torch.Tensor:
    """Pixel-center convention: an image axis of `size` pixels spans [-0.5, size - 0.5); the margin
    shrinks it at both ends. NaN or inf coordinates are outside."""
    return (coord >= margin - 0.5) & (coord < size - 0.5 - margin)


def _unoccluded(u, v, depth, segments, candidate, size, cfg: ProjectionConfig) -> torch.Tensor:
    """Depth-buffer test over (camera, point) pairs: per camera and pixel block, the nearest depth wins
    and pairs up to `occlusion_tolerance_m` behind it still count. Only `candidate` pairs write the buffer.
    `segments` are each camera's [start, end) range of the (camera-major) pairs."""
    block = float(cfg.occlusion_block_px)
    if block <= 0:
        raise ValueError(f"projection.occlusion_block_px must be positive, got {cfg.occlusion_block_px}")
    blocks_x = int(math.ceil(float(size[:, 0].max()) / block))
    blocks_y = int(math.ceil(float(size[:, 1].max()) / block))
    per_camera = blocks_y * blocks_x
    cells = size.shape[0] * per_camera
    bx = u.add(0.5).div_(block).floor_().clamp_(0, blocks_x - 1)
    by = v.add(0.5).div_(block).floor_().clamp_(0, blocks_y - 1)
    if cells <= FLOAT32_EXACT_INT:  # cell index in float32 (exact), one conversion to int64 at the end
        key = torch.addcmul(bx, by, torch.tensor(float(blocks_x), device=u.device))
    else:
        key = by.long().mul_(blocks_x).add_(bx.long())
    for c, (start, end) in enumerate(segments):
        key[start:end] += c * per_camera
    key = key.masked_fill_(~candidate, 0).long()  # pairs that are not candidates all use cell 0 ...
    nearest = torch.full((cells,), float("inf"), device=u.device)
    # ... with an infinite depth, which never wins
    nearest.scatter_reduce_(0, key, depth.masked_fill(~candidate, float("inf")), reduce="amin", include_self=True)
    return depth <= nearest.index_select(0, key).add_(cfg.occlusion_tolerance_m)


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
