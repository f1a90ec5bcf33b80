"""Voxelization: cells, point<->voxel maps, out-of-range flags, cylindrical grid, scatter-mean."""
import math

import pytest
import torch

from ov_panoptic_ros.core.config import VoxelConfig, load_config
from ov_panoptic_ros.core.model.voxelize import (grid_shape, scatter_mean, to_grid_space, voxel_centers,
                                                 voxel_input_features, voxelize)

UNIT = VoxelConfig(grid="cartesian", size=(1.0, 1.0, 1.0), range_min=(0.0, 0.0, 0.0), range_max=(4.0, 4.0, 4.0))


def test_hand_case_cells_counts_and_out_of_range():
    points = torch.tensor([
        [0.5, 0.5, 0.5],
        [0.9, 0.1, 0.7],  # same cell as the first
        [3.9, 0.0, 0.0],  # last x cell
        [4.0, 1.0, 1.0],  # on range_max: out (range is [min, max))
        [-0.1, 1.0, 1.0],  # below range_min: out
        [1.5, 2.5, 3.5],
    ])
    v = voxelize(points, UNIT)
    assert v.coords.dtype == torch.int32 and v.point_to_voxel.dtype == torch.long
    assert v.coords.tolist() == [[0, 0, 0], [1, 2, 3], [3, 0, 0]]  # sorted by linear index (x, y, z)
    assert v.point_to_voxel.tolist() == [0, 0, 2, -1, -1, 1]
    assert v.counts.tolist() == [2, 1, 1]
    assert v.spatial_shape == (4, 4, 4)
    assert v.in_range.tolist() == [True, True, True, False, False, True]


def test_non_finite_points_are_flagged_not_crashing():
    points = torch.tensor([[1.0, 1.0, 1.0], [float("nan"), 1.0, 1.0], [float("inf"), 0.0, 0.0]])
    v = voxelize(points, UNIT)
    assert v.point_to_voxel.tolist() == [0, -1, -1]
    assert v.num_voxels == 1


def test_round_trip_gather_returns_each_points_voxel_value():
    gen = torch.Generator().manual_seed(0)
    points = torch.rand(3000, 3, generator=gen) * 12 - 6  # some outside the +-5 range below
    cfg = VoxelConfig(size=(0.5, 0.5, 0.5), range_min=(-5.0, -5.0, -5.0), range_max=(5.0, 5.0, 5.0))
    v = voxelize(points, cfg)
    inside = v.in_range
    assert 0 < int(inside.sum()) < len(points)
    assert int(v.counts.sum()) == int(inside.sum())
    # Every point lies in its voxel's cell.
    centers = voxel_centers(v, cfg)[v.point_to_voxel[inside]]
    assert torch.all((points[inside] - centers).abs() <= 0.25 + 1e-5)
    # Distinct voxels are distinct cells.
    assert torch.unique(v.coords, dim=0).shape[0] == v.num_voxels
    # A per-voxel value scattered to points and mean-pooled back is unchanged.
    voxel_values = torch.randn(v.num_voxels, 4, generator=gen)
    point_values = voxel_values[v.point_to_voxel[inside]]
    pooled = scatter_mean(point_values, v.point_to_voxel[inside], v.num_voxels)
    torch.testing.assert_close(pooled, voxel_values)


def test_scatter_mean_ignores_minus_one_and_zero_fills_empty_segments():
    values = torch.tensor([[1.0], [3.0], [100.0], [5.0]])
    index = torch.tensor([0, 0, -1, 2])
    assert scatter_mean(values, index, 4).flatten().tolist() == [2.0, 0.0, 5.0, 0.0]


