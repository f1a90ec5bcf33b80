"""The synthetic scene is only useful if its cameras and LiDAR agree: check that geometrically."""
import numpy as np

from ov_panoptic_ros.core.frame import class_color
from ov_panoptic_ros.data.synthetic import CLASSES, STUFF, make_scene, scene_sequence


def _project(cam, points):
    pc = points.astype(np.float64) @ cam.T_cam_lidar[:3, :3].T + cam.T_cam_lidar[:3, 3]
    front = pc[:, 2] > 1.0
    x, y = pc[:, 0] / pc[:, 2], pc[:, 1] / pc[:, 2]
    k1, k2, p1, p2, k3 = cam.D
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    u = np.nan_to_num(cam.K[0, 0] * xd + cam.K[0, 2], nan=-1.0, posinf=-1.0, neginf=-1.0)
    v = np.nan_to_num(cam.K[1, 1] * yd + cam.K[1, 2], nan=-1.0, posinf=-1.0, neginf=-1.0)
    inside = front & (u > 0.5) & (u < cam.width - 1.5) & (v > 0.5) & (v < cam.height - 1.5)
    u, v = np.clip(u, -1, cam.width), np.clip(v, -1, cam.height)
    return np.round(u).astype(int), np.round(v).astype(int), inside


def test_points_project_onto_pixels_of_their_class():
    scene = make_scene(seed=1, num_points=8000, image_size=(160, 120))
    palette = np.array([class_color(n) for n in CLASSES], dtype=np.float64)
    palette /= np.linalg.norm(palette, axis=1, keepdims=True)
    total = 0
    for cam, image in zip(scene.frame.cameras, scene.frame.images):
        u, v, inside = _project(cam, scene.frame.points)
        colors = image[v[inside], u[inside]].astype(np.float64)
        colors /= np.linalg.norm(colors, axis=1, keepdims=True)
        nearest = np.argmax(colors @ palette.T, axis=1)
        agreement = (nearest == scene.gt_labels[inside]).mean()
        assert agreement > 0.9, f"{cam.name}: only {agreement:.2f} of points see their own class"
        total += inside.sum()
    assert total > 1000


def test_ground_truth_is_panoptic():
    scene = make_scene(seed=2, num_points=6000, image_size=(64, 48))
    stuff = np.isin(scene.gt_labels, [CLASSES.index(s) for s in STUFF])
    assert (scene.gt_instance_ids[stuff] == 0).all()
    assert (scene.gt_instance_ids[~stuff] > 0).all()
    for inst in np.unique(scene.gt_instance_ids[~stuff]):  # one class per instance
        assert len(np.unique(scene.gt_labels[scene.gt_instance_ids == inst])) == 1
    assert scene.frame.points.shape == (6000, 3) and np.isfinite(scene.frame.points).all()


def test_sequence_moves_things_and_keeps_layout():
    a, b = list(scene_sequence(2, seed=3, num_points=3000, image_size=(32, 24)))
    assert b.frame.stamp_ns - a.frame.stamp_ns == 100_000_000
    moved = [np.linalg.norm(x.center - y.center) for x, y in zip(a.boxes, b.boxes) if x.instance_id]
    static = [np.linalg.norm(x.center - y.center) for x, y in zip(a.boxes, b.boxes) if not x.instance_id]
    assert max(moved) > 0.1 and max(static) == 0.0
