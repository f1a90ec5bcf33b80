"""A tiny nuScenes dataroot in the real on-disk format, for the nuScenes source's tests and the sources benchmark.

By default three scenes with the names of real mini scenes (scene-0061 of mini_train, scene-0103 and scene-0916, all of
mini_val), 3 + 2 + 2 samples. Every table the devkit's NuScenes class loads is written (the empty annotation
tables too, and a map with its PNG), so nuscenes-devkit itself can open the dataroot: the proof that the
tables are in the real format. Per sample: a LIDAR_TOP .pcd.bin (5 float32 per point), a panoptic .npz
(uint16 general index * 1000 + instance), six small JPEGs, and ego poses at each sensor's own timestamp, the
car driving ~12 m/s and turning, so LiDAR and cameras see it at different poses.

Geometry here is scipy's (Rotation, quaternions x, y, z, w), not the package's: `plant_point` inverts the chain
on its own, so a test can place a point where a camera must see it.

`build`'s parameters make the same dataroot at a real one's size (bench/sources.py: 34,000 points per sweep, six
1600x900 JPEGs per sample, `noise` giving them a real file's size); the defaults are the tests' tiny one.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.spatial.transform import Rotation

VERSION = "v1.0-mini"
SCENES = (("scene-0061", 3), ("scene-0103", 2), ("scene-0916", 2))
IMAGE_W, IMAGE_H = 64, 36  # 1600 x 900 scaled by 0.04
SCALE = IMAGE_W / 1600
# (channel, yaw of its view in the ego frame, degrees; its time offset from the LiDAR stamp, microseconds)
CAMERAS = (("CAM_FRONT", 0, -8000), ("CAM_FRONT_RIGHT", -55, 12000), ("CAM_FRONT_LEFT", 55, -30000),
           ("CAM_BACK", 180, 41000), ("CAM_BACK_LEFT", 110, -45000), ("CAM_BACK_RIGHT", -110, 26000))
# the 32 general classes at their lidarseg indices (category.json of nuScenes-lidarseg / panoptic)
GENERAL = ("noise", "animal", "human.pedestrian.adult", "human.pedestrian.child",
           "human.pedestrian.construction_worker", "human.pedestrian.personal_mobility",
           "human.pedestrian.police_officer", "human.pedestrian.stroller", "human.pedestrian.wheelchair",
           "movable_object.barrier", "movable_object.debris", "movable_object.pushable_pullable",
           "movable_object.trafficcone", "static_object.bicycle_rack", "vehicle.bicycle", "vehicle.bus.bendy",
           "vehicle.bus.rigid", "vehicle.car", "vehicle.construction", "vehicle.emergency.ambulance",
           "vehicle.emergency.police", "vehicle.motorcycle", "vehicle.trailer", "vehicle.truck",
           "flat.driveable_surface", "flat.other", "flat.sidewalk", "flat.terrain", "static.manmade",
           "static.other", "static.vegetation", "vehicle.ego")
STUFF_GENERAL = {0, 1, 24, 25, 26, 27, 28, 29, 30, 31}  # no instance ids in the panoptic labels
LIDAR_CS = {"translation": [0.985793, 0.0, 1.84019],
            "rotation": [0.706749235646644, -0.015300993788500868, 0.01739745181256607, -0.7070846669051719]}


def token(*parts) -> str:
    return hashlib.md5("/".join(map(str, parts)).encode()).hexdigest()


def wxyz(rotation: Rotation) -> list[float]:
    x, y, z, w = rotation.as_quat()
    return [float(w), float(x), float(y), float(z)]


def rotation_of(record: dict) -> Rotation:
    w, x, y, z = record["rotation"]
    return Rotation.from_quat([x, y, z, w])


def to_parent(record: dict, p: np.ndarray) -> np.ndarray:
    return rotation_of(record).apply(p) + np.asarray(record["translation"])


def to_child(record: dict, p: np.ndarray) -> np.ndarray:
    return rotation_of(record).inv().apply(p - np.asarray(record["translation"]))


def camera_cs(channel: str, yaw_deg: float, k: int, scale: float = SCALE) -> dict:
    """A camera mounted on the roof looking along `yaw_deg`, slightly pitched and rolled (optical frame); its K is
    nuScenes' at 1600 px wide times `scale`."""
    optical_to_ego = Rotation.from_matrix([[0, 0, 1], [-1, 0, 0], [0, -1, 0]])  # z fwd, x right, y down
    mount = Rotation.from_euler("zyx", [yaw_deg, 0.6 + 0.3 * k, -0.4 + 0.2 * k], degrees=True)
    yaw = np.radians(yaw_deg)
    K = [[1266.4 * scale, 0.0, 816.3 * scale - 0.2 * k], [0.0, 1266.4 * scale, 491.5 * scale + 0.1 * k], [0, 0, 1]]
    return {"translation": [1.0 + 0.7 * np.cos(yaw), 0.5 * np.sin(yaw), 1.5 + 0.01 * k],
            "rotation": wxyz(mount * optical_to_ego), "camera_intrinsic": K}


