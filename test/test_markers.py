"""Instance markers: DELETEALL first, an oriented translucent box and a 'class score' text per thing."""
import math

import numpy as np
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from ov_panoptic_ros.core.frame import Instance, Vocabulary
from ov_panoptic_ros.ros.markers import BOX_ALPHA, instance_markers, yaw_to_quaternion

VOCAB = Vocabulary(("car", "pedestrian,person", "road"), ("road",), version=3)


def _inst(i, label, yaw=0.3, score=0.87):
    return Instance(instance_id=i, label=label, score=score, center=np.array([1.0 * i, 2.0, 0.5]),
                    size=np.array([4.0, 2.0, 1.5]), yaw=yaw, num_points=20)


def test_markers_structure_and_content():
    header = Header(frame_id="lidar_top")
    header.stamp.sec, header.stamp.nanosec = 12, 34
    arr = instance_markers([_inst(1, 0), _inst(2, 1, yaw=-1.0, score=0.5)], VOCAB, header)
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
    arr = instance_markers([_inst(1, 2), _inst(2, 7), bad], VOCAB, Header(frame_id="l"))
    assert [x.action for x in arr.markers] == [Marker.DELETEALL]


def test_empty_frame_still_clears_old_markers():
    arr = instance_markers([], VOCAB, Header(frame_id="l"))
    assert len(arr.markers) == 1 and arr.markers[0].action == Marker.DELETEALL


def test_yaw_quaternion_is_unit_rotation_about_z():
    for yaw in (-3.0, 0.0, 0.7, 3.1):
        x, y, z, w = yaw_to_quaternion(yaw)
        assert x == 0.0 and y == 0.0 and math.isclose(z * z + w * w, 1.0)
        assert math.isclose(math.atan2(2 * w * z, 1 - 2 * z * z), yaw, abs_tol=1e-9)
