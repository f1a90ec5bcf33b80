"""A small synthetic driving scene: ray-cast LiDAR, ray-cast camera images, panoptic ground truth.

It is the one input source the demo, tests and benchmarks share until a richer synthetic world
replaces it. Everything is analytic (a ground plane and oriented boxes), seeded and fast, and the
cameras follow the same distortion model the pipeline projects with, so a LiDAR point projects onto
the pixel that shows its surface.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ov_panoptic_ros.core.calibration import Calibration, CameraExtrinsics
from ov_panoptic_ros.core.frame import CameraModel, Frame, Vocabulary, class_color

if TYPE_CHECKING:
    import torch

    from ov_panoptic_ros.core.vision.features import PointFeatures
    from ov_panoptic_ros.core.vision.text import ClassEmbeddings

CLASSES = ["car", "truck", "bus", "pedestrian", "driveable_surface", "sidewalk", "manmade", "vegetation"]
STUFF = ["driveable_surface", "sidewalk", "manmade", "vegetation"]
NOVEL = ["bus", "pedestrian", "vegetation"]
SIZES = {"car": (4.5, 1.9, 1.6), "truck": (8.0, 2.5, 3.2), "bus": (11.0, 2.6, 3.3), "pedestrian": (0.6, 0.6, 1.75)}
SENSOR_HEIGHT = 1.8  # LiDAR origin above the ground; the ground is z = -SENSOR_HEIGHT in the LiDAR frame
ROAD_HALF_WIDTH, SIDEWALK_EDGE = 6.0, 9.0
SKY_RGB = np.array([150, 190, 235], dtype=np.float32)


@dataclass
class Box:
    label: int  # index into CLASSES
    instance_id: int  # 0 for stuff
    center: np.ndarray  # (3,) in the LiDAR frame
    size: np.ndarray  # (3,) length, width, height
    yaw: float


@dataclass
class CameraInfoData:
    """What a sensor_msgs/CameraInfo carries, without ROS."""

    name: str
    width: int
    height: int
    K: np.ndarray
    D: np.ndarray
    distortion_model: str


@dataclass
class SyntheticScene:
    frame: Frame
    gt_labels: np.ndarray  # (N,) uint16 index into `classes`
    gt_instance_ids: np.ndarray  # (N,) uint32, 0 for stuff
    boxes: list[Box]
    calibration: Calibration
    camera_infos: list[CameraInfoData]
    classes: list[str]
    stuff: list[str]
    novel: list[str]


def _layout_boxes(rng: np.random.Generator, t: float) -> list[Box]:
    """Objects along a straight road; things move along x with their own speed."""
    boxes: list[Box] = []
    inst = 0

    def add_thing(name: str, x: float, y: float, yaw: float, speed: float):
        nonlocal inst
        inst += 1
        L, W, H = SIZES[name]
        cx = x + speed * t * np.cos(yaw)
        cy = y + speed * t * np.sin(yaw)
        boxes.append(Box(CLASSES.index(name), inst, np.array([cx, cy, -SENSOR_HEIGHT + H / 2]),
                         np.array([L, W, H]), float(yaw)))

    for _ in range(rng.integers(4, 8)):  # vehicles in the lanes, away from the ego position
        name = rng.choice(["car", "car", "car", "truck", "bus"])
        x = rng.uniform(6, 38) * rng.choice([-1, 1])
        lane = rng.choice([-3.0, 3.0])
        add_thing(name, x, lane, 0.0 if lane < 0 else np.pi, rng.uniform(0, 8))
    for _ in range(rng.integers(3, 7)):  # pedestrians on the sidewalks
        side = rng.choice([-1, 1])
        add_thing("pedestrian", rng.uniform(-30, 30), side * rng.uniform(6.8, 8.5), rng.uniform(-np.pi, np.pi), 1.2)
    for side in (-1, 1):  # buildings and trees line the street
        x = -45.0
        while x < 45.0:
            length = rng.uniform(8, 16)
            boxes.append(Box(CLASSES.index("manmade"), 0, np.array([x + length / 2, side * 16.0, 4.0]),
                             np.array([length, 10.0, 12.0]), 0.0))
            x += length + rng.uniform(1, 4)
        for x in np.arange(-40, 40, rng.uniform(7, 11)):
            boxes.append(Box(CLASSES.index("vegetation"), 0, np.array([x, side * 10.0, 2.5]),
                             np.array([2.5, 2.5, 3.0]), 0.0))
    return boxes


def _ray_box_hits(origins: np.ndarray, dirs: np.ndarray, boxes: list[Box]) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hit distance and box index per ray (inf / -1 where no box is hit). Slab test in box frames."""
    best_t = np.full(len(dirs), np.inf)
    best_box = np.full(len(dirs), -1)
    for i, b in enumerate(boxes):
        c, s = np.cos(-b.yaw), np.sin(-b.yaw)
        rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
        o = (origins - b.center) @ rot.T
        d = dirs @ rot.T
        half = b.size / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = (-half - o) / d
            t2 = (half - o) / d
        t_near = np.nanmax(np.minimum(t1, t2), axis=1)
        t_far = np.nanmin(np.maximum(t1, t2), axis=1)
        hit = (t_near <= t_far) & (t_far > 0) & (t_near > 0.05) & (t_near < best_t)
        best_t[hit] = t_near[hit]
        best_box[hit] = i
    return best_t, best_box