def test_cylindrical_mapping_rho_phi_z():
    cfg = VoxelConfig(grid="cylindrical", size=(1.0, math.pi / 2, 1.0),
                      range_min=(0.0, -math.pi, -1.0), range_max=(4.0, math.pi, 1.0))
    points = torch.tensor([
        [0.0, 2.5, 0.5],  # rho 2.5, phi +pi/2 -> cells (2, 3, 1)
        [1.5, 0.0, -0.5],  # rho 1.5, phi 0 -> (1, 2, 0)
        [-1.0, 0.0, 0.0],  # phi exactly +pi, the seam: wraps to -pi, the first phi cell
        [0.0, -3.2, 0.0],  # rho 3.2, phi -pi/2 -> (3, 1, 1)
        [5.0, 0.0, 0.0],  # rho beyond range
    ])
    grid = to_grid_space(points, "cylindrical")
    torch.testing.assert_close(grid[0], torch.tensor([2.5, math.pi / 2, 0.5]))
    v = voxelize(points, cfg)
    cells = {tuple(v.coords[i].tolist()) for i in v.point_to_voxel[:4].tolist()}
    assert cells == {(2, 3, 1), (1, 2, 0), (1, 0, 1), (3, 1, 1)}
    assert v.coords[v.point_to_voxel[2]].tolist() == [1, 0, 1]
    assert v.point_to_voxel[4].item() == -1


def test_full_circle_grid_starting_at_zero_wraps_negative_angles():
    cfg = VoxelConfig(grid="cylindrical", size=(1.0, math.pi / 2, 1.0),
                      range_min=(0.0, 0.0, -1.0), range_max=(4.0, 2 * math.pi, 1.0))
    v = voxelize(torch.tensor([[0.0, -2.5, 0.0], [0.0, 2.5, 0.0]]), cfg)  # phi -pi/2 -> 3 pi/2, and pi/2
    assert v.in_range.all()
    assert v.coords[v.point_to_voxel].tolist() == [[2, 3, 1], [2, 1, 1]]


def test_partial_phi_range_flags_points_outside_it():
    cfg = VoxelConfig(grid="cylindrical", size=(1.0, 0.1, 1.0),
                      range_min=(0.0, -0.5, -1.0), range_max=(4.0, 0.5, 1.0))  # a 1 rad wedge ahead
    v = voxelize(torch.tensor([[2.0, 0.2, 0.0], [-2.0, 0.0, 0.0]]), cfg)
    assert v.point_to_voxel.tolist() == [0, -1]


def test_preset_grids_round_to_the_intended_cell_counts():
    assert grid_shape(load_config("nuscenes").voxel) == (480, 360, 32)
    kitti = load_config("semantickitti").voxel
    assert grid_shape(kitti) == (480, 360, 32) and (kitti.range_min[2], kitti.range_max[2]) == (-4.0, 2.0)  # P3Former
    assert grid_shape(load_config("tiny").voxel) == (256, 256, 20)


def test_point_on_the_rounded_range_edge_goes_to_the_last_cell():
    cfg = load_config("nuscenes").voxel  # 50.26 m in 480 cells of 0.1047 m: the last cell is a bit wider
    v = voxelize(torch.tensor([[50.259, 0.0, 0.0]]), cfg)
    assert v.coords[0, 0].item() == 479


def test_input_features_offsets_positions_and_counts():
    points = torch.tensor([[0.25, 0.5, 0.5], [0.75, 0.5, 0.5], [3.5, 3.5, 3.5]])
    feats = voxel_input_features(points, voxelize(points, UNIT), UNIT)
    assert feats.shape == (2, 8)
    torch.testing.assert_close(feats[0, :3], torch.zeros(3))  # two points symmetric about the cell center
    torch.testing.assert_close(feats[0, 3:6], torch.tensor([0.5, 0.5, 0.5]) / 4.0)
    torch.testing.assert_close(feats[:, 6], torch.log1p(torch.tensor([2.0, 1.0])))
    assert (feats[:, 7] == 0).all()  # no intensity: zeros


