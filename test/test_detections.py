"""Instance detections: a vision_msgs/Detection3D per thing instance, with class name, score, id and oriented box."""
import copy
import math

import numpy as np
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Header
from vision_msgs.msg import Detection3D, Detection3DArray, ObjectHypothesisWithPose

from ov_panoptic_ros.core.frame import UNLABELED, Instance, Vocabulary
from ov_panoptic_ros.ros.detections import instance_detections
from ov_panoptic_ros.ros.markers import drawable_instances
from message_leaves import leaves, reachable

VOCAB = Vocabulary(("car", "pedestrian,person", "road"), ("road",), version=3)


def _inst(i, label, center=(1.0, 2.0, 0.5), size=(4.0, 2.0, 1.5), yaw=0.3, score=0.87):
    return Instance(instance_id=i, label=label, score=score, center=np.array(center), size=np.array(size), yaw=yaw,
                    num_points=20)


def _header(frame_id="lidar_top", sec=12, nanosec=34):
    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = sec, nanosec
    return header


def _round_trip(arr):
    return deserialize_message(serialize_message(arr), Detection3DArray)


def _yaw(q):
    assert q.x == 0.0 and q.y == 0.0 and math.isclose(q.z * q.z + q.w * q.w, 1.0)
    return 2.0 * math.atan2(q.z, q.w)


def test_detections_round_trip_with_names_scores_ids_boxes_and_header():
    instances = [
        _inst(7, 0, center=(10.0, -3.5, 0.8), size=(4.5, 1.9, 1.6), yaw=0.3, score=0.87),
        _inst(12, 1, center=(-2.25, 4.0, 0.9), size=(0.6, 0.5, 1.8), yaw=-1.2, score=0.5),
        _inst(3, 0, center=(0.0, 0.0, -1.0), size=(3.0, 2.0, 1.0), yaw=3.0, score=1.0),
    ]
    sent = instance_detections(drawable_instances(instances, VOCAB), _header())
    got = _round_trip(sent)
    assert got == sent  # every field survives serialization, whatever the builder shares
    assert (got.header.frame_id, got.header.stamp.sec, got.header.stamp.nanosec) == ("lidar_top", 12, 34)
    assert len(got.detections) == 3
    assert [d.id for d in got.detections] == ["7", "12", "3"]
    for det, inst in zip(got.detections, instances):
        assert (det.header.frame_id, det.header.stamp.sec, det.header.stamp.nanosec) == ("lidar_top", 12, 34)
        assert len(det.results) == 1
        hyp = det.results[0]
        assert hyp.hypothesis.class_id == ("car" if inst.label == 0 else "pedestrian")  # first synonym
        assert hyp.hypothesis.score == inst.score
        box = det.bbox
        c = box.center.position
        assert (c.x, c.y, c.z) == tuple(inst.center)
        assert (box.size.x, box.size.y, box.size.z) == tuple(inst.size)
        assert math.isclose(_yaw(box.center.orientation), inst.yaw, abs_tol=1e-12)
        assert hyp.pose.pose == box.center  # the hypothesis pose is the box pose
        assert list(hyp.pose.covariance) == [0.0] * 36
    assert [d.results[0].hypothesis.class_id for d in got.detections] == ["car", "pedestrian", "car"]


def test_no_instances_gives_an_empty_array_with_the_header():
    header = _header("lidar_front", 5, 6)
    arr = instance_detections(drawable_instances([], VOCAB), header)
    assert list(arr.detections) == [] and arr.header is header
    got = _round_trip(arr)
    assert list(got.detections) == []
    assert (got.header.frame_id, got.header.stamp.sec, got.header.stamp.nanosec) == ("lidar_front", 5, 6)


def test_header_is_the_callers_object():
    header = _header()
    arr = instance_detections(drawable_instances([_inst(1, 0), _inst(2, 1)], VOCAB), header)
    assert arr.header is header and all(d.header is header for d in arr.detections)