def cast_rays(origins: np.ndarray, dirs: np.ndarray, boxes: list[Box]):
    """Per ray: hit distance (inf = sky), class label (-1 = none), instance id."""
    t_box, box_idx = _ray_box_hits(origins, dirs, boxes)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = (-SENSOR_HEIGHT - origins[:, 2]) / dirs[:, 2]
    t_ground = np.where(t_ground > 0, t_ground, np.inf)
    box_labels = np.array([b.label for b in boxes] + [-1])
    box_inst = np.array([b.instance_id for b in boxes] + [0])
    use_ground = t_ground < t_box
    t = np.where(use_ground, t_ground, t_box)
    labels = box_labels[box_idx]
    inst = box_inst[box_idx]
    with np.errstate(invalid="ignore"):
        ground_y = np.abs(origins[:, 1] + t_ground * dirs[:, 1])
    ground_label = np.where(ground_y < ROAD_HALF_WIDTH, CLASSES.index("driveable_surface"),
                            np.where(ground_y < SIDEWALK_EDGE, CLASSES.index("sidewalk"), CLASSES.index("vegetation")))
    labels = np.where(use_ground, ground_label, labels)
    inst = np.where(use_ground, 0, inst)
    labels = np.where(np.isfinite(t) & (t < 80.0), labels, -1)
    return t, labels, inst


def _lidar(rng: np.random.Generator, boxes: list[Box], num_points: int):
    beams = 32
    elevations = np.radians(np.linspace(-25.0, 8.0, beams))
    azimuths = np.linspace(-np.pi, np.pi, max(8, int(num_points * 1.6 / beams)), endpoint=False)
    el, az = np.meshgrid(elevations, azimuths, indexing="ij")
    dirs = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], -1).reshape(-1, 3)
    t, labels, inst = cast_rays(np.zeros_like(dirs), dirs, boxes)
    hit = labels >= 0
    t = t[hit] + rng.normal(0, 0.01, hit.sum())
    points = dirs[hit] * t[:, None]
    labels, inst = labels[hit], inst[hit]
    if len(points) > num_points:
        keep = np.sort(rng.choice(len(points), num_points, replace=False))
        points, labels, inst = points[keep], labels[keep], inst[keep]
    intensity = np.clip(rng.normal(0.3, 0.1, len(points)) + 0.1 * (labels == CLASSES.index("car")), 0, 1)
    return points.astype(np.float32), labels.astype(np.uint16), inst.astype(np.uint32), intensity.astype(np.float32)


def _camera_rig(num_cameras: int, width: int, height: int) -> tuple[list[CameraModel], list[CameraInfoData]]:
    """A ring of cameras looking outwards, 70 degree horizontal field of view, mild plumb_bob distortion."""
    cams, infos = [], []
    f = width / (2 * np.tan(np.radians(35.0)))
    K = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1.0]])
    D = np.array([-0.05, 0.01, 0.0005, -0.0005, 0.0])
    names = ["cam_front", "cam_back", "cam_front_left", "cam_back_right", "cam_front_right", "cam_back_left"]
    for i in range(num_cameras):
        yaw = np.pi * i if num_cameras <= 2 else 2 * np.pi * i / num_cameras
        # LiDAR (x fwd, y left, z up) -> camera optical (x right, y down, z fwd), rotated by yaw about z.
        c, s = np.cos(yaw), np.sin(yaw)
        R_lidar_cam = np.column_stack([[s, -c, 0], [0, 0, -1], [c, s, 0]])
        t_lidar_cam = np.array([0.3 * c, 0.3 * s, -0.2])
        T = np.eye(4)
        T[:3, :3] = R_lidar_cam.T
        T[:3, 3] = -R_lidar_cam.T @ t_lidar_cam
        name = names[i] if i < len(names) else f"cam_{i}"
        cams.append(CameraModel(name, width, height, K, D, "plumb_bob", T, 0.0))
        infos.append(CameraInfoData(name, width, height, K.copy(), D.copy(), "plumb_bob"))
    return cams, infos


