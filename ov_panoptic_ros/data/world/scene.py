"""A scene: every primitive of a street with its class, instance and material, posed at any time.

Static bodies are placed once; moving bodies keep their parts in their own frame and a constant velocity, so
the scene at time t is computed directly from t: a frame can be made without making the frames before it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ov_panoptic_ros.data.world import _raycast
from ov_panoptic_ros.data.world.parts import Parts, PartsBuilder, Shape, place

_CX = _raycast.COLUMNS.index("cx")
_SIZE = slice(_raycast.COLUMNS.index("a"), _raycast.COLUMNS.index("c") + 1)


@dataclass
class Posed:
    """Primitives as kernel rows and, per row, its class label, instance id and material."""

    table: np.ndarray  # (P, len(_raycast.COLUMNS)) float64
    label: np.ndarray  # (P,) uint16
    instance: np.ndarray  # (P,) uint32, 0 for stuff
    material: np.ndarray  # (P,) int64

    @staticmethod
    def join(items: list[Posed]) -> Posed:
        return Posed(*(np.concatenate([getattr(i, f) for i in items]) for f in ("table", "label", "instance",
                                                                               "material")))

    def subset(self, keep: np.ndarray) -> Posed:
        return Posed(self.table[keep], self.label[keep], self.instance[keep], self.material[keep])


@dataclass
class Scene:
    static: Posed  # in the world frame
    moving: Posed  # in the frames of their bodies
    body: np.ndarray  # (Pm,) body index of each moving part
    start: np.ndarray  # (B, 3) body position at t = 0
    velocity: np.ndarray  # (B, 3) metres per second
    yaw: np.ndarray  # (B,) heading (constant)
    materials: np.ndarray  # appearance.COLUMNS rows

    def at(self, t: float, near: np.ndarray | None = None, radius: float = np.inf) -> Posed:
        """The primitives at time t; with `near`, only those that reach within `radius` of that xy point."""
        moving = place(self.moving.table, self.start + t * self.velocity, self.yaw, self.body)
        posed = Posed.join([self.static, Posed(moving, self.moving.label, self.moving.instance,
                                               self.moving.material)])
        if near is None:
            return posed
        reach = np.hypot(*(posed.table[:, _CX:_CX + 2] - near[:2]).T) - np.linalg.norm(posed.table[:, _SIZE], axis=1)
        return posed.subset(reach < radius)


def _empty() -> Posed:
    return Posed(np.zeros((0, len(_raycast.COLUMNS))), np.zeros(0, np.uint16), np.zeros(0, np.uint32),
                 np.zeros(0, np.int64))


class SceneBuilder:
    """Collects bodies while a layout is made: things get instance ids 1, 2, ... in the order they are added."""

    def __init__(self) -> None:
        self._static: list[Posed] = [_empty()]
        self._moving: list[Posed] = [_empty()]
        self._poses: list[tuple[np.ndarray, np.ndarray, float]] = []
        self.instances = 0

    def add(self, shape: Shape | Parts, label: int, thing: bool, position, yaw: float = 0.0,
            velocity=(0.0, 0.0)) -> int:
        """Place a body; returns its instance id (0 for stuff). A moving body keeps `yaw` as it goes."""
        parts = shape.parts if isinstance(shape, Shape) else shape
        instance = 0
        if thing:
            self.instances += 1
            instance = self.instances
        n = len(parts.table)
        labels, instances = np.full(n, label, np.uint16), np.full(n, instance, np.uint32)
        position = np.asarray(position, np.float64)
        if np.any(velocity):
            self._moving.append(Posed(parts.table, labels, instances, parts.material))
            self._poses.append((position, np.array([*velocity, 0.0]), float(yaw)))
        else:
            table = place(parts.table, position[None], np.array([float(yaw)]), np.zeros(n, np.int64))
            self._static.append(Posed(table, labels, instances, parts.material))
        return instance

    def slab(self, x0: float, x1: float, y0: float, y1: float, top: float, label: int, material: int,
             thickness: float = 0.3, along_y: bool = False) -> None:
        """A ground patch: an axis-aligned box whose top face is the ground at height `top`. Its texture runs
        along x, or along y with `along_y` (a cross street's markings)."""
        size = (y1 - y0, x1 - x0) if along_y else (x1 - x0, y1 - y0)
        parts = PartsBuilder().box((0, 0, top - thickness / 2), (*size, thickness), material).build()
        self.add(parts, label, False, ((x0 + x1) / 2, (y0 + y1) / 2, 0), np.pi / 2 if along_y else 0.0)

    def build(self, materials: np.ndarray) -> Scene:
        moving = Posed.join(self._moving)
        sizes = [len(m.table) for m in self._moving[1:]]
        return Scene(Posed.join(self._static), moving, np.repeat(np.arange(len(sizes)), sizes).astype(np.int64),
                     np.array([p[0] for p in self._poses]).reshape(-1, 3),
                     np.array([p[1] for p in self._poses]).reshape(-1, 3), np.array([p[2] for p in self._poses]),
                     materials)
