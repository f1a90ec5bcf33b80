"""Thing instances -> visualization_msgs/MarkerArray for RViz.

Every array starts with one DELETEALL, so boxes of the previous frame never linger, then per
instance a translucent CUBE oriented by yaw (ns "boxes") and a TEXT_VIEW_FACING "class score"
above it (ns "labels"); both use the instance's index in the frame as id, so ids are stable
within the message. Frame and stamp are the cloud's.

This runs once per published frame. rosidl's generated `Marker.__init__` builds every default
sub-message (Header, Pose, Vector3, ColorRGBA, Duration, CompressedImage, MeshFile, ...) even when
they are passed in, ~17 us per marker, so only the frame's DELETEALL is constructed; every other
marker is a `copy.copy` of a per-frame prototype whose per-instance sub-messages are then replaced
whole (never mutated). The markers of one array therefore share sub-objects: the caller's header,
the DELETEALL's default lifetime, texture, mesh file and empty point/colour/uv lists, the labels'
scale and white colour, and one box colour per class. Treat the returned messages as read-only
(publish or serialize them). Nothing is shared between two calls except the caller's header.
"""
from __future__ import annotations

import copy
import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from geometry_msgs.msg import Pose, Vector3
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from ov_panoptic_ros.core.frame import Instance, Vocabulary

BOX_ALPHA = 0.35
TEXT_HEIGHT_M = 0.6
TEXT_GAP_M = 0.4  # text sits this far above the box top
MIN_BOX_SIZE_M = 0.05  # RViz hides zero-size cubes


def yaw_to_quaternion(yaw: float) -> tuple[float, float, float, float]:
    """Rotation about +z as (x, y, z, w)."""
    return 0.0, 0.0, math.sin(yaw / 2.0), math.cos(yaw / 2.0)


@lru_cache(maxsize=8)
def class_table(vocabulary: Vocabulary) -> tuple[tuple[str, tuple[float, float, float]] | None, ...]:
    """Per label (display name, RGB in [0, 1]), None for stuff; the markers' and the detections' table.
    Cached: a Vocabulary is frozen, and its names/colors/is_stuff are recomputed (md5, ~30 us) on every
    access. Holds no messages."""
    stuff = vocabulary.is_stuff
    return tuple(None if s else (name, tuple(float(c) / 255.0 for c in rgb))
                 for name, rgb, s in zip(vocabulary.names, vocabulary.colors(), stuff))


class Drawable(NamedTuple):
    """A frame's instances as markers and detections describe them (see drawable_instances)."""
    table: tuple  # class_table of the vocabulary
    instances: list
    boxes: np.ndarray  # (K, 2, 3): center, size
    yaws: np.ndarray  # (K,)


def drawable_instances(instances: list[Instance], vocabulary: Vocabulary) -> Drawable:
    """The instances the markers and the detections describe, found once per frame so both topics hold the
    same set: a thing class of the vocabulary (`table[label]` not None) and a finite box."""
    table = class_table(vocabulary)
    kept = [inst for inst in instances if 0 <= inst.label < len(table) and table[inst.label] is not None]
    if not kept:
        return Drawable(table, [], np.zeros((0, 2, 3)), np.zeros(0))
    boxes = np.array([(inst.center, inst.size) for inst in kept], dtype=np.float64)
    yaws = np.array([inst.yaw for inst in kept], dtype=np.float64)
    finite = np.isfinite(boxes).all(axis=(1, 2)) & np.isfinite(yaws)
    if not finite.all():
        kept = [inst for inst, ok in zip(kept, finite.tolist()) if ok]
        boxes, yaws = boxes[finite], yaws[finite]
    return Drawable(table, kept, boxes, yaws)


def instance_markers(drawable: Drawable, header) -> MarkerArray:
    """DELETEALL, then a box and a text per drawable instance (what drawable_instances skips gets none).

    The returned markers share sub-messages (see the module docstring): read-only.
    """
    table, kept, boxes, yaws = drawable
    clear = Marker(header=header, action=Marker.DELETEALL)
    markers = [clear]
    if kept:
        centers, sizes = boxes[:, 0], boxes[:, 1]
        text_z = centers[:, 2] + sizes[:, 2] / 2.0 + TEXT_GAP_M
        markers += _instance_pairs(kept, table, header, clear, centers.tolist(),
                                   np.maximum(sizes, MIN_BOX_SIZE_M).tolist(), yaws.tolist(), text_z.tolist())
    return MarkerArray(markers=markers)


def _instance_pairs(kept, table, header, clear: Marker, centers, box_sizes, yaws, text_z) -> list[Marker]:
    """Box and text per instance, copied from prototypes that share `clear`'s default sub-messages."""
    box_proto = copy.copy(clear)
    box_proto.ns, box_proto.type, box_proto.action = "boxes", Marker.CUBE, Marker.ADD
    text_proto = copy.copy(clear)
    text_proto.ns, text_proto.type, text_proto.action = "labels", Marker.TEXT_VIEW_FACING, Marker.ADD
    text_proto.scale = Vector3(z=TEXT_HEIGHT_M)
    text_proto.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
    box_colors: dict[int, ColorRGBA] = {}
    out = []
    for index, (inst, (cx, cy, cz), (sx, sy, sz), yaw, tz) in enumerate(zip(kept, centers, box_sizes, yaws, text_z)):
        name, rgb = table[inst.label]
        color = box_colors.get(inst.label)
        if color is None:
            color = box_colors[inst.label] = ColorRGBA(r=rgb[0], g=rgb[1], b=rgb[2], a=BOX_ALPHA)

        box = copy.copy(box_proto)
        box.id = index
        box.pose = pose = Pose()
        position, orientation = pose.position, pose.orientation
        position.x, position.y, position.z = cx, cy, cz
        _, _, orientation.z, orientation.w = yaw_to_quaternion(yaw)  # x, y stay at their 0.0 default
        box.scale = Vector3(x=sx, y=sy, z=sz)
        box.color = color

        text = copy.copy(text_proto)
        text.id = index
        text.pose = pose = Pose()
        position = pose.position
        position.x, position.y, position.z = cx, cy, tz
        pose.orientation.w = 1.0
        text.text = f"{name} {inst.score:.2f}"
        out.append(box)
        out.append(text)
    return out


def serialized_instance_markers(instances: list[Instance], vocabulary: Vocabulary, stamp_ns: int,
                                frame_id: str) -> bytes:
    """The frame's MarkerArray as CDR bytes, for a bag: the same markers the node publishes."""
    from rclpy.serialization import serialize_message

    from ov_panoptic_ros.bridge.builders import header
    from ov_panoptic_ros.ros.message_kit import RCLPY_KIT

    drawable = drawable_instances(instances, vocabulary)
    return serialize_message(instance_markers(drawable, header(RCLPY_KIT, stamp_ns, frame_id)))
