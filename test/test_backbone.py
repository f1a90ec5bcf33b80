"""Sparse UNet: device-chosen conv algorithm, config-driven shape, row alignment, gradients."""
import pytest
import spconv.pytorch as spconv
import torch
from torch import nn

from ov_panoptic_ros.core.config import BackboneConfig, VoxelConfig
from ov_panoptic_ros.core.model.backbone import SparseUNet, conv_algo_for
from ov_panoptic_ros.core.model.voxelize import VOXEL_INPUT_CHANNELS, voxel_input_features, voxelize
from ov_panoptic_ros.data.synthetic import make_scene

VOXEL = VoxelConfig(size=(0.4, 0.4, 0.4), range_min=(-32.0, -32.0, -3.0), range_max=(32.0, 32.0, 5.0))
SPCONV_CONVS = (spconv.SubMConv3d, spconv.SparseConv3d, spconv.SparseInverseConv3d)


def _inputs(num_points=3000, seed=0):
    scene = make_scene(seed=seed, num_points=num_points, image_size=(64, 48))
    points = torch.from_numpy(scene.frame.points)
    v = voxelize(points, VOXEL)
    return voxel_input_features(points, v, VOXEL), v


def _convs(net):
    return [m for m in net.modules() if isinstance(m, SPCONV_CONVS)]


def test_algorithm_follows_the_device_and_reaches_every_conv():
    assert conv_algo_for("cpu") == spconv.ConvAlgo.Native
    assert conv_algo_for(torch.device("cuda")) == spconv.ConvAlgo.MaskImplicitGemm
    net = SparseUNet(VOXEL_INPUT_CHANNELS, BackboneConfig(channels=(8, 16), blocks_per_level=1), "cpu")
    convs = _convs(net)
    assert convs and all(c.algo == spconv.ConvAlgo.Native for c in convs)


def test_channels_and_depth_come_from_the_config():
    small = SparseUNet(VOXEL_INPUT_CHANNELS, BackboneConfig(channels=(8, 16), blocks_per_level=1), "cpu")
    deep = SparseUNet(VOXEL_INPUT_CHANNELS, BackboneConfig(channels=(8, 16, 32), blocks_per_level=2), "cpu")
    assert len([c for c in _convs(small) if isinstance(c, spconv.SparseConv3d)]) == 1
    assert len([c for c in _convs(deep) if isinstance(c, spconv.SparseConv3d)]) == 2
    assert len(_convs(deep)) > len(_convs(small))
    assert max(c.out_channels for c in _convs(deep)) == 32
    assert small.out_channels == 8


def test_one_output_row_per_voxel_in_input_order():
    feats, v = _inputs()
    net = SparseUNet(VOXEL_INPUT_CHANNELS, BackboneConfig(channels=(8, 16, 32)), "cpu").eval()
    with torch.no_grad():
        out = net(feats, v.coords, v.spatial_shape)
        perm = torch.randperm(v.num_voxels, generator=torch.Generator().manual_seed(1))
        out_perm = net(feats[perm], v.coords[perm], v.spatial_shape)
    assert out.shape == (v.num_voxels, 8) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    # Shuffling the input voxels shuffles the output rows the same way: rows stay aligned with voxels.
    torch.testing.assert_close(out_perm, out[perm], rtol=1e-4, atol=1e-5)


def test_deeper_levels_change_the_output():
    """The up path really carries coarse-level context (a broken skip/up wiring would not)."""
    feats, v = _inputs()
    torch.manual_seed(0)
    net = SparseUNet(VOXEL_INPUT_CHANNELS, BackboneConfig(channels=(8, 16, 32)), "cpu").eval()
    with torch.no_grad():
        base = net(feats, v.coords, v.spatial_shape)
        net.downs[-1].conv.weight.mul_(3.0)  # only the coarsest level changes
        changed = net(feats, v.coords, v.spatial_shape)
    assert not torch.allclose(base, changed)


def test_odd_grid_edge_voxels_get_coarse_features():
    """Grids are padded to a multiple of 2**levels, so a voxel in the last cell of an odd axis is not cut off."""
    cfg = VoxelConfig(size=(1.0, 1.0, 1.0), range_min=(0.0, 0.0, 0.0), range_max=(7.0, 7.0, 7.0))  # 7 cells
    points = torch.tensor([[6.5, 6.5, 6.5], [6.5, 5.5, 6.5], [0.5, 0.5, 0.5], [1.5, 0.5, 0.5]])
    v = voxelize(points, cfg)
    feats = voxel_input_features(points, v, cfg)
    torch.manual_seed(0)
    net = SparseUNet(VOXEL_INPUT_CHANNELS, BackboneConfig(channels=(16, 16, 16)), "cpu").eval()
    with torch.no_grad():
        base = net(feats, v.coords, v.spatial_shape)
        net.downs[-1].conv.weight.mul_(3.0)
        changed = net(feats, v.coords, v.spatial_shape)
    edge = v.point_to_voxel[0]
    assert not torch.allclose(base[edge], changed[edge])


def test_backward_reaches_every_parameter():
    feats, v = _inputs(2000)
    torch.manual_seed(0)
    net = SparseUNet(VOXEL_INPUT_CHANNELS, BackboneConfig(channels=(8, 16, 32), blocks_per_level=2), "cpu")
    out = net(feats, v.coords, v.spatial_shape)
    (out * torch.randn_like(out)).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_layout_blocks_levels_and_strides_follow_the_docstring():
    """Levels of `blocks_per_level` residual blocks (one fewer on the way up, after the merge conv), stride-2
    2x2x2 downs, BatchNorm + ReLU after each conv, and each conv tagged with the level it writes to."""
    net = SparseUNet(VOXEL_INPUT_CHANNELS, BackboneConfig(channels=(8, 16, 32), blocks_per_level=3), "cpu")
    assert [len(e) for e in net.encoders] == [3, 3, 3] and [len(d) for d in net.decoders] == [2, 2]
    assert [type(m) for m in net.stem.norm] == [nn.BatchNorm1d, nn.ReLU] and net.stem.conv.output_level == 0
    for lv in range(3):
        assert all(c.output_level == lv for c in _convs(net.encoders[lv]))
    for lv in range(2):
        down, up = net.downs[lv].conv, net.ups[lv].conv
        assert tuple(down.stride) == (2, 2, 2) and tuple(down.kernel_size) == (2, 2, 2)
        assert (down.output_level, up.output_level, net.merges[lv].conv.output_level) == (lv + 1, lv, lv)
        assert all(c.output_level == lv for c in _convs(net.decoders[lv]))
    one = SparseUNet(VOXEL_INPUT_CHANNELS, BackboneConfig(channels=(1,), blocks_per_level=1), "cpu")
    assert one.out_channels == 1 and len(one.downs) == 0  # one level of one channel is allowed
    for cfg, message in ((BackboneConfig(channels=(8, 0)), r"backbone.channels must be a non-empty list of positive"
                                                           r" ints, got \[8, 0\]$"),
                         (BackboneConfig(channels=()), r"got \[\]$"),
                         (BackboneConfig(channels=(8,), blocks_per_level=0), r"^backbone.blocks_per_level must be >= 1,"
                                                                              r" got 0$")):
        with pytest.raises(ValueError, match=message):
            SparseUNet(VOXEL_INPUT_CHANNELS, cfg, "cpu")
