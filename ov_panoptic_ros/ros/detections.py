"""Thing instances -> vision_msgs/Detection3DArray, the machine-readable counterpart of markers.py.

One Detection3D per thing instance, in the order of `instances`:

- `header`: the cloud's header, the caller's object itself, shared by the array and every detection;
- `id`: str(instance_id), the panoptic instance id its points carry in the labeled cloud, so a consumer
  can join a detection with its points;
- `results`: one ObjectHypothesisWithPose: `hypothesis.class_id` = the class's display name (the first
  synonym of the vocabulary entry, "pedestrian" for "pedestrian,person"), `hypothesis.score` = the
  instance score; `pose.pose` = the box pose (below), covariance all zero (unknown);
- `bbox`: `center` = the box center with the yaw as a rotation about +z (markers.yaw_to_quaternion),
  `size` = (length along yaw, width, height) from Instance.size, the axes of markers' CUBE.

Sizes are the measured box: unlike the markers (which raise each side to MIN_BOX_SIZE_M so RViz draws
it), a flat or single-point box reports 0 along that axis. A negative side (never produced by the box
fit) is reported as 0. Instances the markers skip are skipped here too, so both topics describe the same
set: labels outside the vocabulary, stuff labels (core only builds instances for things, so this is a
guard), and boxes whose center, size or yaw is not finite (no meaningful box to report).

This runs once per published frame with up to a few hundred instances. rosidl's generated `__init__`
builds every default sub-message (~11 us for a bare Detection3D, ~7 us for an ObjectHypothesisWithPose
with its 36-float covariance array), ~14 us per detection built the plain way (200 instances: ~2.9 ms).
So, as in markers.py, detections and their parts are shallow copies of per-call prototypes whose
per-instance sub-messages are then replaced whole (never mutated). `copy.copy` itself costs ~2 us per
message here, which with four copies per detection saves nothing, so the copies are made by `_cloner`:
what copy.copy gives for a rosidl message (a new object with the same `__slots__` values) in ~0.3 us.
200 instances take ~1.5 ms (one core of a shared x86 VM). Detections of one array therefore share
sub-objects: the caller's header, the zero covariance array, and each detection's box Pose is the same
object as its hypothesis' `pose.pose`. Treat the returned message as read-only (publish or serialize it). Nothing is
shared between two calls except the caller's header.
"""
from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Pose, Vector3
from vision_msgs.msg import Detection3D, Detection3DArray, ObjectHypothesis, ObjectHypothesisWithPose

from ov_panoptic_ros.ros.markers import Drawable, yaw_to_quaternion


def instance_detections(drawable: Drawable, header) -> Detection3DArray:
    """A Detection3D per drawable instance (markers.drawable_instances, the markers' set; see the module
    docstring for the fields and what is skipped).

    `header` (the cloud's) is used as is, not copied, for the array and for every detection. The returned
    detections share sub-messages (see the module docstring): read-only.
    """
    table, kept, boxes, yaws = drawable
    detections: list[Detection3D] = []
    if kept:
        sizes = np.maximum(boxes[:, 1], 0.0) + 0.0  # negative -> 0; + 0.0 turns -0.0 into 0.0
        detections = _detections(kept, table, header, boxes[:, 0].tolist(), sizes.tolist(), yaws.tolist())
    return Detection3DArray(header=header, detections=detections)


def _cloner(proto):
    """A function returning shallow copies of `proto`: what `copy.copy` gives for a rosidl message (an object
    of the same class whose `__slots__` hold the prototype's values), without copy's generic __reduce_ex__
    path. The slot names are read from the class, so any rosidl version's messages work."""
    cls = type(proto)
    pairs = tuple((name, getattr(proto, name)) for name in cls.__slots__)
    new = object.__new__

    def clone():
        obj = new(cls)
        for name, value in pairs:
            setattr(obj, name, value)
        return obj

    return clone


def _detections(kept, table, header, centers, sizes, yaws) -> list[Detection3D]:
    """One detection per instance, cloned from per-call prototypes."""
    proto = Detection3D(header=header)
    new_detection = _cloner(proto)
    new_bbox = _cloner(proto.bbox)
    hyp_proto = ObjectHypothesisWithPose()
    new_hypothesis = _cloner(hyp_proto)
    new_pose_with_covariance = _cloner(hyp_proto.pose)  # the zero covariance array is shared
    out = []
    for inst, (cx, cy, cz), (sx, sy, sz), yaw in zip(kept, centers, sizes, yaws):
        pose = Pose()
        position, orientation = pose.position, pose.orientation
        position.x, position.y, position.z = cx, cy, cz
        _, _, orientation.z, orientation.w = yaw_to_quaternion(yaw)  # x, y stay at their 0.0 default

        bbox = new_bbox()
        bbox.center = pose
        bbox.size = Vector3(x=sx, y=sy, z=sz)

        with_cov = new_pose_with_covariance()
        with_cov.pose = pose
        hyp = new_hypothesis()
        hyp.hypothesis = ObjectHypothesis(class_id=table[inst.label][0], score=float(inst.score))
        hyp.pose = with_cov

        det = new_detection()
        det.id = str(int(inst.instance_id))
        det.results = [hyp]
        det.bbox = bbox
        out.append(det)
    return out