def _undistort_normalized(xd: np.ndarray, yd: np.ndarray, D: np.ndarray, iterations: int = 8):
    """Invert plumb_bob distortion by fixed-point iteration (enough for the mild distortion used here)."""
    k1, k2, p1, p2, k3 = D[:5]
    x, y = xd.copy(), yd.copy()
    for _ in range(iterations):
        r2 = x * x + y * y
        radial = 1 + k1 * r2 + k2 * r2 * r2 + k3 * r2 ** 3
        dx = 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        dy = p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        x = (xd - dx) / radial
        y = (yd - dy) / radial
    return x, y


def render_image(cam: CameraModel, boxes: list[Box], rng: np.random.Generator) -> np.ndarray:
    """Ray-cast every pixel through the distorted camera model; shade class colors by distance."""
    u, v = np.meshgrid(np.arange(cam.width), np.arange(cam.height))
    xd = (u.reshape(-1) - cam.K[0, 2]) / cam.K[0, 0]
    yd = (v.reshape(-1) - cam.K[1, 2]) / cam.K[1, 1]
    x, y = _undistort_normalized(xd, yd, cam.D)
    rays_cam = np.stack([x, y, np.ones_like(x)], -1)
    T_lidar_cam = np.linalg.inv(cam.T_cam_lidar)
    dirs = rays_cam @ T_lidar_cam[:3, :3].T
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    origins = np.broadcast_to(T_lidar_cam[:3, 3], dirs.shape)
    t, labels, inst = cast_rays(origins, dirs, boxes)
    palette = np.array([class_color(n) for n in CLASSES], dtype=np.float32)
    rgb = np.where((labels >= 0)[:, None], palette[np.maximum(labels, 0)], SKY_RGB)
    shade = np.where(labels >= 0, np.clip(1.1 - np.nan_to_num(t, posinf=80.0) / 120.0, 0.4, 1.0), 1.0)
    tint = 1.0 + 0.12 * np.sin(inst * 2.3)[:, None]
    rgb = rgb * shade[:, None] * tint + rng.normal(0, 4.0, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8).reshape(cam.height, cam.width, 3)


def make_scene(seed: int = 0, num_points: int = 20000, num_cameras: int = 2,
               image_size: tuple[int, int] = (320, 240), time_s: float = 0.0,
               boxes: list[Box] | None = None) -> SyntheticScene:
    """One frame of the synthetic street. `image_size` is (width, height)."""
    rng = np.random.default_rng(seed)
    if boxes is None:
        boxes = _layout_boxes(rng, time_s)
    points, labels, inst, intensity = _lidar(rng, boxes, num_points)
    cams, infos = _camera_rig(num_cameras, *image_size)
    images = [render_image(c, boxes, rng) for c in cams]
    stamp_ns = int(round(time_s * 1e9)) + 1_700_000_000 * 10**9
    frame = Frame(points=points, images=images, cameras=cams, intensity=intensity, stamp_ns=stamp_ns,
                  frame_id="lidar_top")
    calib = Calibration("lidar_top", {c.name: CameraExtrinsics(c.T_cam_lidar.copy(), c.time_offset_s) for c in cams})
    return SyntheticScene(frame, labels, inst, boxes, calib, infos, list(CLASSES), list(STUFF), list(NOVEL))


def scene_sequence(n_frames: int, seed: int = 0, rate_hz: float = 10.0, **kwargs):
    """Consecutive frames of one street: the same layout, things moving, a new LiDAR/camera noise per frame."""
    for i in range(n_frames):
        t = i / rate_hz
        boxes = _layout_boxes(np.random.default_rng(seed), t)
        yield make_scene(seed=seed * 100_003 + i, time_s=t, boxes=boxes, **kwargs)