def ego_pose(t_us: int) -> dict:
    """The car at time t: driving ~12 m/s on a gentle left curve in Boston-like global coordinates."""
    s = (t_us - 1532402927000000) / 1e6
    yaw = 0.3 + 0.25 * s
    pose = Rotation.from_euler("zyx", [yaw, 0.01 * np.sin(s), 0.005], degrees=False)
    return {"translation": [411.3 + 12 * s * np.cos(yaw), 1180.9 + 12 * s * np.sin(yaw), 0.02 * s],
            "rotation": wxyz(pose)}


@dataclass
class Tiny:
    """What the builder wrote, for the tests to compare with: per sample in scene order."""

    root: Path
    samples: list[str] = field(default_factory=list)  # sample tokens
    lidar: list[dict] = field(default_factory=list)  # the LIDAR_TOP sample_data record
    points: list[np.ndarray] = field(default_factory=list)  # (N, 5) float32 as written
    panoptic: list[np.ndarray] = field(default_factory=list)  # (N,) uint16 as written
    images: dict = field(default_factory=dict)  # (sample index, channel) -> (H, W, 3) uint8 written as JPEG
    tables: dict = field(default_factory=dict)
    planted: tuple = ()  # (sample index, point index, channel, (u, v))

    def sample_data(self, k: int, channel: str) -> dict:
        """Sample k's keyframe sample_data record of `channel`."""
        return self._record("sample_data", token("sd", self.samples[k], channel))

    def calibrated_sensor(self, channel: str) -> dict:
        """`channel`'s calibrated_sensor record (one per channel: the rig does not change)."""
        return self._record("calibrated_sensor", token("cs", channel))

    def _record(self, table: str, record_token: str) -> dict:
        return next(r for r in self.tables[table] if r["token"] == record_token)


@dataclass
class Shape:
    """The images' size and content (see `build`); `rng` draws the noise, apart from the points' stream."""

    image_size: tuple[int, int]
    noise: int
    keep_images: bool
    rng: np.random.Generator


def plant_point(tables: dict, lidar: dict, cam: dict, uv, depth: float) -> np.ndarray:
    """The LIDAR_TOP point that `cam` sees at pixel uv, `depth` metres away, through the ego poses at both stamps."""
    by_token = {t: {r["token"]: r for r in tables[t]} for t in ("calibrated_sensor", "ego_pose")}
    cs_cam = by_token["calibrated_sensor"][cam["calibrated_sensor_token"]]
    ray = np.linalg.solve(np.asarray(cs_cam["camera_intrinsic"]), [uv[0], uv[1], 1.0])
    p = to_parent(cs_cam, depth * ray)
    p = to_parent(by_token["ego_pose"][cam["ego_pose_token"]], p)
    p = to_child(by_token["ego_pose"][lidar["ego_pose_token"]], p)
    return to_child(by_token["calibrated_sensor"][lidar["calibrated_sensor_token"]], p)


def build(root: Path, version: str = VERSION, seed: int = 0, num_points: int = 300,
          scenes: tuple[tuple[str, int], ...] = SCENES, image_size: tuple[int, int] = (IMAGE_W, IMAGE_H),
          noise: int = 0, keep_images: bool = True) -> Tiny:
    """The dataroot under `root`: `scenes` (name, samples; at least 2 samples in all, sample 1 has the planted point),
    `num_points` per sweep, images of `image_size` (width, height) with uniform noise of +-`noise` levels (0: smooth,
    tiny files), kept in `Tiny.images` unless `keep_images` is False (a full-size dataroot's pixels are hundreds of MB).
    """
    rng = np.random.default_rng(seed)
    out = Tiny(root)
    shape = Shape(image_size, noise, keep_images, np.random.default_rng([seed, 1]))
    t = {name: [] for name in ("category", "attribute", "visibility", "instance", "sensor", "calibrated_sensor",
                               "ego_pose", "log", "scene", "sample", "sample_data", "sample_annotation", "map",
                               "panoptic")}
    out.tables = t
    order = rng.permutation(len(GENERAL))  # table order is not index order: the `index` field decides
    t["category"] = [{"token": token("cat", i), "name": GENERAL[i], "description": "", "index": int(i)} for i in order]
    channels = [("LIDAR_TOP", "lidar", LIDAR_CS)] + [(c, "camera", camera_cs(c, yaw, k, image_size[0] / 1600))
                                                      for k, (c, yaw, _) in enumerate(CAMERAS)]
    for channel, modality, cs in channels:
        t["sensor"].append({"token": token("sensor", channel), "channel": channel, "modality": modality})
        t["calibrated_sensor"].append({"token": token("cs", channel), "sensor_token": token("sensor", channel),
                                       "camera_intrinsic": cs.get("camera_intrinsic", []), **cs})
    log = token("log")
    t["log"].append({"token": log, "logfile": "n015-2018-07-24-11-22-45+0800", "vehicle": "n015",
                     "date_captured": "2018-07-24", "location": "singapore-onenorth"})
    t["map"].append({"category": "semantic_prior", "token": token("map"), "log_tokens": [log],
                     "filename": "maps/tiny.png"})
    (root / "maps").mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "maps" / "tiny.png")
    stamp = 1532402927647951
    for name, n in scenes:
        tokens = [token(name, "sample", i) for i in range(n)]
        t["scene"].append({"token": token(name), "log_token": log, "nbr_samples": n, "first_sample_token": tokens[0],
                           "last_sample_token": tokens[-1], "name": name, "description": "tiny"})
        for i, sample in enumerate(tokens):
            stamp += 500000
            t["sample"].append({"token": sample, "timestamp": stamp, "scene_token": token(name),
                                "prev": tokens[i - 1] if i else "", "next": tokens[i + 1] if i + 1 < n else ""})
            _sample(out, t, rng, sample, stamp, num_points, shape)
    _plant(out, t)
    _write(root, version, t, out)
    return out


