"""The world's ground truth matches its geometry: each LiDAR point lies on a surface of its own class and
instance with nothing in front of it, and a pixel shows the class of the LiDAR point that the pipeline's own
projection puts on it. The surface tests here are implicit equations, independent of the ray-cast kernel."""
import numpy as np
import pytest
import torch

from ov_panoptic_ros.core.config import ProjectionConfig
from ov_panoptic_ros.core.frame import UNLABELED
from ov_panoptic_ros.core.geometry import project_points
from ov_panoptic_ros.data.world import _raycast
from ov_panoptic_ros.data.world.classes import WORLD_CLASSES
from ov_panoptic_ros.data.world.generator import World, WorldConfig
from ov_panoptic_ros.data.world.lidar import LidarConfig

COL = {name: i for i, name in enumerate(_raycast.COLUMNS)}


def _level(rows: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P, M) implicit level of each point for each primitive: 1 on the surface, below 1 inside, above 1
    outside; and a scale that turns |level - 1| into an upper bound (to first order) of the distance to the
    surface, in metres."""
    rotation = rows[:, COL["r00"]:COL["r22"] + 1].reshape(-1, 3, 3)
    local = np.einsum("pij,pmj->pmi", rotation, points[None] - rows[:, None, COL["cx"]:COL["cz"] + 1])
    x, y, z = np.abs(np.moveaxis(local, -1, 0))
    a, b, c = (rows[:, COL[k], None] + 0 * x for k in "abc")
    kind = rows[:, COL["kind"], None].astype(int) + 0 * x.astype(int)
    level, scale = np.full(x.shape, np.inf), np.zeros(x.shape)

    def choose(name, value, unit):
        nonlocal level, scale
        mine = kind == _raycast.KINDS.index(name)
        level, scale = np.where(mine, value, level), np.where(mine, unit, scale)

    axis = np.argmax(np.stack([x / a, y / b, z / c]), axis=0)  # the box face the point is nearest to
    choose("box", np.maximum.reduce([x / a, y / b, z / c]), np.choose(axis, [a, b, c]))
    side = np.hypot(x / a, y / b)
    choose("cylinder", np.maximum(side, z / c), np.where(z / c > side, c, np.maximum(a, b)))
    choose("ellipsoid", np.sqrt((x / a) ** 2 + (y / b) ** 2 + (z / c) ** 2), np.maximum.reduce([a, b, c]))
    signed_z = np.moveaxis(local, -1, 0)[2]
    radius = a + (b - a) * (signed_z + c) / (2 * c)  # a cone's radius at its height
    with np.errstate(divide="ignore", invalid="ignore"):
        side = np.where(radius > 0, np.hypot(x, y) / radius, np.inf)
    choose("cone", np.maximum(side, z / c), np.where(z / c > side, c, radius))
    return level, scale


@pytest.fixture(scope="module")
def exact_world():
    """A noise-free LiDAR (range noise off), small images."""
    return World(11, WorldConfig(image_size=(240, 160), lidar=LidarConfig(range_noise_m=0.0)))


def test_every_point_lies_on_a_surface_of_its_class_and_instance(exact_world):
    wf = exact_world.frame(40)
    posed = exact_world.primitives(40)
    rng = np.random.default_rng(0)
    pick = rng.choice(wf.frame.num_points, 2500, replace=False)
    pose = wf.world_T_lidar
    world = wf.frame.points[pick].astype(np.float64) @ pose[:3, :3].T + pose[:3, 3]
    labels, instances = wf.labels[pick], wf.instance_ids[pick]
    worst = 0.0
    for key in set(zip(labels.tolist(), instances.tolist())):
        members = (labels == key[0]) & (instances == key[1])
        rows = posed.table[(posed.label == key[0]) & (posed.instance == key[1])]
        assert len(rows), f"no primitive has class {key[0]} and instance {key[1]}"
        level, scale = _level(rows, world[members])
        off = (np.abs(level - 1) * scale).min(axis=0)  # metres to the nearest surface of the group
        worst = max(worst, off.max())
    assert worst < 1e-4  # float32 points up to 70 m away


def test_nothing_stands_between_the_sensor_and_its_points(exact_world):
    wf = exact_world.frame(10)
    posed = exact_world.primitives(10)
    pose = wf.world_T_lidar
    rng = np.random.default_rng(1)
    pick = rng.choice(wf.frame.num_points, 400, replace=False)
    origin = pose[:3, 3]
    world = wf.frame.points[pick].astype(np.float64) @ pose[:3, :3].T + origin
    centres = posed.table[:, COL["cx"]:COL["cz"] + 1]
    bound = np.linalg.norm(posed.table[:, COL["a"]:COL["c"] + 1], axis=1)  # a sphere around each primitive
    fractions = np.linspace(0.01, 0.995, 200)[:, None]
    tested = 0
    for point in world:
        seg = point - origin
        along = np.clip((centres - origin) @ seg / (seg @ seg), 0, 1)
        near = np.linalg.norm(origin + along[:, None] * seg - centres, axis=1) < bound
        samples = origin + fractions * seg
        assert not (_level(posed.table[near], samples)[0] < 1 - 1e-6).any()
        tested += near.sum()
    assert tested > 400  # segments do pass near other primitives


def test_panoptic_ids_are_consistent_within_a_drive(exact_world):
    frames = [exact_world.frame(i) for i in (0, 30)]
    label_of = {}
    for wf in frames:
        thing = np.array(WORLD_CLASSES.is_thing)[wf.labels]
        assert (wf.instance_ids[~thing] == 0).all() and (wf.instance_ids[thing] > 0).all()
        for inst, label in zip(wf.instance_ids[thing].tolist(), wf.labels[thing].tolist()):
            assert label_of.setdefault(inst, label) == label  # one class per instance, in every frame
        for lab, inst in zip(wf.image_labels, wf.image_instance_ids):
            sky = lab == UNLABELED
            assert sky.any() and (inst[sky] == 0).all() and (lab[~sky] < 16).all()
            thing_px = np.array([*WORLD_CLASSES.is_thing, False])[np.minimum(lab, 16)]
            assert (inst[thing_px] > 0).all() and (inst[~thing_px] == 0).all()
    shared = set(np.unique(frames[0].instance_ids)) & set(np.unique(frames[1].instance_ids)) - {0}
    assert len(shared) > 5  # things seen 3 s apart keep their ids


def test_a_pixel_shows_the_class_of_the_points_projected_onto_it(exact_world):
    wf = exact_world.frame(25)
    proj = project_points(torch.from_numpy(wf.frame.points), wf.frame.cameras, ProjectionConfig(occlusion=False))
    point, camera = proj.point.numpy(), proj.camera.numpy()
    u, v = np.rint(proj.uv.numpy()).astype(int).T
    agree = total = 0
    for c, cam in enumerate(wf.frame.cameras):
        sel = camera == c
        p, uu, vv = point[sel], u[sel], v[sel]
        cam_centre = np.linalg.inv(cam.T_cam_lidar)[:3, 3]
        distance = np.linalg.norm(wf.frame.points[p] - cam_centre, axis=1)
        pixel_depth = wf.image_depths[c][vv, uu]
        same_surface = np.abs(pixel_depth - distance) < np.maximum(0.05, 0.01 * distance)
        assert same_surface.mean() > 0.6, f"{cam.name}: most pixels do not show the surface projected on them"
        same_id = (wf.image_labels[c][vv, uu] == wf.labels[p]) & (
            wf.image_instance_ids[c][vv, uu] == wf.instance_ids[p])
        agree += same_id[same_surface].sum()
        total += same_surface.sum()
    assert total > 3000 and agree / total > 0.99
