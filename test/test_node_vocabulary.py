"""Run-time vocabulary changes through the real parameter services, as `ros2 param set/load` do them."""
import numpy as np
from node_frames import Frames
from rclpy.parameter import Parameter
from test_node import check_labels_consistent, output_arrays

from ov_panoptic_ros.core.frame import UNLABELED
from ov_panoptic_ros.testing.probe import wait_until

STRINGS = Parameter.Type.STRING_ARRAY
NEW_CLASSES = ["automobile,car", "person,pedestrian", "street,road", "tree,vegetation"]
NEW_STUFF = ["street", "tree"]


def _vocab_by_version(probe):
    return {v["version"]: v for v in probe.vocabularies()}


def _first_seq(probe, topic, pred):
    return min((r.seq for r in probe.of(topic) if pred(r)), default=None)


def _cloud_version(r):
    return int(output_arrays(r.msg)["vocab_version"][0]) if r.msg.width else None


def test_accepted_changes_switch_label_space_in_order(start_node, scenes):
    node, probe = start_node()
    frames = Frames(probe, scenes[0])
    before = frames.send()
    assert (before["vocab_version"] == 0).all()

    # plain SetParameters, vocabulary + stuff in ONE request (ros2 param load): applied together
    results = probe.set_parameters([Parameter("vocabulary", STRINGS, NEW_CLASSES),
                                    Parameter("stuff_classes", STRINGS, NEW_STUFF)])
    assert [r.successful for r in results] == [True, True], [r.reason for r in results]
    assert wait_until(lambda: 1 in _vocab_by_version(probe), 20.0)
    v1 = _vocab_by_version(probe)[1]
    assert v1["classes"] == ["automobile", "person", "street", "tree"] and v1["stuff"] == NEW_STUFF
    arr = frames.send()
    assert (arr["vocab_version"] == 1).all()
    check_labels_consistent(arr, v1)
    assert (arr["label"][arr["label"] != UNLABELED] < 4).all() and (arr["label"] != UNLABELED).any()

    # SetParametersAtomically, then two quick changes: the later one must win, in order
    res = probe.set_parameters_atomically([Parameter("vocabulary", STRINGS, ["bus", "sky"]),
                                           Parameter("stuff_classes", STRINGS, ["sky"])])
    assert res.successful, res.reason
    assert probe.set_parameters([Parameter("vocabulary", STRINGS, ["bus", "sky", "lamp post"])])[0].successful
    assert wait_until(lambda: 3 in _vocab_by_version(probe), 20.0)
    versions = [v["version"] for v in probe.vocabularies()]
    assert versions == sorted(versions) and versions[-2:] == [2, 3]
    assert _vocab_by_version(probe)[3]["classes"] == ["bus", "sky", "lamp post"]
    arr = frames.send()
    assert (arr["vocab_version"] == 3).all()
    check_labels_consistent(arr, _vocab_by_version(probe)[3])
    assert node.get_parameter("vocabulary").value == ["bus", "sky", "lamp post"]

    # every cloud carries one version, and its vocabulary message arrived before the first such cloud
    for version in {_cloud_version(r) for r in probe.of("points")}:
        first_cloud = _first_seq(probe, "points", lambda r: _cloud_version(r) == version)
        announce = _first_seq(probe, "vocabulary", lambda r, v=version: f'"version": {v},' in r.msg.data)
        assert announce is not None and announce < first_cloud, f"v{version} announced after its first cloud"
    assert wait_until(lambda: probe.counter("vocabulary_changes_accepted") == 3, 5.0)


def test_frames_keep_flowing_and_never_mix_vocabularies_during_a_change(start_node, scenes):
    """Embedding happens on the vocabulary worker: frames sent meanwhile come out, each in one vocabulary,
    versions never going backwards."""
    node, probe = start_node()
    frames = Frames(probe, scenes[1])
    long_templates = [f"a photo number {i} of a {{}}." for i in range(60)]  # many new prompts: slower to embed
    assert probe.set_parameters([Parameter("prompt_templates", STRINGS, long_templates)])[0].successful
    versions = []
    for _ in range(3):
        per_point = np.unique(frames.send()["vocab_version"]).tolist()
        assert len(per_point) == 1, f"one cloud mixes vocabularies {per_point}"
        versions += per_point
    assert wait_until(lambda: 1 in _vocab_by_version(probe), 60.0)
    versions += np.unique(frames.send()["vocab_version"]).tolist()
    assert versions == sorted(versions) and versions[-1] == 1 and set(versions) <= {0, 1}


