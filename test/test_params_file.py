"""A params file read for one node as rcl reads it: what `ov-panoptic param load` sends and what the node's
unknown-parameter warning checks are the same names."""
import pytest

from ov_panoptic_ros.ros.params_file import ParamsFileError, node_parameters

FILE = """
/**:
  ros__parameters:
    budget_ms: 50.0
    sync: {max_offset_s: 0.02, buffer_s: 1.0}
/robot/ov_panoptic:
  ros__parameters:
    sync: {max_offset_s: 0.05}
    vocabulary: [car, road]
other_node:
  ros__parameters:
    not_ours: 1
"""


def test_the_wildcard_section_then_the_nodes_own_which_wins(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(FILE)
    assert node_parameters(path, "/robot/ov_panoptic") == {
        "budget_ms": 50.0, "sync.max_offset_s": 0.05, "sync.buffer_s": 1.0, "vocabulary": ["car", "road"]}
    assert node_parameters(path, "robot/ov_panoptic") == node_parameters(path, "/robot/ov_panoptic")
    # rcl matches the fully qualified name: the same node name in another namespace gets only `/**`
    assert node_parameters(path, "/ov_panoptic") == {"budget_ms": 50.0, "sync.max_offset_s": 0.02,
                                                     "sync.buffer_s": 1.0}
    assert node_parameters(path, "/other_node") == {"budget_ms": 50.0, "sync.max_offset_s": 0.02,
                                                    "sync.buffer_s": 1.0, "not_ours": 1}


@pytest.mark.parametrize("text, message", [
    ("other_node:\n  ros__parameters: {a: 1}\n", "has no `/ov_panoptic:` or `/**:` section"),
    ("/**:\n  not_ros_parameters: {a: 1}\n", "has no `/ov_panoptic:` or `/**:` section"),
    ("- a list\n", "has no `/ov_panoptic:` or `/**:` section"),
    ("/**: [unclosed\n", "params file"),
])
def test_a_file_without_our_section_or_not_yaml_is_one_error_naming_it(tmp_path, text, message):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ParamsFileError, match="p.yaml") as e:
        node_parameters(path, "ov_panoptic")
    assert message in str(e.value)


def test_a_missing_file_names_the_path(tmp_path):
    with pytest.raises(ParamsFileError, match="nowhere.yaml"):
        node_parameters(tmp_path / "nowhere.yaml", "ov_panoptic")