def test_sizes_are_the_measured_box_not_the_marker_minimum():
    flat = _inst(1, 0, size=(0.0, -0.0, 0.02))  # a single-point / planar cluster
    negative = _inst(2, 1, size=(-1.0, 0.3, 2.0))  # never from the box fit; reported as 0
    got = _round_trip(instance_detections(drawable_instances([flat, negative], VOCAB), _header())).detections
    sizes = [(d.bbox.size.x, d.bbox.size.y, d.bbox.size.z) for d in got]
    assert sizes == [(0.0, 0.0, 0.02), (0.0, 0.3, 2.0)]
    assert math.copysign(1.0, got[0].bbox.size.y) == 1.0  # -0.0 is reported as +0.0


def test_stuff_out_of_vocabulary_and_nonfinite_instances_are_skipped():
    nan_center = _inst(4, 0, center=(0.0, np.nan, 0.0))
    inf_size = _inst(5, 1, size=(1.0, 1.0, np.inf))
    nan_yaw = _inst(6, 0, yaw=float("nan"))
    instances = [_inst(1, 2), _inst(2, 3), _inst(3, -1), _inst(9, UNLABELED), nan_center, inf_size, nan_yaw,
                 _inst(10, 1, score=0.25)]
    got = _round_trip(instance_detections(drawable_instances(instances, VOCAB), _header())).detections
    assert [(d.id, d.results[0].hypothesis.class_id, d.results[0].hypothesis.score) for d in got] == [
        ("10", "pedestrian", 0.25)]


def test_core_instances_are_things_only_and_join_with_the_cloud_ids():
    """The zero-shot path's instances (cluster_things + describe_instances): stuff points get no instance, so
    no detection is ever stuff, and each detection's id is the instance id its points carry."""
    from ov_panoptic_ros.core.zeroshot import cluster_things, describe_instances

    rng = np.random.default_rng(0)
    car = rng.uniform((-1.0, -0.5, 0.0), (1.0, 0.5, 1.0), (40, 3)) + (10.0, 0.0, 0.0)
    person = rng.uniform((-0.2, -0.2, 0.0), (0.2, 0.2, 1.7), (30, 3)) + (0.0, 5.0, 0.0)
    road = np.column_stack([rng.uniform(-20, 20, 200), rng.uniform(-20, 20, 200), np.zeros(200)])
    points = np.concatenate([car, person, road]).astype(np.float32)
    labels = np.array([0] * 40 + [1] * 30 + [2] * 200, dtype=np.uint16)
    scores = np.full(len(points), 0.75, np.float32)
    ids = cluster_things(points, labels, VOCAB.is_stuff, radius=1.0, min_points=5)
    assert (ids[labels == 2] == 0).all()
    instances = describe_instances(points, labels, scores, ids)
    assert sorted(inst.label for inst in instances) == [0, 1]

    got = _round_trip(instance_detections(drawable_instances(instances, VOCAB), _header())).detections
    assert sorted(d.results[0].hypothesis.class_id for d in got) == ["car", "pedestrian"]
    for det in got:
        members = points[ids == int(det.id)]
        assert len(members) == (40 if det.results[0].hypothesis.class_id == "car" else 30)
        c = det.bbox.center.position
        assert np.allclose((c.x, c.y, c.z), members.mean(axis=0), atol=1.0)  # the box is around its points
        assert math.isclose(det.results[0].hypothesis.score, 0.75, rel_tol=1e-6)


# ------------------------------------------------------------------------------ exact content, independence
# The builder copies prototypes and shares sub-messages for speed; these pin its output to a plain construction.