def _sample(out: Tiny, t: dict, rng, sample: str, stamp: int, num_points: int, shape: Shape) -> None:
    root, k = out.root, len(out.samples)
    width, height = shape.image_size
    for channel, _, offset in [("LIDAR_TOP", 0, 0)] + list(CAMERAS):
        when = stamp + offset
        t["ego_pose"].append({"token": token("pose", sample, channel), "timestamp": when, **ego_pose(when)})
        ext = "pcd.bin" if channel == "LIDAR_TOP" else "jpg"
        filename = f"samples/{channel}/n015-2018-07-24-11-22-45+0800__{channel}__{when}.{ext}"
        record = {"token": token("sd", sample, channel), "sample_token": sample,
                  "ego_pose_token": token("pose", sample, channel), "calibrated_sensor_token": token("cs", channel),
                  "timestamp": when, "fileformat": ext.split(".")[0], "is_key_frame": True,
                  "height": 0 if ext != "jpg" else height, "width": 0 if ext != "jpg" else width,
                  "filename": filename, "prev": "", "next": ""}
        t["sample_data"].append(record)
        (root / filename).parent.mkdir(parents=True, exist_ok=True)
        if channel == "LIDAR_TOP":
            out.samples.append(sample)
            out.lidar.append(record)
        else:
            img = np.zeros((height, width, 3), np.uint8)
            img[..., 0] = 40 * (k % 6) + 10
            img[..., 1] = 30 * CAMERAS.index(next(c for c in CAMERAS if c[0] == channel)) + 20
            img[..., 2] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
            if shape.noise:
                grain = shape.rng.integers(-shape.noise, shape.noise + 1, img.shape, dtype=np.int16)
                img = np.clip(img + grain, 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / filename, quality=95)
            if shape.keep_images:
                out.images[(k, channel)] = img
    sweep = dict(record, token=token("sweep", sample), is_key_frame=False, timestamp=stamp + 50000,
                 ego_pose_token=token("pose", sample, "LIDAR_TOP"), calibrated_sensor_token=token("cs", "LIDAR_TOP"),
                 filename=f"sweeps/LIDAR_TOP/{sample}.pcd.bin", fileformat="pcd", height=0, width=0)
    t["sample_data"].append(sweep)  # a sweep: not a keyframe, never read
    xyz = rng.uniform([-30, -30, -2], [30, 30, 3], size=(num_points, 3))
    points = np.concatenate([xyz, rng.uniform(0, 255, (num_points, 1)), rng.integers(0, 32, (num_points, 1))], 1)
    general = rng.integers(0, len(GENERAL), num_points)
    instance = np.where(np.isin(general, list(STUFF_GENERAL)), 0, rng.integers(1, 6, num_points))
    out.points.append(points.astype(np.float32))
    out.panoptic.append((general * 1000 + instance).astype(np.uint16))


def _plant(out: Tiny, t: dict) -> None:
    """Sample 1's point 7: CAM_FRONT_LEFT (30 ms before the LiDAR) sees it at pixel (20.25, 11.5), 9 m away."""
    k, index, channel, uv = 1, 7, "CAM_FRONT_LEFT", (20.25, 11.5)
    out.points[k][index, :3] = plant_point(t, out.lidar[k], out.sample_data(k, channel), uv, 9.0)
    out.planted = (k, index, channel, uv)


def _write(root: Path, version: str, t: dict, out: Tiny) -> None:
    (root / "panoptic" / version).mkdir(parents=True, exist_ok=True)
    for lidar, points, labels in zip(out.lidar, out.points, out.panoptic):
        points.tofile(root / lidar["filename"])
        filename = f"panoptic/{version}/{lidar['token']}_panoptic.npz"
        np.savez_compressed(root / filename, data=labels)
        t["panoptic"].append({"token": lidar["token"], "sample_data_token": lidar["token"], "filename": filename})
    (root / version).mkdir(parents=True, exist_ok=True)
    for name, records in t.items():
        (root / version / f"{name}.json").write_text(json.dumps(records, indent=0))
