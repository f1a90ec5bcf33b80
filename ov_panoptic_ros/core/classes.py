"""Ground-truth class lists: names, things vs stuff, base vs novel, ignored classes.

Every layer that touches labelled data shares this type: the bag layout and the dataset sources (which
classes a label indexes), training (which classes are base), and the metrics (which groups are scored).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ov_panoptic_ros.core.frame import UNLABELED

GROUPS = ("all", "things", "stuff", "base", "novel", "things_base", "things_novel", "stuff_base", "stuff_novel")


@dataclass(frozen=True)
class ClassInfo:
    """Ground-truth classes: index i has name ``names[i]``.

    ``is_thing`` / ``is_novel`` flag each index; ``ignore`` lists the indices whose ground-truth
    points are dropped (and which are not evaluated). Frozen so an evaluator's set-up cannot drift.
    """

    names: tuple[str, ...]
    is_thing: tuple[bool, ...]
    is_novel: tuple[bool, ...]
    ignore: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.names)
        object.__setattr__(self, "names", tuple(str(x) for x in self.names))
        object.__setattr__(self, "is_thing", tuple(bool(x) for x in self.is_thing))
        object.__setattr__(self, "is_novel", tuple(bool(x) for x in self.is_novel))
        object.__setattr__(self, "ignore", tuple(sorted({int(x) for x in self.ignore})))
        if n == 0:
            raise ValueError("ClassInfo needs at least one class name")
        if n >= UNLABELED:
            raise ValueError(f"ClassInfo has {n} classes; at most {UNLABELED - 1} fit beside UNLABELED={UNLABELED}")
        if len(self.is_thing) != n or len(self.is_novel) != n:
            raise ValueError(
                f"ClassInfo: names has {n} entries but is_thing has {len(self.is_thing)} "
                f"and is_novel has {len(self.is_novel)}"
            )
        lowered = [x.lower() for x in self.names]
        if len(set(lowered)) != n:
            dup = sorted({x for x in lowered if lowered.count(x) > 1})
            raise ValueError(f"ClassInfo: duplicate class names (case-insensitive): {dup}")
        bad = [i for i in self.ignore if not 0 <= i < n]
        if bad:
            raise ValueError(f"ClassInfo: ignore indices {bad} are outside 0..{n - 1}")
        if len(self.ignore) == n:
            raise ValueError("ClassInfo: every class is ignored; nothing would be evaluated")

    @classmethod
    def from_names(
        cls,
        names: Sequence[str],
        things: Sequence[str] = (),
        novel: Sequence[str] = (),
        ignore: Sequence[str] = (),
    ) -> "ClassInfo":
        """Build from name lists (case-insensitive); unknown names are an error, not a silent no-op."""
        index = {n.lower(): i for i, n in enumerate(names)}
        for label, group in (("things", things), ("novel", novel), ("ignore", ignore)):
            unknown = [g for g in group if g.lower() not in index]
            if unknown:
                raise ValueError(f"ClassInfo.from_names: {label} names {unknown} are not among the class names")
        thing_set = {g.lower() for g in things}
        novel_set = {g.lower() for g in novel}
        return cls(
            names=tuple(names),
            is_thing=tuple(n.lower() in thing_set for n in names),
            is_novel=tuple(n.lower() in novel_set for n in names),
            ignore=tuple(index[g.lower()] for g in ignore),
        )

    @property
    def n_classes(self) -> int:
        return len(self.names)

    @property
    def evaluated(self) -> tuple[int, ...]:
        """Indices that are scored (every class not in ``ignore``)."""
        ignored = set(self.ignore)
        return tuple(i for i in range(self.n_classes) if i not in ignored)

    def index(self, name: str) -> int:
        """Class index of ``name`` (case-insensitive)."""
        lowered = name.strip().lower()
        for i, n in enumerate(self.names):
            if n.lower() == lowered:
                return i
        raise KeyError(f"no class named {name!r}; classes are {list(self.names)}")

    def group(self, group: str) -> tuple[int, ...]:
        """Evaluated indices of a group from :data:`GROUPS` (e.g. ``things_novel``)."""
        if group not in GROUPS:
            raise ValueError(f"unknown group {group!r}; choose from {GROUPS}")
        kind, _, split = group.partition("_")
        if kind in ("base", "novel"):
            kind, split = "all", kind
        out = []
        for i in self.evaluated:
            if kind == "things" and not self.is_thing[i] or kind == "stuff" and self.is_thing[i]:
                continue
            if split == "base" and self.is_novel[i] or split == "novel" and not self.is_novel[i]:
                continue
            out.append(i)
        return tuple(out)


NUSCENES_NAMES = (
    "noise",  # 0: the devkit's ignore class
    "barrier", "bicycle", "bus", "car", "construction_vehicle", "motorcycle", "pedestrian", "traffic_cone",
    "trailer", "truck",  # 1-10: things
    "driveable_surface", "other_flat", "sidewalk", "terrain", "manmade", "vegetation",  # 11-16: stuff
)
NUSCENES_NOVEL = ("bus", "motorcycle", "pedestrian", "vegetation")

SEMANTICKITTI_NAMES = (
    "unlabeled",  # 0: ignored
    "car", "bicycle", "motorcycle", "truck", "other-vehicle", "person", "bicyclist", "motorcyclist",  # 1-8
    "road", "parking", "sidewalk", "other-ground", "building", "fence", "vegetation", "trunk", "terrain",
    "pole", "traffic-sign",  # 9-19: stuff
)
# No published open-vocabulary split exists for SemanticKITTI; this mirrors the nuScenes one
# (bus -> other-vehicle, motorcycle, pedestrian -> person, vegetation). Pass your own `novel` to change it.
SEMANTICKITTI_NOVEL = ("other-vehicle", "motorcycle", "person", "vegetation")


def nuscenes_classes(novel: Sequence[str] = NUSCENES_NOVEL) -> ClassInfo:
    """The 16 nuScenes lidarseg classes at the devkit's indices: 0 = noise (ignored), 1-10 things, 11-16 stuff."""
    return ClassInfo.from_names(NUSCENES_NAMES, things=NUSCENES_NAMES[1:11], novel=novel, ignore=("noise",))


def semantickitti_classes(novel: Sequence[str] = SEMANTICKITTI_NOVEL) -> ClassInfo:
    """The 19 SemanticKITTI learning classes: 0 = unlabeled (ignored), 1-8 things, 9-19 stuff."""
    return ClassInfo.from_names(
        SEMANTICKITTI_NAMES, things=SEMANTICKITTI_NAMES[1:9], novel=novel, ignore=("unlabeled",)
    )