def _reference(instances, vocabulary, header):
    """The straightforward construction: fresh messages, every value set explicitly."""
    names, stuff = vocabulary.names, vocabulary.is_stuff
    detections = []
    for inst in instances:
        if not 0 <= inst.label < len(names) or stuff[inst.label]:
            continue
        if not all(math.isfinite(float(v)) for v in [*inst.center, *inst.size, inst.yaw]):
            continue
        det = Detection3D(header=header, id=str(inst.instance_id))
        pose = det.bbox.center
        pose.position.x, pose.position.y, pose.position.z = (float(v) for v in inst.center)
        pose.orientation.x, pose.orientation.y = 0.0, 0.0
        pose.orientation.z = math.sin(float(inst.yaw) / 2.0)
        pose.orientation.w = math.cos(float(inst.yaw) / 2.0)
        det.bbox.size.x, det.bbox.size.y, det.bbox.size.z = (max(float(v), 0.0) + 0.0 for v in inst.size)
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id = names[inst.label]
        hyp.hypothesis.score = float(inst.score)
        hyp.pose.pose = copy.deepcopy(pose)
        det.results = [hyp]
        detections.append(det)
    return Detection3DArray(header=header, detections=detections)


def _mixed_instances():
    return [
        _inst(1, 0, yaw=2.4, score=0.912),
        Instance(instance_id=np.uint32(2), label=1, score=np.float32(0.3333),
                 center=np.array([-3.5, 7.25, -0.2], dtype=np.float32), size=np.array([0.0, -0.0, 0.0], np.float32),
                 yaw=np.float32(-0.75), num_points=4),
        _inst(3, 2),  # stuff
        _inst(4, 0, center=(0.0, np.nan, 0.0)),
        _inst(5, 1, size=(1.0, 1.0, np.inf)),
        _inst(7, 3), _inst(8, -1), _inst(9, 65535),
        _inst(6, 0, yaw=float("nan")),
        _inst(10, 1, center=(1e-9, -0.0, 123456.789), yaw=-3.1, score=1.0),
    ]


def test_every_field_matches_a_straightforward_construction():
    header = _header(sec=1700000000, nanosec=999)
    instances = _mixed_instances()
    got = instance_detections(drawable_instances(instances, VOCAB), header)
    expected = _reference(instances, VOCAB, header)
    assert len(expected.detections) == 3  # the oriented, the flat and the last one survive
    assert list(leaves(got)) == list(leaves(expected))
    assert got == expected
    assert _round_trip(got) == expected
    assert [d.id for d in got.detections] == ["1", "2", "10"]


def test_calls_share_no_mutable_state():
    """Building frame B (and scribbling on it) leaves every detection of frame A as it was returned."""
    frame_a = instance_detections(drawable_instances(_mixed_instances(), VOCAB), _header("a"))
    snapshot = copy.deepcopy(frame_a)
    other = Vocabulary(("truck", "car", "tree"), ("tree",), version=4)
    frame_b = instance_detections(drawable_instances([_inst(1, 1, yaw=0.1, score=0.2), _inst(2, 0, yaw=1.3)], other),
                                  _header("b"))

    shared = reachable(frame_a.detections).keys() & reachable(frame_b.detections).keys()
    assert not shared, "frames A and B share an object"
    for det in frame_b.detections:
        det.bbox.center.position.x = 99.0
        det.results[0].hypothesis.class_id = "scribbled"
        det.results[0].pose.covariance[0] = 5.0
        det.results.append(ObjectHypothesisWithPose())
        det.header.frame_id = "scribbled"
    assert frame_a == snapshot
    assert [d.results[0].hypothesis.class_id for d in frame_b.detections] == ["scribbled", "scribbled"]


def test_cloner_copies_like_copy_copy():
    """The builder's fast shallow copy holds exactly the slot values copy.copy would, for every prototype type."""
    from geometry_msgs.msg import PoseWithCovariance
    from vision_msgs.msg import BoundingBox3D

    from ov_panoptic_ros.ros.detections import _cloner

    for proto in (Detection3D(header=_header(), id="5"), BoundingBox3D(), ObjectHypothesisWithPose(),
                  PoseWithCovariance()):
        clone, reference = _cloner(proto)(), copy.copy(proto)
        assert type(clone) is type(proto) and clone is not proto
        assert all(getattr(clone, s) is getattr(reference, s) for s in type(proto).__slots__)
        assert clone == proto
