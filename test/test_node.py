"""The node over real DDS with the real tiny pipeline: round trip, outputs' contract, start-up errors."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from rclpy.parameter import Parameter
from visualization_msgs.msg import Marker

from ov_panoptic_ros.bridge.clouds import FLOAT32, UINT16, UINT32, read_cloud
from ov_panoptic_ros.bridge.packing import pack_rgb
from ov_panoptic_ros.bridge.stamps import stamp_to_ns
from ov_panoptic_ros.core.frame import UNLABELED, class_color
from ov_panoptic_ros.testing.probe import Probe, wait_until
from ov_panoptic_ros.testing.scene_msgs import driver_cloud, scene_messages

EXPECTED_FIELDS = [("x", 0, FLOAT32, 1), ("y", 4, FLOAT32, 1), ("z", 8, FLOAT32, 1), ("intensity", 12, FLOAT32, 1),
                   ("label", 16, UINT16, 1), ("vocab_version", 18, UINT16, 1), ("instance_id", 20, UINT32, 1),
                   ("score", 24, FLOAT32, 1), ("rgb", 28, FLOAT32, 1)]


def output_arrays(msg) -> np.ndarray:
    """Decode an output cloud through its own field table (what a consumer would do)."""
    dt = np.dtype({"names": [f.name for f in msg.fields],
                   "formats": [{FLOAT32: "<f4", UINT16: "<u2", UINT32: "<u4"}[f.datatype] for f in msg.fields],
                   "offsets": [f.offset for f in msg.fields], "itemsize": msg.point_step})
    return np.frombuffer(bytes(msg.data), dt, count=msg.width)


def check_labels_consistent(arr: np.ndarray, vocab: dict) -> None:
    """Every point: a label in the vocabulary (or UNLABELED with score 0), stuff/unlabeled without instance,
    and the class color (gray when unlabeled)."""
    n_classes = len(vocab["classes"])
    labels, scores, inst = arr["label"], arr["score"], arr["instance_id"]
    unl = labels == UNLABELED
    assert ((labels < n_classes) | unl).all()
    assert (scores[unl] == 0).all() and (inst[unl] == 0).all()
    assert ((scores >= 0) & (scores <= 1)).all() and (scores[~unl] > 0).all()
    stuff = np.array([c in vocab["stuff"] for c in vocab["classes"]] + [True])
    assert (inst[stuff[np.minimum(labels, n_classes)]] == 0).all()
    lut = np.append(pack_rgb(np.array(vocab["colors"])), pack_rgb(np.array([[128, 128, 128]])))
    np.testing.assert_array_equal(arr["rgb"].view(np.uint32), lut[np.minimum(labels, n_classes)])
    for name, color in zip(vocab["classes"], vocab["colors"]):
        assert tuple(color) == class_color(name)


def test_round_trip_cloud_markers_vocabulary_diagnostics(start_node, scenes, spin):
    node, probe = start_node()
    scene = scenes[0]
    msgs = scene_messages(scene)
    xyz = scene.frame.points.copy()
    xyz[::100] = np.nan  # 30 invalid points: dropped from the output, counted
    xyz[1::100, 1] = np.inf
    msgs.cloud = driver_cloud(xyz, scene.frame.intensity, scene.frame.stamp_ns, "lidar_top")
    n_finite = int(np.isfinite(xyz).all(1).sum())
    probe.publish_scene(msgs)
    assert wait_until(lambda: probe.clouds() and probe.of("instances"), 30.0)

    out = probe.clouds()[0]
    assert [(f.name, f.offset, f.datatype, f.count) for f in out.fields] == EXPECTED_FIELDS
    assert out.header.frame_id == "lidar_top" and stamp_to_ns(out.header.stamp) == scene.frame.stamp_ns
    assert (out.height, out.width, out.point_step, out.row_step) == (1, n_finite, 32, 32 * n_finite)
    assert out.is_dense and not out.is_bigendian
    arr = output_arrays(out)
    finite = np.isfinite(xyz).all(1)
    np.testing.assert_array_equal(read_cloud(out).xyz, xyz[finite])  # same points, same order
    np.testing.assert_array_equal(arr["intensity"], scene.frame.intensity[finite])
    (vocab,) = probe.vocabularies()
    assert vocab["version"] == 0 and (arr["vocab_version"] == 0).all()
    check_labels_consistent(arr, vocab)
    assert (arr["label"] != UNLABELED).sum() > 100  # the cameras really labeled points

    markers = probe.of("instances")[0].msg.markers
    assert markers[0].action == Marker.DELETEALL
    boxes = [m for m in markers if m.type == Marker.CUBE]
    texts = [m for m in markers if m.type == Marker.TEXT_VIEW_FACING]
    thing_ids = set(np.unique(arr["instance_id"]).tolist()) - {0}
    assert len(boxes) == len(texts) == len(thing_ids) > 0 and len(markers) == 1 + 2 * len(boxes)
    assert len({m.id for m in boxes}) == len(boxes)
    for m in markers:
        assert m.header.frame_id == "lidar_top" and stamp_to_ns(m.header.stamp) == scene.frame.stamp_ns
    for t in texts:
        name, score = t.text.rsplit(" ", 1)
        assert name in vocab["classes"] and name not in vocab["stuff"] and 0 < float(score) <= 1

    # ~/detections: one Detection3D per thing instance, joinable with the cloud by instance id
    assert wait_until(lambda: probe.of("detections"), 10.0)
    detections = probe.of("detections")[0].msg
    assert stamp_to_ns(detections.header.stamp) == scene.frame.stamp_ns and detections.header.frame_id == "lidar_top"
    assert {int(d.id) for d in detections.detections} == thing_ids
    for d in detections.detections:
        (hyp,) = d.results
        points = arr["instance_id"] == int(d.id)
        assert vocab["classes"][int(np.bincount(arr["label"][points]).argmax())] == hyp.hypothesis.class_id
        assert 0 < hyp.hypothesis.score <= 1 and min(d.bbox.size.x, d.bbox.size.y, d.bbox.size.z) >= 0

    late = spin.add(Probe(name="late_joiner", cameras=()))  # joins after the vocabulary was published
    assert wait_until(lambda: late.vocabularies(), 10.0)
    assert late.vocabularies()[0] == vocab

    assert wait_until(lambda: probe.counter("frames_processed") >= 1, 5.0)
    diag = probe.diagnostics()
    assert diag["nonfinite_points_dropped"] == "60" and diag["clouds_with_nonfinite_points"] == "1"
    assert diag["device"] == "cpu" and diag["pipeline_mode"] == "zeroshot" and diag["vocabulary_version"] == "0"
    for key in ("processing_time_mean_ms", "processing_time_max_ms", "input_rate_hz", "frames_dropped_stale",
                "sync_misses_cam_front", "sync_misses_cam_back", "cloud_too_large", "image_corrupt"):
        assert key in diag
    assert diag["_level"] == "0"


def test_diagnostics_warn_when_over_budget(start_node, scenes):
    _, probe = start_node({"budget_ms": 1.0})  # no model runs a frame in 1 ms
    probe.publish_scene(scene_messages(scenes[1]))
    assert wait_until(lambda: probe.counter("frames_processed") >= 1, 30.0)
    assert wait_until(lambda: probe.diagnostics().get("_level") == "1", 5.0)
    assert "exceeds budget" in probe.diagnostics()["_message"]


@pytest.mark.slow
def test_starts_with_no_arguments_on_packaged_defaults(spin, scenes):
    """A first-time user: no parameters at all. Synthetic preset (shipped models), demo calibration, sensor-data
    QoS."""
    from ov_panoptic_ros.ros.node import PanopticNode, bring_up

    node = spin.add(PanopticNode())
    bring_up(node)
    assert node.calibration_file.endswith(os.path.join("config", "calibration_demo.yaml"))
    assert node.get_parameter("pipeline.config").value == "synthetic"
    probe = spin.add(Probe())
    assert probe.wait_for_subscribers()
    assert wait_until(lambda: probe.vocabularies(), 10.0)
    for _ in range(3):  # best-effort input: allow a lost sample on a loaded machine
        probe.publish_scene(scene_messages(scenes[2]))
        if wait_until(lambda: probe.clouds(), 20.0):
            break
    assert probe.clouds() and probe.clouds()[0].width == scenes[2].frame.num_points


# --------------------------------------------------------------------------------------------- start-up errors
def _startup_error(ros, tmp_path, **params):
    from ov_panoptic_ros.ros.node import PanopticNode, StartupError

    with pytest.raises(StartupError) as e:  # parameters and files are checked when the node is made
        PanopticNode(parameter_overrides=[Parameter(k.replace("__", "."), value=v) for k, v in params.items()])
    return str(e.value)


def test_startup_errors_name_the_file_or_parameter(ros, tmp_path):
    missing = str(tmp_path / "nope" / "calib.yaml")
    assert missing in _startup_error(ros, tmp_path, calibration_file=missing)

    bad = tmp_path / "bad_calib.yaml"
    bad.write_text("lidar_frame: l\ncameras:\n  front:\n    T_cam_lidar: [1, 2, 3]\n")
    msg = _startup_error(ros, tmp_path, calibration_file=str(bad))
    assert str(bad) in msg and "16 numbers" in msg

    assert "/no/such/config.yaml" in _startup_error(ros, tmp_path, pipeline__config="/no/such/config.yaml")

    cfg = tmp_path / "with_checkpoint.yaml"
    cfg.write_text("preset: tiny\ncheckpoint: /no/such/model.pt\n")
    assert "/no/such/model.pt" in _startup_error(ros, tmp_path, pipeline__config=str(cfg))

    assert "cam_left" in _startup_error(ros, tmp_path, cameras=["cam_left"], extrinsics_source="file")
    assert "extrinsics_source" in _startup_error(ros, tmp_path, extrinsics_source="yaml")
    assert "name the cameras" in _startup_error(ros, tmp_path, extrinsics_source="tf")
    assert "duplicate" in _startup_error(ros, tmp_path, vocabulary=["car", "car"])
    assert "qos.reliability" in _startup_error(ros, tmp_path, qos__reliability="sometimes")


def test_a_value_of_the_wrong_type_is_a_one_line_startup_error(ros, tmp_path):
    msg = _startup_error(ros, tmp_path, max_points="many")
    assert msg.startswith("parameter max_points:") and "INTEGER" in msg and "\n" not in msg
    assert "budget_ms must be a number" in _startup_error(ros, tmp_path, budget_ms="fast")


def test_integers_are_accepted_for_double_parameters(start_node):
    """`budget_ms: 50` in a params file and `ros2 param set ... 1` both set a double (50.0, 1.0)."""
    node, probe = start_node({"budget_ms": 50})
    assert node.get_parameter("budget_ms").type_ == Parameter.Type.DOUBLE and node.budget_ms == 50.0
    result = probe.set_parameters([Parameter("sync.camera_timeout_s", Parameter.Type.INTEGER, 1)])[0]
    assert result.successful, result.reason
    assert node.get_parameter("sync.camera_timeout_s").value == 1.0 and node.assembler.camera_timeout_s == 1.0
    result = probe.set_parameters([Parameter("budget_ms", Parameter.Type.STRING, "fast")])[0]
    assert not result.successful and "budget_ms must be a number" in result.reason
    assert node.get_parameter("budget_ms").value == 50.0


def test_console_entry_exits_nonzero_without_traceback(tmp_path):
    missing = str(tmp_path / "missing_calibration.yaml")
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from ov_panoptic_ros.ros.node import main; sys.exit(main())",
         "--ros-args", "-p", f"calibration_file:={missing}"],
        capture_output=True, text=True, timeout=120, env=os.environ.copy(),
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert missing in out and "Traceback" not in out, textwrap.shorten(out, 2000)


def test_standard_qos_overrides_apply_to_the_data_topics(start_node):
    """qos_overrides.<topic>.subscription|publisher.<policy>, as every ROS 2 node built with
    QoSOverridingOptions takes them: here the LiDAR input made best effort and the cloud output's depth 3."""
    from rclpy.qos import ReliabilityPolicy

    node, _ = start_node({"qos_overrides./lidar/points.subscription.reliability": "best_effort",
                          "qos_overrides./ov_panoptic/panoptic_points.publisher.depth": 3})
    assert node.get_parameter("qos.reliability").value == "reliable"  # the tests' default for every input
    (sub,) = node.get_subscriptions_info_by_topic("/lidar/points")
    assert sub.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT  # overridden for this topic only
    assert node.cloud_pub.qos_profile.depth == 3  # history depth is not announced in discovery: read it locally
    assert node.marker_pub.qos_profile.depth == 5  # each topic its own profile: no override leaks to the next
    assert node.get_parameter("qos_overrides./cam_front/image_raw.subscription.reliability").value == "reliable"
    (image_sub,) = node.get_subscriptions_info_by_topic("/cam_front/image_raw")
    assert image_sub.qos_profile.reliability == ReliabilityPolicy.RELIABLE