# --- The 3D network's inputs from a scene, without CLIP ----------------------------------------------------
# torch is imported inside these functions: the scene generator itself stays numpy-only.

# Synonyms the class-aligned features are built for (the first synonym is the scene's class name), so the
# network's max-over-synonyms scoring is exercised. Labels index `scene_vocabulary().classes` directly.
SYNONYMS = {"pedestrian": "pedestrian,person", "manmade": "manmade,building"}


class NetworkInputs(NamedTuple):
    points: torch.Tensor  # (N, 3) float32, the LiDAR frame
    features: PointFeatures  # unit rows for the seen points (inside some camera image, positive depth)
    labels: torch.Tensor  # (N,) long, index into scene_vocabulary().classes
    instance_ids: torch.Tensor  # (N,) long, 0 for stuff


def scene_vocabulary() -> Vocabulary:
    """The synthetic scene's classes as a pipeline vocabulary, in CLASSES order (so gt_labels index it)."""
    return Vocabulary(tuple(SYNONYMS.get(c, c) for c in CLASSES), tuple(STUFF))


def random_class_embeddings(vocabulary: Vocabulary, dim: int, seed: int = 0,
                            device: torch.device | str = "cpu") -> ClassEmbeddings:
    """One random unit row per synonym, as TextEncoder would produce for a CLIP model of width `dim`."""
    import torch
    import torch.nn.functional as F

    from ov_panoptic_ros.core.vision.text import ClassEmbeddings

    gen = torch.Generator().manual_seed(seed)
    synonym_class = [c for c, syns in enumerate(vocabulary.synonyms) for _ in syns]
    rows = F.normalize(torch.randn(len(synonym_class), dim, generator=gen), dim=1)
    return ClassEmbeddings(vocabulary, rows.to(device), torch.tensor(synonym_class, device=device),
                           torch.from_numpy(vocabulary.is_stuff).to(device), f"random-{dim}d-seed{seed}")


def class_aligned_point_features(labels: np.ndarray, seen: torch.Tensor, class_emb: ClassEmbeddings,
                                 noise: float = 0.5, seed: int = 0) -> PointFeatures:
    """Unit features near each seen point's class text embedding (first synonym), like CLIP's.

    The noise is drawn for every point, seen or not, so a point's feature does not depend on `seen`."""
    import torch
    import torch.nn.functional as F

    from ov_panoptic_ros.core.vision.features import PointFeatures

    gen = torch.Generator().manual_seed(seed)
    first_row = {int(c): s for s, c in reversed(list(enumerate(class_emb.synonym_class.tolist())))}
    rows = torch.tensor([first_row[int(c)] for c in labels])
    base = class_emb.embeddings.cpu().float()[rows]
    dense = F.normalize(base + noise * torch.randn(base.shape, generator=gen) / base.shape[1] ** 0.5, dim=1)
    index = seen.nonzero().squeeze(1)
    return PointFeatures(seen, index, dense.index_select(0, index))


def network_inputs(scene: SyntheticScene, class_emb: ClassEmbeddings, noise: float = 0.5,
                   seed: int = 0) -> NetworkInputs:
    """The 3D network's inputs for `scene` with CLIP replaced by class-aligned features.

    `seen` comes from the scene's own cameras (a point projects inside an image with positive depth; no
    occlusion test, as the ray-cast LiDAR only returns first hits); seen points get a feature near their
    class's text embedding, unseen points no row, as the pipeline's feature sampling gives them.
    `class_emb` must embed `scene_vocabulary()` (or any vocabulary whose class names are the scene's).
    """
    import torch

    from ov_panoptic_ros.core.config import ProjectionConfig
    from ov_panoptic_ros.core.geometry import project_points

    names = class_emb.vocabulary.names
    if names != list(scene.classes):
        raise ValueError(f"class_emb's classes {names} are not the scene's {list(scene.classes)}; "
                         "embed scene_vocabulary()")
    points = torch.from_numpy(np.ascontiguousarray(scene.frame.points, dtype=np.float32))
    seen = project_points(points, scene.frame.cameras, ProjectionConfig(occlusion=False)).seen
    features = class_aligned_point_features(scene.gt_labels, seen, class_emb, noise, seed)
    return NetworkInputs(points, features, torch.from_numpy(scene.gt_labels.astype(np.int64)),
                         torch.from_numpy(scene.gt_instance_ids.astype(np.int64)))
