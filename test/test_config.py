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