def test_input_features_mean_scaled_intensity():
    points = torch.tensor([[0.25, 0.5, 0.5], [0.75, 0.5, 0.5], [3.5, 3.5, 3.5]])
    cfg = VoxelConfig(**{**UNIT.__dict__, "intensity_scale": 1 / 255})
    feats = voxel_input_features(points, voxelize(points, cfg), cfg, torch.tensor([100.0, 200.0, 51.0]))
    torch.testing.assert_close(feats[:, 7], torch.tensor([150.0 / 255, 0.2]))
    torch.testing.assert_close(feats[:, :7], voxel_input_features(points, voxelize(points, cfg), cfg)[:, :7])


@pytest.mark.parametrize("field,value,needle", [
    ("grid", "spherical", "voxel.grid"),
    ("size", (0.0, 1.0, 1.0), "voxel.size"),
    ("range_max", (0.0, 4.0, 4.0), "range_max"),
])
def test_bad_config_is_named(field, value, needle):
    cfg = VoxelConfig(**{**UNIT.__dict__, field: value})
    with pytest.raises(ValueError, match=needle):
        voxelize(torch.zeros(1, 3), cfg)


def test_bad_points_shape_is_named():
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        voxelize(torch.zeros(5, 4), UNIT)


def test_offsets_are_in_cell_sizes_in_every_cell():
    cfg = VoxelConfig(grid="cartesian", size=(0.5, 0.5, 0.5), range_min=(0.0, 0.0, 0.0), range_max=(2.0, 2.0, 2.0))
    points = torch.tensor([[0.375, 0.25, 0.25], [1.25, 1.25, 1.0]])  # cell (0, 0, 0), then cell (2, 2, 2)
    feats = voxel_input_features(points, voxelize(points, cfg), cfg)
    torch.testing.assert_close(feats[:, :3], torch.tensor([[0.25, 0.0, 0.0], [0.0, 0.0, -0.5]]))


def test_a_range_thinner_than_a_cell_is_one_cell():
    cfg = VoxelConfig(grid="cartesian", size=(1.0, 1.0, 1.0), range_min=(0.0, 0.0, 0.0), range_max=(4.0, 4.0, 0.4))
    assert grid_shape(cfg) == (4, 4, 1)


def test_a_full_circle_from_minus_half_pi_wraps_into_its_own_range():
    cfg = VoxelConfig(grid="cylindrical", size=(1.0, math.pi / 2, 1.0),
                      range_min=(0.0, -math.pi / 2, -1.0), range_max=(4.0, 1.5 * math.pi, 1.0))
    v = voxelize(torch.tensor([[-1.0, -1.0, 0.0]]), cfg)  # phi = -3/4 pi -> 5/4 pi, the last quarter
    assert v.coords.tolist() == [[1, 3, 1]]


@pytest.mark.parametrize("cfg,message", [
    (VoxelConfig(grid="cartesian", size=(1.0, 1.0), range_min=(0.0, 0.0, 0.0), range_max=(4.0, 4.0, 4.0)),
     r"^voxel.size needs 3 values, got \[1.0, 1.0\]$"),
    (VoxelConfig(grid="cylindrical", size=(1.0, 0.1, 1.0), range_min=(-1.0, -0.5, -1.0), range_max=(4.0, 0.5, 1.0)),
     r"^cylindrical voxel.range_min radius must be >= 0, got -1.0$"),
])
def test_bad_config_messages(cfg, message):
    with pytest.raises(ValueError, match=message):
        voxelize(torch.zeros(1, 3), cfg)


def test_an_angle_just_below_zero_lands_in_the_last_cell_of_a_zero_to_two_pi_grid():
    """remainder() rounds -1e-30 + 2 pi up to 2 pi itself: the seam must still be inside the grid."""
    cfg = VoxelConfig(grid="cylindrical", size=(1.0, math.pi / 2, 1.0),
                      range_min=(0.0, 0.0, -1.0), range_max=(4.0, 2 * math.pi, 1.0))
    v = voxelize(torch.tensor([[1.0, -1e-30, 0.0]]), cfg)
    assert v.point_to_voxel.tolist() == [0] and v.coords.tolist() == [[1, 3, 1]]
