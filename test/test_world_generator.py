"""The world's frame API: reproducible per (seed, frame), new streets per seed, moving things, all 16 classes,
sensors as documented, and cameras whose pixels are the inverse of the pipeline's lens model."""
import json

import numpy as np
import pytest
import torch

from ov_panoptic_ros.core.config import ProjectionConfig
from ov_panoptic_ros.core.geometry import project_points
from ov_panoptic_ros.data.world import cameras as rig
from ov_panoptic_ros.data.world.bench import bench_world
from ov_panoptic_ros.data.world.classes import CLASSES, NOVEL, label_of
from ov_panoptic_ros.data.world.generator import World, WorldConfig
from ov_panoptic_ros.data.world.lidar import LidarConfig

SMALL = WorldConfig(image_size=(160, 120))


def _arrays(wf):
    return [wf.frame.points, wf.frame.intensity, wf.labels, wf.instance_ids, wf.rings, *wf.frame.images,
            *wf.image_labels, *wf.image_instance_ids, *wf.image_depths, wf.world_T_lidar]


def test_a_frame_depends_on_seed_and_index_only():
    first = World(5, SMALL)
    later = first.frame(7)
    other = World(5, SMALL)
    other.frame(3)  # whatever was made before does not matter
    again = other.frame(7)
    for a, b in zip(_arrays(later), _arrays(again), strict=True):
        np.testing.assert_array_equal(a, b)
    assert again.frame.stamp_ns == later.frame.stamp_ns
    assert not np.array_equal(first.frame(8).frame.points[:100], later.frame.points[:100])


def test_seeds_make_different_streets():
    layouts = [World(seed, SMALL).layout for seed in (1, 2, 3)]
    assert len({tuple(block[2:] for block in lay.blocks) for lay in layouts}) == 3  # other block kinds
    assert len({lay.cross_section for lay in layouts}) == 3  # other lanes, widths, kerbs
    assert len({len(lay.scene.static.table) for lay in layouts}) == 3
    assert len({lay.ego.speed for lay in layouts}) == 3


def test_frame_contents_match_the_documented_sensors():
    world = World(4)
    wf = world.frame(12)
    frame = wf.frame
    assert 22_000 < frame.num_points < 40_000  # a nuScenes-like 32-beam sweep
    assert frame.points.dtype == np.float32 and np.isfinite(frame.points).all()
    distance = np.linalg.norm(frame.points, axis=1)
    assert distance.min() >= 1.0 - 0.1 and distance.max() <= 70.0 + 0.1
    elevation = np.degrees(np.arcsin(frame.points[:, 2] / distance))
    assert -31.5 < elevation.min() and elevation.max() < 11.5
    assert wf.rings.max() <= 31 and len(np.unique(wf.rings)) > 20
    assert frame.intensity.dtype == np.float32 and 0 <= frame.intensity.min() and frame.intensity.max() <= 255
    assert wf.labels.dtype == np.uint16 and wf.instance_ids.dtype == np.uint32 and wf.labels.max() < 16
    assert frame.frame_id == "lidar_top" and frame.stamp_ns == world.frame(13).frame.stamp_ns - 100_000_000
    assert [c.name for c in frame.cameras] == ["cam_front", "cam_back"]
    for cam, image in zip(frame.cameras, frame.images):
        assert image.shape == (320, 480, 3) and cam.distortion_model == "plumb_bob" and cam.D[0] < -0.2
        np.testing.assert_array_equal(world.calibration.cameras[cam.name].T_cam_lidar, cam.T_cam_lidar)
    assert world.calibration.lidar_frame == "lidar_top"
    assert [world.classes.names[i] for i in world.classes.group("novel")] == sorted(NOVEL)
    assert list(world.classes.names) == list(CLASSES) == list(world.vocabulary.names)
    assert world.classes.group("things") == tuple(range(10)) and world.classes.ignore == ()
    with pytest.raises(IndexError):
        world.frame(world.num_frames)
    with pytest.raises(IndexError):
        next(world.frames(world.num_frames + 1))


def test_lidar_intensity_follows_materials():
    wf = World(3, SMALL).frame(60)
    mean = {name: wf.frame.intensity[wf.labels == label_of(name)].mean()
            for name in ("traffic_cone", "driveable_surface", "vegetation") if (wf.labels == label_of(name)).any()}
    assert mean["traffic_cone"] > 2 * mean["driveable_surface"]  # retroreflective band vs dark asphalt