BAD_CHANGES = [
    ([Parameter("vocabulary", STRINGS, [])], "empty"),
    ([Parameter("vocabulary", STRINGS, ["car", "truck", "Car"])], "duplicate"),
    ([Parameter("vocabulary", STRINGS, ["car", "  ", "road"])], "blank"),
    ([Parameter("vocabulary", STRINGS, ["car", "bus,", "road"])], "blank"),
    ([Parameter("vocabulary", STRINGS, [f"class {i}" for i in range(65536)])], "uint16"),
    ([Parameter("stuff_classes", STRINGS, ["sky"])], "not in the vocabulary"),
    ([Parameter("prompt_templates", STRINGS, ["a photo"])], "placeholder"),
    ([Parameter("vocabulary", Parameter.Type.STRING, "car")], "type"),
]


def test_bad_changes_rejected_with_reason_and_old_vocabulary_kept(start_node, scenes):
    node, probe = start_node()
    frames = Frames(probe, scenes[2])
    old = node.get_parameter("vocabulary").value
    for params, reason in BAD_CHANGES:
        (result,) = probe.set_parameters(params)
        assert not result.successful and reason in result.reason.lower(), (params[0].name, result.reason)
    # atomically: a good vocabulary with a bad stuff class is rejected as a whole
    res = probe.set_parameters_atomically([Parameter("vocabulary", STRINGS, ["a", "b"]),
                                           Parameter("stuff_classes", STRINGS, ["c"])])
    assert not res.successful and "not in the vocabulary" in res.reason

    assert node.get_parameter("vocabulary").value == old
    arr = frames.send()
    assert (arr["vocab_version"] == 0).all()
    check_labels_consistent(arr, probe.vocabularies()[0])
    assert [v["version"] for v in probe.vocabularies()] == [0]
    assert wait_until(lambda: probe.counter("vocabulary_changes_rejected") >= len(BAD_CHANGES) - 1, 5.0)


def test_a_new_vocabulary_alone_keeps_the_stuff_classes_it_still_names(start_node, scenes):
    """`ros2 param set vocabulary` alone: stuff classes no longer in it are dropped, not a reason to refuse.
    A plain SetParameters request is not atomic (ROS semantics): a bad stuff class after a good vocabulary
    fails alone, the vocabulary stays set; SetParametersAtomically is the all-or-nothing way."""
    node, probe = start_node()
    frames = Frames(probe, scenes[0])
    assert "road" in node.get_parameter("stuff_classes").value
    (result,) = probe.set_parameters([Parameter("vocabulary", STRINGS, ["car", "road", "vegetation,tree"])])
    assert result.successful, result.reason
    assert node.get_parameter("stuff_classes").value == ["road", "vegetation"]
    assert wait_until(lambda: 1 in _vocab_by_version(probe), 20.0)
    assert _vocab_by_version(probe)[1]["stuff"] == ["road", "vegetation"]
    check_labels_consistent(frames.send(), _vocab_by_version(probe)[1])

    results = probe.set_parameters([Parameter("vocabulary", STRINGS, ["a", "b"]),
                                    Parameter("stuff_classes", STRINGS, ["c"])])
    assert [r.successful for r in results] == [True, False] and "not in the vocabulary" in results[1].reason
    assert wait_until(lambda: 2 in _vocab_by_version(probe), 20.0)
    assert _vocab_by_version(probe)[2]["classes"] == ["a", "b"] and _vocab_by_version(probe)[2]["stuff"] == []
    assert sorted(_vocab_by_version(probe)) == [0, 1, 2]  # one version per request, none for the refusal
