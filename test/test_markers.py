"""Instance markers: DELETEALL first, an oriented translucent box and a 'class score' text per thing."""
import math
import time

import numpy as np
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from ov_panoptic_ros.core.frame import Instance, Vocabulary
from ov_panoptic_ros.ros.markers import BOX_ALPHA, drawable_instances, instance_markers, yaw_to_quaternion
from message_leaves import leaves, reachable

VOCAB = Vocabulary(("car", "pedestrian,person", "road"), ("road",), version=3)


def _inst(i, label, yaw=0.3, score=0.87):
    return Instance(instance_id=i, label=label, score=score, center=np.array([1.0 * i, 2.0, 0.5]),
                    size=np.array([4.0, 2.0, 1.5]), yaw=yaw, num_points=20)


def test_markers_structure_and_content():
    header = Header(frame_id="lidar_top")
    header.stamp.sec, header.stamp.nanosec = 12, 34
    arr = instance_markers(drawable_instances([_inst(1, 0), _inst(2, 1, yaw=-1.0, score=0.5)], VOCAB), header)
    m = arr.markers
    assert m[0].action == Marker.DELETEALL
    assert len(m) == 1 + 2 * 2
    boxes = [x for x in m[1:] if x.type == Marker.CUBE]
    texts = [x for x in m[1:] if x.type == Marker.TEXT_VIEW_FACING]
    assert [b.id for b in boxes] == [0, 1] and [t.id for t in texts] == [0, 1]
    assert {(x.ns, x.id) for x in m[1:]} == {("boxes", 0), ("boxes", 1), ("labels", 0), ("labels", 1)}
    assert [t.text for t in texts] == ["car 0.87", "pedestrian 0.50"]
    for x in m:
        assert x.header.frame_id == "lidar_top" and (x.header.stamp.sec, x.header.stamp.nanosec) == (12, 34)
    b = boxes[1]
    assert (b.scale.x, b.scale.y, b.scale.z) == (4.0, 2.0, 1.5)
    assert math.isclose(2 * math.atan2(b.pose.orientation.z, b.pose.orientation.w), -1.0, abs_tol=1e-9)
    assert math.isclose(b.color.a, BOX_ALPHA) and b.color.a < 1.0
    assert [round(b.color.r * 255), round(b.color.g * 255), round(b.color.b * 255)] == VOCAB.colors()[1].tolist()
    assert texts[1].pose.position.z > b.pose.position.z + b.scale.z / 2  # text above the box


def test_stuff_and_invalid_instances_get_no_markers():
    bad = _inst(3, 0)
    bad.center = np.array([np.nan, 0.0, 0.0])
    arr = instance_markers(drawable_instances([_inst(1, 2), _inst(2, 7), bad], VOCAB), Header(frame_id="l"))
    assert [x.action for x in arr.markers] == [Marker.DELETEALL]


def test_empty_frame_still_clears_old_markers():
    arr = instance_markers(drawable_instances([], VOCAB), Header(frame_id="l"))
    assert len(arr.markers) == 1 and arr.markers[0].action == Marker.DELETEALL


def test_yaw_quaternion_is_unit_rotation_about_z():
    for yaw in (-3.0, 0.0, 0.7, 3.1):
        x, y, z, w = yaw_to_quaternion(yaw)
        assert x == 0.0 and y == 0.0 and math.isclose(z * z + w * w, 1.0)
        assert math.isclose(math.atan2(2 * w * z, 1 - 2 * z * z), yaw, abs_tol=1e-9)


# ------------------------------------------------------------------------------ exact content, DDS, independence
# The builder shares sub-messages between markers and skips default-valued assignments for speed; these tests
# pin its output to a plain, one-field-at-a-time construction and check that publishing and later frames are
# unaffected by the sharing.

def _reference(instances, vocabulary, header):
    """The straightforward construction: a fresh Marker per entry, every value set explicitly."""
    expected = [Marker(header=header, action=Marker.DELETEALL)]
    names, colors, stuff = vocabulary.names, vocabulary.colors(), vocabulary.is_stuff
    index = 0
    for inst in instances:
        if not 0 <= inst.label < len(names) or stuff[inst.label]:
            continue
        values = [*inst.center, *inst.size, inst.yaw]
        if not all(math.isfinite(float(v)) for v in values):
            continue
        cx, cy, cz = (float(v) for v in inst.center)
        box = Marker(header=header, ns="boxes", id=index, type=Marker.CUBE, action=Marker.ADD)
        box.pose.position.x, box.pose.position.y, box.pose.position.z = cx, cy, cz
        box.pose.orientation.x, box.pose.orientation.y = 0.0, 0.0
        box.pose.orientation.z = math.sin(float(inst.yaw) / 2.0)
        box.pose.orientation.w = math.cos(float(inst.yaw) / 2.0)
        box.scale.x, box.scale.y, box.scale.z = (max(float(v), 0.05) for v in inst.size)
        r, g, b = (float(c) / 255.0 for c in colors[inst.label])
        box.color.r, box.color.g, box.color.b, box.color.a = r, g, b, BOX_ALPHA
        text = Marker(header=header, ns="labels", id=index, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD)
        text.pose.position.x, text.pose.position.y = cx, cy
        text.pose.position.z = cz + float(inst.size[2]) / 2.0 + 0.4
        text.pose.orientation.w = 1.0
        text.scale.z = 0.6
        text.color.r, text.color.g, text.color.b, text.color.a = 1.0, 1.0, 1.0, 1.0
        text.text = f"{names[inst.label]} {inst.score:.2f}"
        expected += [box, text]
        index += 1
    return expected


