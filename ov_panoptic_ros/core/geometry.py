"""Camera geometry: lens distortion, LiDAR-to-pixel projection with visibility, oriented boxes.

Pixel convention (OpenCV / ROS CameraInfo): integer pixel coordinates are pixel *centers*, so pixel
(0, 0) covers [-0.5, 0.5) x [-0.5, 0.5) and an image W pixels wide spans u in [-0.5, W - 0.5).
Projection runs in a small C kernel (`_projection.c`): one pass per camera over the points, no temporaries.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch

from ov_panoptic_ros.core import _boxes, _projection
from ov_panoptic_ros.core.config import ProjectionConfig
from ov_panoptic_ros.core.frame import COEFF_COUNTS, CameraModel

# OpenCV's 8-coefficient rational model: k1, k2, p1, p2, k3, k4, k5, k6. plumb_bob is its first five.
NUM_RATIONAL_COEFFS = 8
COLUMNS: tuple[str, ...] = _projection.COLUMNS  # the kernel's per-camera values, in its order
# The kernel's lens model per distortion model: the `model` column holds its index in _projection.LENS_MODELS.
# equidistant is OpenCV's cv::fisheye: k1, k2, k3, k4 of theta_d = theta (1 + k1 t^2 + k2 t^4 + k3 t^6 + k4 t^8).
LENS_OF_MODEL = {"none": "rational", "plumb_bob": "rational", "rational_polynomial": "rational",
                 "equidistant": "equidistant"}
_LENS_INDEX = {name: i for i, name in enumerate(_projection.LENS_MODELS)}
EQUIDISTANT_COEFF_NAMES = ("k1", "k2", "k3", "k4")  # the kernel columns that hold the fisheye coefficients


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

    def to(self, device) -> "PointProjection":
        """The same pairs on `device` (a no-op where they are)."""
        return PointProjection(self.point.to(device), self.camera.to(device), self.uv.to(device),
                               self.depth.to(device), self.num_cameras, self.num_points)

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


def lens_coefficients(model: str, D) -> tuple[str, np.ndarray]:
    """Any supported distortion model as the kernel's lens model ('rational' or 'equidistant') and its 8
    coefficients in the order of COEFF_NAMES (missing terms are zero). An equidistant camera's k1..k4 go to
    the columns of the same names (k1, k2, k3, k4); its p1, p2, k5, k6 are zero. D holds the model's
    COEFF_COUNTS coefficients, or none (all zero)."""
    D = np.asarray(D, dtype=np.float64).reshape(-1)
    if model not in COEFF_COUNTS:
        raise ValueError(f"unknown distortion model {model!r} (supported: {', '.join(COEFF_COUNTS)})")
    out = np.zeros(NUM_RATIONAL_COEFFS)
    lens = LENS_OF_MODEL[model]
    if model == "none":
        return lens, out  # a 'none' camera ignores whatever D it carries
    if D.size not in (0, COEFF_COUNTS[model]):
        raise ValueError(f"distortion model {model!r} needs {COEFF_COUNTS[model]} coefficients, got {D.size}")
    if lens == "equidistant":
        if D.size:
            out[[COEFF_NAMES.index(name) for name in EQUIDISTANT_COEFF_NAMES]] = D
    else:
        out[: D.size] = D
    return lens, out


def _radial_factor(r2, k1, k2, k3, k4, k5, k6):
    num = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    den = 1 + r2 * (k4 + r2 * (k5 + r2 * k6))
    return num / den


def _equidistant_theta_d(theta, k1, k2, k3, k4):
    t2 = theta * theta
    return theta * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))))


def _lens_radial(lens: str, coeffs: np.ndarray, r: np.ndarray) -> np.ndarray:
    """rho(r): the distorted normalized radius over the undistorted one, on undistorted radii r >= 0 (the
    lens's radial part; the rational model's tangential terms come on top). 1 at r = 0."""
    k1, k2, p1, p2, k3, k4, k5, k6 = coeffs
    if lens == "equidistant":
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = _equidistant_theta_d(np.arctan(r), k1, k2, k3, k4) / r
        return np.where(r > 0, rho, 1.0)
    return _radial_factor(r * r, k1, k2, k3, k4, k5, k6)


COEFF_NAMES = ("k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6")  # the kernel's coefficient columns, in order

_TABLE_CACHE: dict[tuple, np.ndarray] = {}
_TABLE_CACHE_SIZE = 16
_TABLE_CACHE_LOCK = threading.Lock()


def _calibration_key(cameras: list[CameraModel], grow_px: float) -> tuple:
    return (grow_px,) + tuple(
        (cam.width, cam.height, cam.distortion_model, np.asarray(cam.K).tobytes(), np.asarray(cam.D).tobytes(),
         np.asarray(cam.T_cam_lidar).tobytes()) for cam in cameras)


def camera_table(cameras: list[CameraModel], margin_px: float = 0.0) -> np.ndarray:
    """The rig as the projection kernel reads it: one float64 row per camera, columns named by
    `_projection.COLUMNS`. Cached by calibration value (a rig is calibrated once and projected every frame;
    the field-of-view search costs milliseconds), so a camera edited in place is picked up."""
    grow_px = max(0.0, -float(margin_px))  # a negative margin widens the usable image
    key = _calibration_key(cameras, grow_px)
    table = _TABLE_CACHE.get(key)
    if table is None:
        table = np.stack([_camera_row(cam, grow_px) for cam in cameras]) if cameras else np.zeros((0, len(COLUMNS)))
        table.setflags(write=False)
        with _TABLE_CACHE_LOCK:
            while len(_TABLE_CACHE) >= _TABLE_CACHE_SIZE:
                _TABLE_CACHE.pop(next(iter(_TABLE_CACHE)))
            _TABLE_CACHE[key] = table
    return table


def _camera_row(cam: CameraModel, grow_px: float) -> np.ndarray:
    try:
        lens, coeffs = lens_coefficients(cam.distortion_model, cam.D)
    except ValueError as e:
        raise ValueError(f"camera {cam.name!r}: {e}") from None
    T, K = np.asarray(cam.T_cam_lidar, dtype=np.float64), np.asarray(cam.K, dtype=np.float64)
    radius = field_of_view_radius(cam, lens, coeffs, grow_px)
    # No finite cone: a box so wide it culls nothing (z > min depth still applies).
    (box_cx, box_hx), (box_cy, box_hy) = (view_box(cam, lens, coeffs, radius, grow_px)
                                          or ((0.0, _UNBOUNDED), (0.0, _UNBOUNDED)))
    values = dict(zip(("r00", "r01", "r02", "r10", "r11", "r12", "r20", "r21", "r22"), T[:3, :3].ravel()))
    values.update(t0=T[0, 3], t1=T[1, 3], t2=T[2, 3], fx=K[0, 0], fy=K[1, 1], cx=K[0, 2], cy=K[1, 2], skew=K[0, 1],
                  width=cam.width, height=cam.height, box_cx=box_cx, box_hx=box_hx, box_cy=box_cy, box_hy=box_hy,
                  max_r2=radius * radius, model=_LENS_INDEX[lens])
    values.update(zip(COEFF_NAMES, coeffs))
    return np.array([values[name] for name in COLUMNS], dtype=np.float64)


_UNBOUNDED = 1e6  # half-width of the view box of a camera whose field-of-view cone is unbounded

# Undistorted normalized radii searched for a camera's field of view (up to ~89.4 degrees off axis).
_RADIUS_GRID = np.concatenate([np.linspace(0.0, 2.0, 2001), np.geomspace(2.0, 100.0, 600)[1:]])
# An equidistant (fisheye) lens is searched over the angle off axis instead, up to 90 degrees itself: a
# fisheye sees that far, and its polynomial in theta may fold back anywhere before. As undistorted radii
# tan(theta) (tan(pi / 2) is 1.6e16 in float64, so every radius is finite).
_THETA_GRID = np.linspace(0.0, np.pi / 2, 20001)
_FISHEYE_RADIUS_GRID = np.tan(_THETA_GRID)


def _radius_grid(lens: str) -> np.ndarray:
    return _FISHEYE_RADIUS_GRID if lens == "equidistant" else _RADIUS_GRID


def field_of_view_radius(cam: CameraModel, lens: str, coeffs: np.ndarray, grow_px: float = 0.0) -> float:
    """The largest sqrt(x^2 + y^2) / z at which a point can be seen: a conservative field-of-view cone.
    `grow_px` widens the image on every side (a negative image margin). `lens` and `coeffs` (in the order of
    COEFF_NAMES) are the camera's, as `lens_coefficients` gives them.

    Two limits: the distorted radius must not exceed the image corners' (plus what the tangential terms can
    add), and the undistorted radius must stay before the lens model folds back; beyond the fold a
    polynomial model maps points far outside the field of view back into the image, and they are not
    seen. Projection runs the lens model only inside this cone. `inf` when neither limit is reached.

    An equidistant (fisheye) lens is searched in theta = atan(r) over [0, pi/2]: the cone is the largest
    theta up to which theta_d increases and stays within the corners' radius, as tan(theta). Past 90 degrees
    nothing is seen anyway (z > min depth), so `inf` there means the half space in front of the camera.
    """
    k1, k2, p1, p2, k3, k4, k5, k6 = coeffs
    K = cam.K
    lo_u, hi_u, lo_v, hi_v = -0.5 - grow_px, cam.width - 0.5 + grow_px, -0.5 - grow_px, cam.height - 0.5 + grow_px
    corners_u = np.array([lo_u, hi_u, lo_u, hi_u])
    corners_v = np.array([lo_v, lo_v, hi_v, hi_v])
    yd = (corners_v - K[1, 2]) / K[1, 1]
    xd = (corners_u - K[0, 2] - K[0, 1] * yd) / K[0, 0]
    corner_radius = float(np.sqrt(xd**2 + yd**2).max())
    if np.isnan(corner_radius):  # intrinsics so extreme that the corners overflow (inf - inf): no bound from them
        corner_radius = np.inf
    r = _radius_grid(lens)
    r2 = r * r
    radial = _lens_radial(lens, coeffs, r)
    rd = r * radial
    folded = np.flatnonzero((radial <= 0) | (np.diff(rd, prepend=-1.0) <= 0))
    end = int(folded[0]) if folded.size else r.size  # grid radii [0, end) come before the fold
    fold_limit = float(r[end - 1]) if folded.size else float("inf")
    tangential_reach = 3.0 * (abs(p1) + abs(p2)) * r2[:end]
    last_in_view = int(np.flatnonzero(rd[:end] - tangential_reach <= corner_radius * 1.01)[-1])  # r = 0 always is
    corner_limit = float(r[last_in_view + 1] * 1.01) if last_in_view + 1 < end else float("inf")
    return min(corner_limit, fold_limit)


def view_box(cam: CameraModel, lens: str, coeffs: np.ndarray, radius: float, grow_px: float = 0.0):
    """A conservative box of undistorted normalized coordinates (x/z, y/z) outside which no point of the
    field-of-view cone `radius` lands in the image (grown by `grow_px` on every side): ((center, half
    width) along x, (center, half height) along y), or None when the cone is unbounded.

    Inside the cone the lens is before its fold, so the radial factor rho(r^2) lies in [rho_min, rho_max]
    (> 0), and the tangential terms move a coordinate by at most 3 (|p1| + |p2|) r^2. A seen point has a
    distorted coordinate inside the image's, which bounds the undistorted one. Skew is allowed. The same
    holds for an equidistant lens, whose rho = theta_d / r and which has no tangential terms.
    """
    grid = _radius_grid(lens)
    if not radius <= grid[-1]:  # inf (or beyond the searched radii): no bound
        return None
    k1, k2, p1, p2, k3, k4, k5, k6 = coeffs
    K = np.asarray(cam.K, dtype=np.float64)
    v_lo, v_hi = -0.5 - grow_px, cam.height - 0.5 + grow_px
    u_lo, u_hi = -0.5 - grow_px, cam.width - 0.5 + grow_px
    yd = np.array([v_lo - K[1, 2], v_hi - K[1, 2]]) / K[1, 1]
    xd_lo = float(((u_lo - K[0, 2] - K[0, 1] * yd) / K[0, 0]).min())
    xd_hi = float(((u_hi - K[0, 2] - K[0, 1] * yd) / K[0, 0]).max())
    r = grid[: int(np.searchsorted(grid, radius)) + 1]  # the grid up to one point past the cone
    rho = _lens_radial(lens, coeffs, r)
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


def _host_points(points: torch.Tensor) -> np.ndarray:
    if not isinstance(points, torch.Tensor) or points.ndim != 2 or points.shape[1] != 3:
        shape = tuple(points.shape) if hasattr(points, "shape") else type(points).__name__
        raise ValueError(f"points must be an (N, 3) tensor, got {shape}")
    return points.detach().to("cpu", torch.float32).contiguous().numpy()


def project_points(points: torch.Tensor, cameras: list[CameraModel], cfg: ProjectionConfig) -> PointProjection:
    """Project LiDAR points into every camera and decide which camera sees which point.

    Runs in the C kernel `_projection.c` on the host, whatever the device: points arrive from the sensor in
    host memory and the kernel does the whole test in one pass per camera. The pairs come back on the
    device of `points`. Per pair: z > min depth, inside the camera's conservative view box (a cull that
    never changes the result), inside the field-of-view cone, lens model, image bounds with the margin,
    and the depth-buffer occlusion test per pixel block when `cfg.occlusion`.
    """
    host = _host_points(points)
    n, m = host.shape[0], len(cameras)
    table = camera_table(cameras, cfg.image_margin_px)
    block = 0
    if cfg.occlusion:
        block = int(cfg.occlusion_block_px)
        if block <= 0:
            raise ValueError(f"projection.occlusion_block_px must be positive, got {cfg.occlusion_block_px}")
    capacity = m * n  # each camera sees each point at most once
    point = torch.empty(capacity, dtype=torch.int64)
    uv = torch.empty(capacity, 2, dtype=torch.float32)
    depth = torch.empty(capacity, dtype=torch.float32)
    counts = torch.empty(m, dtype=torch.int64)
    total = _projection.project(host, table, float(cfg.min_depth_m), float(cfg.image_margin_px), block,
                                float(cfg.occlusion_tolerance_m), point.numpy(), uv.numpy(), depth.numpy(),
                                counts.numpy())
    camera = torch.repeat_interleave(torch.arange(m), counts, output_size=total)
    # exact-size copies: the capacity buffers are mostly untouched and would stay allocated with a view
    proj = PointProjection(point[:total].clone(), camera, uv[:total].clone(), depth[:total].clone(), m, n)
    return proj.to(points.device)


@dataclass
class Boxes:
    """Oriented boxes, one row per group (an instance id)."""

    ids: np.ndarray  # (K,) the group's id
    centers: np.ndarray  # (K, 3) float64
    sizes: np.ndarray  # (K, 3) float64: length along yaw, width, height
    yaws: np.ndarray  # (K,) float64 in (-pi/2, pi/2]
    counts: np.ndarray  # (K,) int64 points per box
    first: np.ndarray  # (K,) int64 index of each group's first point


def fit_boxes(points: np.ndarray, instance_ids: np.ndarray) -> Boxes:
    """The minimum-area oriented box in the ground plane (z from min/max) of the points of each nonzero
    id, ids ascending: one call of the C kernel `_boxes.c` for a whole frame. Collinear or single points
    give a box of zero width."""
    pts = np.ascontiguousarray(points, dtype=np.float64)
    ids = np.asarray(instance_ids)
    if pts.ndim != 2 or pts.shape[1] != 3 or ids.shape != (pts.shape[0],):
        raise ValueError(f"fit_boxes needs (N, 3) points and (N,) ids, got {pts.shape} and {ids.shape}")
    members = np.flatnonzero(ids)
    order = members[np.argsort(ids[members], kind="stable")]
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.diff(sorted_ids, prepend=0) != 0)  # ids are nonzero: each group starts once
    ends = np.append(starts[1:], order.size) if starts.size else starts
    out = np.empty((starts.size, 7), np.float64)
    order, starts, ends = (a.astype(np.int64, copy=False) for a in (order, starts, ends))  # intp: no copy
    _boxes.fit_boxes(pts, order, starts, ends, out)
    return Boxes(sorted_ids[starts], out[:, :3], out[:, 3:6], out[:, 6], ends - starts, order[starts])


def fit_box(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """`fit_boxes` for one group: center (3,), size (3,) as [length, width, height], yaw in (-pi/2, pi/2]."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or pts.shape[0] == 0:
        raise ValueError(f"fit_box needs a non-empty (K, 3) array of points, got shape {pts.shape}")
    boxes = fit_boxes(pts, np.ones(pts.shape[0], np.uint8))
    return boxes.centers[0], boxes.sizes[0], float(boxes.yaws[0])
