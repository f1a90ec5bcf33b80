"""Solid primitives, grouped into bodies, and their rows in the ray-cast kernel's table.

A body (a car, a building, a stretch of road) is built in its own frame (x forward, y left, z up, origin on
the ground) from boxes, cylinders, ellipsoids and cones; the world places it with a position and a yaw.
Sizes are given as full extents here; the kernel takes half sizes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ov_panoptic_ros.data.world import _raycast

BOX, CYLINDER, ELLIPSOID, CONE = (float(_raycast.KINDS.index(k)) for k in ("box", "cylinder", "ellipsoid", "cone"))
_COL = {name: i for i, name in enumerate(_raycast.COLUMNS)}
_ROT = slice(_COL["r00"], _COL["r22"] + 1)
_CENTER = slice(_COL["cx"], _COL["cz"] + 1)


def rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


AXLE = rot_x(np.pi / 2)  # a cylinder's axis across the body: wheels
ALONG_X = rot_y(np.pi / 2)  # a cylinder's axis along the body: tanks


@dataclass
class Parts:
    """Primitives as kernel rows (centres and rotations in the frame of the body they make up), each with the
    material it is painted with."""

    table: np.ndarray  # (P, len(_raycast.COLUMNS)) float64
    material: np.ndarray  # (P,) int64



def _frame(x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The right-handed rotation with columns x, z cross x, z (x and z orthonormal)."""
    y = np.array([z[1] * x[2] - z[2] * x[1], z[2] * x[0] - z[0] * x[2], z[0] * x[1] - z[1] * x[0]])
    return np.array([x, y, z]).T


def place(table: np.ndarray, position: np.ndarray, yaw: np.ndarray, body: np.ndarray) -> np.ndarray:
    """Kernel rows given in their bodies' frames, placed in the world: part p belongs to body `body[p]`,
    which stands at `position[body[p]]` (B, 3) turned by `yaw[body[p]]` about z."""
    c, s = np.cos(yaw)[body], np.sin(yaw)[body]
    turn = np.zeros((len(table), 3, 3))
    turn[:, 0, 0], turn[:, 0, 1], turn[:, 1, 0], turn[:, 1, 1], turn[:, 2, 2] = c, -s, s, c, 1
    out = table.copy()
    out[:, _CENTER] = np.einsum("pij,pj->pi", turn, table[:, _CENTER]) + position[body]
    local_to_world = table[:, _ROT].reshape(-1, 3, 3).transpose(0, 2, 1)  # the rows hold world -> local
    out[:, _ROT] = np.einsum("pij,pjk->pki", turn, local_to_world).reshape(-1, 9)
    return out


@dataclass
class Shape:
    """One object built in its own frame, with its footprint for placing it."""

    parts: Parts
    length: float  # along the object's x
    width: float  # along its y


class PartsBuilder:
    """Collects the primitives of one body, in the body's frame."""

    def __init__(self) -> None:
        self._rows: list[np.ndarray] = []
        self._materials: list[int] = []

    def _add(self, kind: float, center, rotation, half, material: int) -> PartsBuilder:
        row = np.zeros(len(_raycast.COLUMNS))
        row[_COL["kind"]] = kind
        row[_CENTER] = center
        row[_ROT] = (np.eye(3) if rotation is None else np.asarray(rotation, np.float64)).T.reshape(-1)
        row[_COL["a"]:_COL["c"] + 1] = half
        self._rows.append(row)
        self._materials.append(int(material))
        return self

    def box(self, center, size, material: int, rotation=None) -> PartsBuilder:
        return self._add(BOX, center, rotation, np.asarray(size, np.float64) / 2, material)

    def cylinder(self, center, radius: float, height: float, material: int, rotation=None,
                 radius_y: float | None = None) -> PartsBuilder:
        """Axis along the part's z; `radius_y` makes it elliptic."""
        return self._add(CYLINDER, center, rotation, (radius, radius if radius_y is None else radius_y, height / 2),
                         material)

    def ellipsoid(self, center, size, material: int, rotation=None) -> PartsBuilder:
        return self._add(ELLIPSOID, center, rotation, np.asarray(size, np.float64) / 2, material)

    def cone(self, center, radius_bottom: float, radius_top: float, height: float, material: int,
             rotation=None) -> PartsBuilder:
        return self._add(CONE, center, rotation, (radius_bottom, radius_top, height / 2), material)

    def rod(self, start, end, radius: float, material: int) -> PartsBuilder:
        """A cylinder from `start` to `end` (frame tubes, booms, limbs)."""
        start, end = np.asarray(start, np.float64), np.asarray(end, np.float64)
        axis = end - start
        length = float(np.linalg.norm(axis))
        z = axis / length
        x = np.array([0.0, z[2], -z[1]]) if abs(z[0]) < 0.9 else np.array([-z[2], 0.0, z[0]])  # a normal of z
        x /= np.linalg.norm(x)
        return self.cylinder((start + end) / 2, radius, length, material, _frame(x, z))

    def beam(self, start, end, width: float, height: float, material: int) -> PartsBuilder:
        """A box from `start` to `end`, kept upright (booms, arms, rails)."""
        start, end = np.asarray(start, np.float64), np.asarray(end, np.float64)
        length = float(np.linalg.norm(end - start))
        x = (end - start) / length
        up = np.array([0, 0, 1.0]) if abs(x[2]) < 0.99 else np.array([0, 1.0, 0])
        z = up - up.dot(x) * x
        z /= np.linalg.norm(z)
        return self.box((start + end) / 2, (length, width, height), material, _frame(x, z))

    def build(self) -> Parts:
        return Parts(np.array(self._rows).reshape(-1, len(_raycast.COLUMNS)), np.array(self._materials, np.int64))

    def shape(self, length: float, width: float) -> Shape:
        return Shape(self.build(), length, width)