@pytest.mark.parametrize("name, value", [
    ("qos_overrides./lidar/points.subscription.reliability", "sometimes"),
    ("qos_overrides./lidar/points.subscription.depth", "five"),
])
def test_a_bad_qos_override_is_a_startup_error_naming_it(ros, tiny_pipeline, street_calibration, name, value):
    from ov_panoptic_ros.ros.node import PanopticNode, StartupError, bring_up

    params = {"pipeline.config": "tiny", "calibration_file": street_calibration, "warmup": False, name: value}
    node = PanopticNode(pipeline=tiny_pipeline, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    try:
        with pytest.raises(StartupError, match=r"check the qos_overrides\.\* parameters") as e:
            bring_up(node)  # the topics, and so their QoS overrides, come with activate
        assert node.lifecycle_state == "inactive" and node.stats.get("lifecycle_transitions_failed") == 1
    finally:
        node.destroy_node()
    assert ("reliability" in str(e.value) and "sometimes" in str(e.value)) or "depth" in str(e.value), str(e.value)


def test_unknown_overrides_are_read_from_ros_args_and_params_files(tmp_path):
    """The typo warning's input: what `ros2 run ... --ros-args -p` and `--params-file` (as launch writes it) set."""
    from ov_panoptic_ros.ros.overrides import override_names

    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    budget_ms: 50.0\n    vocabulay: [car]\n"
                      "other_node:\n  ros__parameters:\n    not_ours: 1\n")
    argv = ["prog", "--ros-args", "-p", "max_points:=5", "-p", "other_node:x:=1", "-p", "ov_panoptic:warmup:=false",
            "--params-file", str(params), "--", "-p", "outside:=1"]
    given = [Parameter("calibration_file", value="c.yaml")]
    assert override_names(argv, "/ov_panoptic", given) == {"max_points", "warmup", "budget_ms", "vocabulay",
                                                           "calibration_file"}