def _mixed_instances():
    oriented = _inst(1, 0, yaw=2.4, score=0.912)
    flat = Instance(instance_id=2, label=1, score=0.3333, center=np.array([-3.5, 7.25, -0.2], dtype=np.float32),
                    size=np.array([0.0, -0.0, 0.0]), yaw=np.float32(-0.75), num_points=4)  # zero size -> 0.05
    stuff = _inst(3, 2)  # "road"
    nan_center = _inst(4, 0)
    nan_center.center = np.array([0.0, np.nan, 0.0])
    inf_size = _inst(5, 1)
    inf_size.size = np.array([1.0, 1.0, np.inf])
    nan_yaw = _inst(6, 0, yaw=float("nan"))
    out_of_range = [_inst(7, 3), _inst(8, -1), _inst(9, 65535)]
    last = _inst(10, 1, yaw=-3.1, score=1.0)
    last.center = np.array([1e-9, -0.0, 123456.789])
    return [oriented, stuff, nan_center, flat, inf_size, *out_of_range, nan_yaw, last]


def test_every_field_matches_a_straightforward_construction():
    header = Header(frame_id="lidar_top")
    header.stamp.sec, header.stamp.nanosec = 1700000000, 999
    instances = _mixed_instances()
    got = instance_markers(drawable_instances(instances, VOCAB), header).markers
    expected = _reference(instances, VOCAB, header)
    assert len(expected) == 1 + 3 * 2  # oriented, flat and last survive; everything else is skipped
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        assert list(leaves(g)) == list(leaves(e)), f"marker {i} ({e.ns} {e.id}) differs"
        assert g == e  # rosidl's own comparison of all slots agrees
    assert [m.id for m in got[1::2]] == [0, 1, 2] and [m.text for m in got[2::2]] == [
        "car 0.91", "pedestrian 0.33", "pedestrian 1.00"]
    assert (got[3].scale.x, got[3].scale.y, got[3].scale.z) == (0.05, 0.05, 0.05)


def test_frames_share_no_mutable_state():
    """Building frame B (and even scribbling on it) leaves every marker of frame A as it was returned."""
    import copy

    header_a, header_b = Header(frame_id="a"), Header(frame_id="b")
    frame_a = instance_markers(drawable_instances(_mixed_instances(), VOCAB), header_a)
    snapshot = copy.deepcopy(frame_a)
    leaves_a = [list(leaves(m)) for m in frame_a.markers]

    other = Vocabulary(("truck", "car", "tree"), ("tree",), version=4)
    frame_b = instance_markers(drawable_instances([_inst(1, 1, yaw=0.1, score=0.2), _inst(2, 0, yaw=1.3)], other),
                               header_b)

    shared = reachable(frame_a.markers).keys() & reachable(frame_b.markers).keys()
    assert not shared, "frames A and B share an object"
    for m in frame_b.markers:
        m.pose.position.x = 99.0
        m.color.r = 0.0
        m.points.append(m.pose.position)
        m.header.frame_id = "scribbled"
    assert frame_a == snapshot
    assert [list(leaves(m)) for m in frame_a.markers] == leaves_a


def test_marker_array_survives_a_real_dds_round_trip():
    """The shared sub-messages serialize like separate ones: a subscriber gets exactly what was built."""
    import copy
    import threading

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from visualization_msgs.msg import MarkerArray

    header = Header(frame_id="lidar_top")
    header.stamp.sec, header.stamp.nanosec = 42, 7
    instances = _mixed_instances() + [_inst(11 + i, i % 2, yaw=0.2 * i, score=0.05 * i) for i in range(12)]
    sent = instance_markers(drawable_instances(instances, VOCAB), header)
    assert len(sent.markers) == 1 + 2 * 15
    expected = copy.deepcopy(sent)
    for m in expected.markers:  # ColorRGBA is float32 on the wire
        m.color.r, m.color.g, m.color.b, m.color.a = (float(np.float32(c)) for c in (m.color.r, m.color.g,
                                                                                     m.color.b, m.color.a))

    context = rclpy.Context()
    rclpy.init(context=context)
    executor = SingleThreadedExecutor(context=context)
    nodes = []
    try:
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        pub_node = rclpy.create_node("markers_test_pub", context=context)
        sub_node = rclpy.create_node("markers_test_sub", context=context)
        nodes += [pub_node, sub_node]
        received = []
        got_one = threading.Event()
        sub_node.create_subscription(MarkerArray, "/markers_round_trip",
                                     lambda msg: (received.append(msg), got_one.set()), qos)
        pub = pub_node.create_publisher(MarkerArray, "/markers_round_trip", qos)
        executor.add_node(pub_node)
        executor.add_node(sub_node)
        deadline = time.monotonic() + 20.0
        while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        assert pub.get_subscription_count() > 0, "subscriber not discovered"
        pub.publish(sent)
        while not got_one.is_set() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        assert received, "no MarkerArray received"
    finally:
        executor.shutdown()
        for node in nodes:
            node.destroy_node()
        rclpy.shutdown(context=context)

    got = received[0].markers
    assert len(got) == len(expected.markers)
    for i, (g, e) in enumerate(zip(got, expected.markers)):
        assert list(leaves(g)) == list(leaves(e)), f"marker {i} ({e.ns} {e.id}) differs after the round trip"
    assert received[0] == expected
