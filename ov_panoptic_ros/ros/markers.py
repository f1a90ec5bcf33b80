"""Thing instances -> visualization_msgs/MarkerArray for RViz.

Every array starts with one DELETEALL, so boxes of the previous frame never linger, then per
instance a translucent CUBE oriented by yaw (ns "boxes") and a TEXT_VIEW_FACING "class score"
above it (ns "labels"); both use the instance's index in the frame as id, so ids are stable
within the message. Frame and stamp are the cloud's.
"""
from __future__ import annotations

import math

import numpy as np
from visualization_msgs.msg import Marker, MarkerArray

from ov_panoptic_ros.core.frame import Instance, Vocabulary

BOX_ALPHA = 0.35
TEXT_HEIGHT_M = 0.6
TEXT_GAP_M = 0.4  # text sits this far above the box top


def yaw_to_quaternion(yaw: float) -> tuple[float, float, float, float]:
    """Rotation about +z as (x, y, z, w)."""
    return 0.0, 0.0, math.sin(yaw / 2.0), math.cos(yaw / 2.0)


def instance_text(instance: Instance, vocabulary: Vocabulary) -> str:
    names = vocabulary.names
    name = names[instance.label] if 0 <= instance.label < len(names) else "unknown"
    return f"{name} {instance.score:.2f}"


def _color(marker: Marker, rgb, alpha: float) -> None:
    marker.color.r, marker.color.g, marker.color.b = (float(c) / 255.0 for c in rgb)
    marker.color.a = alpha


def _box(instance: Instance, index: int, rgb, header) -> Marker:
    m = Marker(header=header, ns="boxes", id=index, type=Marker.CUBE, action=Marker.ADD)
    cx, cy, cz = (float(v) for v in instance.center)
    m.pose.position.x, m.pose.position.y, m.pose.position.z = cx, cy, cz
    qx, qy, qz, qw = yaw_to_quaternion(float(instance.yaw))
    m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z, m.pose.orientation.w = qx, qy, qz, qw
    sx, sy, sz = (max(float(v), 0.05) for v in instance.size)  # RViz hides zero-size cubes
    m.scale.x, m.scale.y, m.scale.z = sx, sy, sz
    _color(m, rgb, BOX_ALPHA)
    return m


def _text(instance: Instance, index: int, text: str, header) -> Marker:
    m = Marker(header=header, ns="labels", id=index, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD)
    m.pose.position.x = float(instance.center[0])
    m.pose.position.y = float(instance.center[1])
    m.pose.position.z = float(instance.center[2]) + float(instance.size[2]) / 2.0 + TEXT_GAP_M
    m.pose.orientation.w = 1.0
    m.scale.z = TEXT_HEIGHT_M
    m.text = text
    _color(m, (255, 255, 255), 1.0)
    return m


def instance_markers(instances: list[Instance], vocabulary: Vocabulary, header) -> MarkerArray:
    """DELETEALL, then a box and a text per thing instance (stuff never has instances)."""
    out = MarkerArray()
    out.markers.append(Marker(header=header, action=Marker.DELETEALL))
    colors = vocabulary.colors()
    is_stuff = vocabulary.is_stuff
    index = 0
    for inst in instances:
        if not 0 <= inst.label < len(colors) or is_stuff[inst.label] or not _finite_box(inst):
            continue
        out.markers.append(_box(inst, index, colors[inst.label], header))
        out.markers.append(_text(inst, index, instance_text(inst, vocabulary), header))
        index += 1
    return out


def _finite_box(inst: Instance) -> bool:
    return bool(np.isfinite(inst.center).all() and np.isfinite(inst.size).all() and np.isfinite(inst.yaw))
