"""Checkpoints: round trip, and every mismatch refused with both values named before weights are used."""
import numpy as np
import pytest
import torch

from ov_panoptic_ros.core.config import load_config
from ov_panoptic_ros.core.model.checkpoint import (FORMAT_VERSION, CheckpointError, check_compatible, load_network,
                                                   network_config, read_checkpoint, save_checkpoint)
from ov_panoptic_ros.core.model.network import build_network
from ov_panoptic_ros.data.synthetic import make_scene, network_inputs, random_class_embeddings, scene_vocabulary

CLIP_ID = "ov-tiny-vit@random"
NO_DISTILL = {"loss": {"object_distill_weight": 0, "voxel_distill_weight": 0}}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny network with non-default weights and running stats, saved once for the module."""
    cfg = load_config("tiny")
    torch.manual_seed(0)
    net = build_network(cfg, 64)
    scene = make_scene(seed=2, num_points=1500, image_size=(64, 48))
    emb = random_class_embeddings(scene_vocabulary(), 64)
    points, features, _, _ = network_inputs(scene, emb)
    net(points, features, emb, torch.from_numpy(scene.frame.intensity))  # train mode: BatchNorm running stats move
    with torch.no_grad():
        net.head.logit_scale.fill_(3.0)
    path = save_checkpoint(tmp_path_factory.mktemp("ckpt") / "net.pt", net, cfg, CLIP_ID)
    return path, net, cfg, scene, emb


def test_round_trip_restores_weights_eval_mode_and_predictions(saved):
    path, net, cfg, scene, emb = saved
    loaded = load_network(path, cfg, "cpu")
    assert not loaded.training and loaded.clip_model_id == CLIP_ID and loaded.clip_dim == 64
    assert loaded.model == "ov" and loaded.train_vocabulary.classes == net.train_vocabulary.classes
    assert loaded.stuff_names == net.stuff_names == ("road", "sidewalk", "building")  # vegetation is novel
    original = net.state_dict()
    for name, value in loaded.state_dict().items():
        assert torch.equal(value, original[name]), name
    points, features, _, _ = network_inputs(scene, emb)
    inputs = (points, features, emb, torch.from_numpy(scene.frame.intensity))
    a, b = net.predict(*inputs), loaded.predict(*inputs)
    assert np.array_equal(a.labels, b.labels) and np.allclose(a.scores, b.scores)


def test_file_is_plain_enough_for_weights_only_load(saved):
    payload = torch.load(saved[0], weights_only=True)
    assert payload["format_version"] == FORMAT_VERSION
    assert payload["clip"] == {"model_name": "ov-tiny-vit", "model_id": CLIP_ID, "embed_dim": 64}
    assert payload["network_config"]["backbone"] == {"channels": [16, 32, 64], "blocks_per_level": 1}
    assert payload["network_config"]["voxel"]["size"] == [0.4, 0.4, 0.4]
    assert set(payload["network_config"]) == {"model", "voxel", "backbone", "fusion", "head"}
    assert payload["network_config"]["model"] == "ov"
    assert payload["train_vocabulary"] == {
        "classes": ["car", "truck", "road,driveable surface", "sidewalk", "building,manmade structure"],
        "stuff": ["road", "sidewalk", "building"]}


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_network(missing, load_config("tiny"), "cpu")


@pytest.mark.parametrize("override,needles", [
    ({"backbone": {"channels": [16, 32]}}, ["backbone.channels", "[16, 32, 64]", "[16, 32]"]),
    ({"voxel": {"size": [0.2, 0.2, 0.2]}}, ["voxel.size", "[0.4, 0.4, 0.4]", "[0.2, 0.2, 0.2]"]),
    ({"head": {"num_queries": 8}}, ["head.num_queries", "16", "8"]),
    ({"fusion": {"lidar_channels": 64}}, ["fusion.lidar_channels", "32", "64"]),
    ({"voxel": {"intensity_scale": 0.5}}, ["voxel.intensity_scale", "1.0", "0.5"]),
    ({"model": "pfc", **NO_DISTILL}, ["holds model 'ov' (the paper's network", "asks for model 'pfc' (the P3Former"]),
    ({"voxel": {"grid": "cylindrical"}}, ["voxel.grid", "'cartesian'", "'cylindrical'"]),
    ({"clip": {"model_name": "ViT-B-16"}}, ["clip.model_name", "'ov-tiny-vit'", "'ViT-B-16'"]),
    ({"head": {"position_aware": True}}, ["head.position_aware", "False", "True"]),
])
def test_mismatch_is_refused_naming_both_values(saved, override, needles):
    with pytest.raises(CheckpointError) as err:
        load_network(saved[0], load_config("tiny", override), "cpu")
    for needle in [repr(str(saved[0]))] + needles:  # the message names the file too
        assert needle in str(err.value), (needle, str(err.value))


def test_settings_that_do_not_shape_the_network_may_differ(saved):
    """The run-time vocabulary (and its split) may differ: the network keeps the training vocabulary it was saved
    with."""
    cfg = load_config("tiny", {"merge": {"score_threshold": 0.6}, "loss": {"dice_weight": 5.0},
                               "vocabulary": {"classes": ["car", "road"], "stuff": ["road"], "novel": []}})
    loaded = load_network(saved[0], cfg, "cpu")
    assert loaded.merge_cfg.score_threshold == 0.6 and loaded.stuff_names == ("road", "sidewalk", "building")


def test_pfc_checkpoint_round_trips_and_is_refused_as_ov(tmp_path):
    cfg = load_config("tiny", {"model": "pfc", **NO_DISTILL})
    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "pfc.pt", build_network(cfg, 64), cfg, CLIP_ID)
    assert load_network(path, cfg, "cpu").model == "pfc"
    with pytest.raises(CheckpointError, match=r"holds model 'pfc' \(the P3Former \+ FC-CLIP baseline\) but the"
                                              r" config asks for model 'ov' \(the paper's network"):
        load_network(path, load_config("tiny"), "cpu")


def test_metadata_is_checked_before_any_weight_is_used(saved, tmp_path):
    """A checkpoint with broken weights AND a config mismatch reports the mismatch: metadata comes first."""
    payload = torch.load(saved[0], weights_only=True)
    payload["state_dict"] = {"head.logit_scale": torch.zeros(7)}
    broken = tmp_path / "broken.pt"
    torch.save(payload, broken)
    with pytest.raises(CheckpointError, match="backbone.channels"):
        load_network(broken, load_config("tiny", {"backbone": {"channels": [8, 16]}}), "cpu")
    with pytest.raises(CheckpointError, match=f"^network checkpoint {str(broken)!r} weights do not fit the network"):
        load_network(broken, load_config("tiny"), "cpu")


def test_foreign_corrupt_and_future_files_are_refused(saved, tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {}}, foreign)
    with pytest.raises(CheckpointError, match=f"^{str(foreign)!r} is not an ov_panoptic_ros network checkpoint$"):
        read_checkpoint(foreign)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"definitely not a zip file")
    with pytest.raises(CheckpointError, match=f"^network checkpoint {str(corrupt)!r} cannot be read: "):
        read_checkpoint(corrupt)
    for version in (FORMAT_VERSION - 1, FORMAT_VERSION + 1):  # the previous format had other heads
        other = tmp_path / f"v{version}.pt"
        payload = torch.load(saved[0], weights_only=True)
        payload["format_version"] = version
        torch.save(payload, other)
        with pytest.raises(CheckpointError, match=f"^network checkpoint {str(other)!r} has format version {version};"
                                                  " this code reads version 2$"):
            read_checkpoint(other)


def test_save_replaces_atomically_and_creates_folders(saved, tmp_path):
    _, net, cfg, _, _ = saved
    path = save_checkpoint(tmp_path / "a" / "b" / "net.pt", net, cfg, CLIP_ID)
    assert path.is_file() and not (path.parent / "net.pt.tmp").exists()


class _NotPlainData:
    """Anything torch.load would have to unpickle as code."""


def test_a_checkpoint_holding_pickled_objects_is_never_unpickled(saved, tmp_path):
    payload = torch.load(saved[0], weights_only=True)
    payload["extra"] = _NotPlainData()
    tricky = tmp_path / "tricky.pt"
    torch.save(payload, tricky)
    with pytest.raises(CheckpointError, match="cannot be read"):
        read_checkpoint(tricky)


@pytest.mark.parametrize("change", ["missing", "unexpected"])
def test_weights_that_miss_or_add_a_tensor_are_refused(saved, tmp_path, change):
    payload = torch.load(saved[0], weights_only=True)
    if change == "missing":
        payload["state_dict"].pop("head.logit_scale")
    else:
        payload["state_dict"]["head.extra"] = torch.zeros(2)
    path = tmp_path / f"{change}.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=f"(?s)weights do not fit the network: .*{change.capitalize()} key"):
        load_network(path, load_config("tiny"), "cpu")


def _payload(saved, **network_config_changes):
    payload = torch.load(saved[0], weights_only=True)
    for dotted, value in network_config_changes.items():
        section, _, key = dotted.partition("__")
        if key:
            if value is None:
                payload["network_config"][section].pop(key)
            else:
                payload["network_config"][section][key] = value
        else:
            payload["network_config"][section] = value
    return payload


@pytest.mark.parametrize("changes,message", [
    ({"head__num_queries": None}, "head.num_queries: checkpoint has None, config has 16"),  # a key new to the config
    ({"head": 5}, "head: checkpoint has 5, config has {"),  # a section that is no dict
    ({"head__num_queries": "16"}, "head.num_queries: checkpoint has '16', config has 16"),
    ({"backbone__blocks_per_level": 2, "head__num_queries": 8},
     "backbone.blocks_per_level: checkpoint has 2, config has 1; head.num_queries: checkpoint has 8, config has 16"),
])
def test_metadata_mismatches_are_listed_with_their_dotted_names(saved, changes, message):
    with pytest.raises(CheckpointError) as err:
        check_compatible(_payload(saved, **changes), load_config("tiny"))
    assert str(err.value).startswith("network checkpoint 'checkpoint' does not match the config: " + message)


def test_float_noise_is_no_mismatch_but_an_unknown_model_is(saved):
    cfg = load_config("tiny", {"voxel": {"range_min": [-51.2, -51.2, 0.0]}})
    payload = torch.load(saved[0], weights_only=True)
    payload["network_config"] = network_config(cfg)
    payload["network_config"]["voxel"]["range_min"][2] = 1e-13
    payload["network_config"]["voxel"]["intensity_scale"] = 1.0 + 1e-12
    check_compatible(payload, cfg)
    payload["network_config"]["model"] = "xyz"
    with pytest.raises(CheckpointError, match=r"^network checkpoint 'checkpoint' holds model 'xyz' \(\?\) but"):
        check_compatible(payload, cfg)


def test_a_checkpoint_from_before_position_aware_reads_as_a_head_without_it(saved, tmp_path):
    """models/ov_synthetic.pt was saved before head.position_aware existed: it loads as position_aware false."""
    old = tmp_path / "old.pt"
    torch.save(_payload(saved, head__position_aware=None), old)
    assert "position_aware" not in torch.load(old, weights_only=True)["network_config"]["head"]
    assert read_checkpoint(old)["network_config"]["head"]["position_aware"] is False
    assert load_network(old, saved[2], "cpu").head.position is None
    with pytest.raises(CheckpointError, match="head.position_aware: checkpoint has False, config has True"):
        load_network(old, load_config("tiny", {"head": {"position_aware": True}}), "cpu")
