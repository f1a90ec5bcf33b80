"""Typed config: presets load, files override presets, typos are errors."""
import pytest

from ov_panoptic_ros.core.config import ConfigError, PipelineConfig, load_config, preset_names


def test_presets_exist_and_load():
    assert {"tiny", "nuscenes", "semantickitti"} <= set(preset_names())
    tiny = load_config("tiny")
    assert isinstance(tiny, PipelineConfig) and tiny.name == "tiny" and tiny.checkpoint is None
    nus = load_config("nuscenes")
    assert len(nus.vocabulary.classes) == 16 and len(nus.vocabulary.stuff) == 6
    assert nus.voxel.grid == "cylindrical" and nus.merge.score_threshold == 0.4


def test_file_overrides_preset(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("preset: tiny\nmerge: {score_threshold: 0.55}\nvoxel: {size: [0.5, 0.5, 0.5]}\n")
    cfg = load_config(f)
    assert cfg.merge.score_threshold == 0.55 and cfg.voxel.size == (0.5, 0.5, 0.5)
    assert cfg.clip.model_name == load_config("tiny").clip.model_name
    assert cfg.name == "tiny"


def test_unknown_key_is_an_error(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("preset: tiny\nmerge: {score_treshold: 0.5}\n")
    with pytest.raises(ConfigError, match=r"config.merge: unknown key\(s\) \['score_treshold'\]"):
        load_config(f)


def test_missing_file_and_bad_preset(tmp_path):
    with pytest.raises(ConfigError, match="neither a preset"):
        load_config(tmp_path / "nope.yaml")
    f = tmp_path / "c.yaml"
    f.write_text("preset: huge\n")
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        load_config(f)


def test_overrides_and_round_trip():
    cfg = load_config("tiny", overrides={"device": "cpu", "zeroshot": {"min_cluster_points": 3}})
    assert cfg.device == "cpu" and cfg.zeroshot.min_cluster_points == 3
    from ov_panoptic_ros.core.config import from_dict
    assert from_dict(PipelineConfig, cfg.to_dict()) == cfg


def test_loss_section_is_typed_and_unknown_keys_are_errors(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("preset: tiny\nloss: {object_distill_weight: 0, voxel_distill_distance: l1}\n")
    cfg = load_config(f)
    assert cfg.loss.object_distill_weight == 0 and cfg.loss.voxel_distill_distance == "l1"
    f.write_text("preset: tiny\nloss: {voxel_distil_weight: 0}\n")
    with pytest.raises(ConfigError, match=r"config.loss: unknown key\(s\) \['voxel_distil_weight'\]"):
        load_config(f)


def test_loss_defaults_are_p3formers_and_the_papers():
    loss = load_config("tiny").loss
    assert (loss.class_focal_alpha, loss.class_focal_gamma) == (0.25, 4.0)
    assert (loss.mask_focal_alpha, loss.mask_focal_gamma) == (0.25, 2.0)
    assert (loss.class_weight, loss.mask_weight, loss.dice_weight) == (1.0, 1.0, 2.0)
    assert (loss.match_class_weight, loss.match_mask_weight, loss.match_dice_weight) == (1.0, 1.0, 2.0)
    assert loss.object_distill_weight == 0.1 and loss.voxel_distill_weight == 1.0  # L_O small, as the paper warns
    assert (loss.voxel_distill_distance, loss.object_distill_pooling, loss.deep_supervision) == ("cosine", "soft", True)


@pytest.mark.parametrize("preset", ["nuscenes", "semantickitti"])
def test_full_presets_have_p3formers_sizes(preset):
    cfg = load_config(preset)
    assert (cfg.head.num_queries, cfg.head.hidden_dim, cfg.head.num_layers, cfg.head.num_heads, cfg.head.ffn_dim) == (
        128, 256, 6, 8, 2048)
    assert cfg.fusion.lidar_channels == 256 and cfg.model == "ov"


def test_nuscenes_preset_holds_the_papers_split():
    assert load_config("nuscenes").vocabulary.novel == ("bus", "motorcycle", "pedestrian", "vegetation")


def test_model_must_be_known_and_pfc_has_no_distillation():
    with pytest.raises(ConfigError, match=r"model 'fc-clip' is not one of \('ov', 'pfc'\)"):
        load_config("tiny", overrides={"model": "fc-clip"})
    with pytest.raises(ConfigError, match="model 'pfc' is the baseline without distillation"):
        load_config("tiny", overrides={"model": "pfc"})
    no_distill = {"object_distill_weight": 0, "voxel_distill_weight": 0}
    pfc = load_config("tiny", overrides={"model": "pfc", "loss": no_distill})
    assert pfc.model == "pfc" and (pfc.pfc.base_clip_exponent, pfc.pfc.novel_clip_exponent) == (0.4, 0.8)


def test_preset_weights_are_the_package_s_shipped_files(monkeypatch, tmp_path):
    from pathlib import Path

    from ov_panoptic_ros.core.assets import SOURCE_ROOT

    assert load_config("synthetic").clip.checkpoint == str(SOURCE_ROOT / "models" / "teacher.pt")  # a checkout
    installed = tmp_path / "share" / "ov_panoptic_ros" / "models"
    installed.mkdir(parents=True)
    (installed / "teacher.pt").write_bytes(b"x")
    monkeypatch.setenv("AMENT_PREFIX_PATH", f"/nowhere:{tmp_path}")  # a colcon install's prefix
    assert load_config("synthetic").clip.checkpoint == str(installed / "teacher.pt")
    own = tmp_path / "mine.yaml"
    own.write_text("preset: synthetic\nclip: {checkpoint: weights/t.pt}\n")  # a user's path stays theirs
    assert load_config(str(own)).clip.checkpoint == "weights/t.pt"
    assert Path(load_config(str(own)).clip.checkpoint).is_absolute() is False


def test_dataset_roots_validate_on_their_held_out_part_only():
    """One nuScenes or SemanticKITTI root holds train and val: the options say which part, and only parts
    known to be apart may train and validate."""
    from ov_panoptic_ros.train.config import SourceConfig, _shared_data

    def shared(a_spec, a_opts, b_spec, b_opts):
        return _shared_data(SourceConfig(a_spec, a_opts), SourceConfig(b_spec, b_opts))

    kitti_train = {"sequences": "00,01,02,03,04,05,06,07,09,10"}
    assert not shared("semantickitti:/d", {"sequences": ["08"]}, "semantickitti:/d", kitti_train)
    assert shared("semantickitti:/d", {"sequences": [8]}, "semantickitti:/d", {"sequences": "08"})
    assert shared("semantickitti:/d", {}, "semantickitti:/d", kitti_train)  # all sequences: overlaps
    trainval = {"version": "v1.0-trainval"}
    assert not shared("nuscenes:/d", {**trainval, "split": "val"}, "nuscenes:/d", {**trainval, "split": "train"})
    assert shared("nuscenes:/d", {"split": "mini_val"}, "nuscenes:/d", {**trainval, "split": "train"})
    assert not shared("nuscenes:/d", {"scenes": "scene-0061"}, "nuscenes:/d", {"scenes": ["scene-0103"]})
    assert shared("nuscenes:/d", {"split": "val"}, "nuscenes:/other", {"split": "val"}) is False  # other roots


def test_every_shipped_training_config_loads_and_the_paper_recipes_follow_the_paper():
    from ov_panoptic_ros.train.config import config_names, load_train_config

    for name in config_names():
        load_train_config(name)  # a broken shipped config is an error here, not on a cluster
    for name, frames in (("nuscenes_paper", 28_130), ("semantickitti_paper", 19_130)):
        pipeline, train = load_train_config(name)
        per_step = 8 * train.batch_frames  # the recipe's 8 GPUs
        assert train.steps == 40 * -(-frames // per_step)  # 40 epochs of whole steps
        assert train.optimizer.lr == 8e-4 and train.optimizer.weight_decay == 0.01
        assert train.schedule.kind == "multistep" and all(0 < m < train.steps for m in train.schedule.milestones)
        assert pipeline.head.num_queries == 128 and pipeline.head.num_layers == 6 and pipeline.vocabulary.novel