def test_things_move_and_the_street_stays():
    world = World(6, SMALL)
    static = len(world.layout.scene.static.table)
    np.testing.assert_array_equal(world.layout.scene.at(0.0).table[:static], world.layout.scene.at(2.0).table[:static])
    moving = world.layout.scene.at(0.0).table[static:, 1:4], world.layout.scene.at(2.0).table[static:, 1:4]
    shift = np.linalg.norm(moving[1] - moving[0], axis=1)
    assert len(shift) > 100 and shift.min() > 0.5  # every moving part moved (walkers >= 0.7 m/s)
    ego = world.layout.ego
    assert world.frame(20).world_T_lidar[0, 3] == pytest.approx(2.0 * ego.speed)


def test_every_class_is_seen_by_both_sensors_over_a_few_seeds():
    config = WorldConfig(image_size=(240, 160))
    in_points, in_pixels = set(), set()
    for seed in range(4):
        world = World(seed, config)
        for index in (20, 100, 180):
            wf = world.frame(index)
            in_points |= set(np.unique(wf.labels).tolist())
            for labels in wf.image_labels:
                in_pixels |= set(np.unique(labels[labels < 16]).tolist())
    everything = set(range(len(CLASSES)))
    assert in_points == everything, [CLASSES[c] for c in everything - in_points]
    assert in_pixels == everything, [CLASSES[c] for c in everything - in_pixels]


@pytest.mark.parametrize("count", [2, 6])
def test_pixel_rays_are_the_inverse_of_the_pipelines_projection(count):
    for cam in rig.rig(count, 200, 150):
        rays = rig.image_rays(cam)
        R, t = cam.T_cam_lidar[:3, :3], cam.T_cam_lidar[:3, 3]
        for depth in (2.0, 40.0):
            points = torch.from_numpy(((rays * depth - t) @ R).astype(np.float32))  # into the LiDAR frame
            proj = project_points(points, [cam], ProjectionConfig(occlusion=False))
            v, u = np.divmod(proj.point.numpy(), cam.width)
            assert len(u) == cam.width * cam.height  # every pixel's ray is seen, at its own pixel
            np.testing.assert_allclose(proj.uv.numpy(), np.column_stack([u, v]), atol=2e-3)
        corner = rays[0] / rays[0, 2]  # pixel (0, 0): the lens moves it far from the pinhole's ray
        pinhole = np.array([-cam.K[0, 2] / cam.K[0, 0], -cam.K[1, 2] / cam.K[1, 1]])
        assert np.linalg.norm(corner[:2] - pinhole) * cam.K[0, 0] > 10


def test_config_is_checked():
    with pytest.raises(ValueError, match="1 to 6 cameras"):
        World(0, WorldConfig(cameras=7))
    with pytest.raises(ValueError, match="rate_hz and duration_s must be positive"):
        World(0, WorldConfig(rate_hz=0))
    short = World(0, WorldConfig(duration_s=1.0, lidar=LidarConfig(azimuth_steps=200), image_size=(32, 24)))
    assert short.num_frames == 10 and len(list(short.frames())) == 10


def test_bench_reports_both_sensors():
    report = bench_world(quick=True, config=WorldConfig(duration_s=2.0, image_size=(64, 48)))
    assert report["frames"] == 3 and report["points_per_frame"] > 10_000
    for key in ("lidar_frames_per_s", "cameras_frames_per_s", "frames_100_s"):
        assert report[key]["wall"] > 0 and report[key]["cpu"] > 0
    json.dumps(report)


def _boxes(table):
    """World-axis bounding boxes of kernel rows, shrunk by 2 cm (parts that only touch do not count)."""
    rotation, half = np.abs(table[:, 4:13].reshape(-1, 3, 3)), table[:, 13:16].copy()
    cone = table[:, 0] == 3
    half[cone, :2] = np.maximum(table[cone, 13], table[cone, 14])[:, None]
    extent = np.einsum("pla,pl->pa", rotation, half) - 0.02
    return table[:, 1:4] - extent, table[:, 1:4] + extent


def test_moving_things_never_run_into_anything():
    scene = World(2, SMALL).layout.scene
    moving = np.arange(len(scene.static.table), len(scene.static.table) + len(scene.moving.table))
    assert len(moving) > 500
    for t in (0.0, 7.0, 19.9):
        posed = scene.at(t)
        lo, hi = _boxes(posed.table)
        solid = ~(np.isin(posed.label, [label_of(n) for n in ("driveable_surface", "sidewalk", "other_flat",
                                                                "terrain")]) & (hi[:, 2] < 0.6))  # not the ground
        for chunk in np.array_split(moving, 20):
            touch = (lo[None] < hi[chunk, None]).all(-1) & (lo[chunk, None] < hi[None]).all(-1)
            touch &= (posed.instance[None] != posed.instance[chunk, None]) & solid[None]
            assert not touch.any(), f"at {t} s a moving part overlaps part(s) {np.nonzero(touch)[1][:5]}"
