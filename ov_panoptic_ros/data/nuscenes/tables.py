"""nuScenes' JSON tables, read directly: what the devkit's NuScenes class indexes, without the devkit (it pins
numpy < 2, so it cannot share the project's venv).

Only what a keyframe source needs is kept: the scenes in table order with their samples in time order (the
scene's first_sample_token, then each sample's `next`), per sample the keyframe sample_data of each sensor
channel, the calibrated sensors and ego poses those keyframes use, the general classes (category.json) and the
panoptic label files. Sweeps and the ego poses only they use are dropped once read: a trainval load keeps a
small part of what it parsed. Every broken table fails here, before a frame is built, naming its file.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

from ov_panoptic_ros.data.nuscenes.errors import NuScenesError

REQUIRED = ("scene", "sample", "sample_data", "calibrated_sensor", "sensor", "ego_pose", "category")
KEYFRAME_FIELDS = ("filename", "timestamp", "ego_pose_token")  # what a frame reads from a keyframe record
LABELS = "panoptic"  # panoptic.json: LIDAR_TOP sample_data token -> panoptic/<version>/<token>_panoptic.npz


def version_folder(dataroot: str | Path, version: str) -> Path:
    """DATAROOT/VERSION, the folder of the JSON tables; NuScenesError naming the path when it is not there."""
    root = Path(dataroot).expanduser()
    if not root.is_dir():
        raise NuScenesError(f"nuScenes dataroot {root} is not a directory (expected DATAROOT with {version}/, "
                            "samples/, panoptic/)")
    folder = root / version
    if not folder.is_dir():
        found = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("v1.0"))
        raise NuScenesError(f"nuScenes version folder {folder} not found (version folders in {root}: "
                            f"{', '.join(found) or 'none'})")
    return folder


def load_table(folder: Path, name: str) -> list[dict]:
    """One table: a JSON list of records (dicts)."""
    path = folder / f"{name}.json"
    if not path.is_file():
        raise NuScenesError(f"nuScenes table {path} is missing")
    try:
        records = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        raise NuScenesError(f"nuScenes table {path} cannot be read: {e}") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise NuScenesError(f"nuScenes table {path} is not a JSON list of records")
    return records


class NuScenesTables:
    """The indexed tables of one version (see the module docstring). `labels`: read panoptic.json too."""

    def __init__(self, dataroot: str | Path, version: str, labels: bool):
        self.dataroot, self.version = Path(dataroot).expanduser(), version
        self.folder = version_folder(dataroot, version)
        raw = {name: load_table(self.folder, name) for name in REQUIRED}
        with self._fields("sensor"):
            channel_of_sensor = {r["token"]: str(r["channel"]) for r in raw["sensor"]}
        with self._fields("calibrated_sensor"):
            self.calibrated = {r["token"]: r for r in raw["calibrated_sensor"]}
            channel = {t: self._ref(channel_of_sensor, r["sensor_token"], "sensor", "calibrated_sensor")
                       for t, r in self.calibrated.items()}
        self.keyframes: dict[str, dict[str, dict]] = {}  # sample token -> channel -> sample_data record
        with self._fields("sample_data"):
            for r in raw["sample_data"]:
                if r["is_key_frame"]:
                    ch = self._ref(channel, r["calibrated_sensor_token"], "calibrated_sensor", "sample_data")
                    absent = [k for k in KEYFRAME_FIELDS if k not in r]
                    if absent:
                        raise KeyError(absent[0])
                    self.keyframes.setdefault(r["sample_token"], {})[ch] = r
        used = {r["ego_pose_token"] for channels in self.keyframes.values() for r in channels.values()}
        with self._fields("ego_pose"):
            self.ego_pose = {r["token"]: r for r in raw["ego_pose"] if r["token"] in used}
        missing = used - self.ego_pose.keys()
        if missing:
            raise NuScenesError(f"nuScenes table {self.folder / 'ego_pose.json'} lacks ego pose(s) "
                                f"{sorted(missing)[:3]} that keyframes in sample_data.json refer to")
        self.scenes = self._scenes(raw["scene"], raw["sample"])
        self.categories = raw["category"]  # labels.py checks its names and indices
        self.label_files: dict[str, str] = {}
        if labels:
            if not (self.folder / f"{LABELS}.json").is_file():
                raise NuScenesError(f"nuScenes table {self.folder / (LABELS + '.json')} is missing: the Panoptic "
                                    "nuScenes labels are not installed (ground_truth=False reads without them)")
            with self._fields(LABELS):
                self.label_files = {r["sample_data_token"]: r["filename"] for r in load_table(self.folder, LABELS)}

    def _scenes(self, scenes: list[dict], samples: list[dict]) -> list[tuple[str, list[str]]]:
        """(scene name, its sample tokens in time order) per scene, in table order."""
        with self._fields("sample"):
            following = {r["token"]: r["next"] for r in samples}
        out = []
        with self._fields("scene"):
            for scene in scenes:
                tokens, token = [], scene["first_sample_token"]
                while token:
                    if token not in following or token in tokens:
                        raise NuScenesError(f"nuScenes table {self.folder / 'sample.json'}: scene {scene['name']}'s "
                                            f"chain of samples reaches {token!r}, which is missing or a loop")
                    tokens.append(token)
                    token = following[token]
                out.append((str(scene["name"]), tokens))
        return out

    def _ref(self, index: dict, token: str, table: str, referrer: str):
        if token not in index:
            raise NuScenesError(f"nuScenes table {self.folder / (referrer + '.json')} refers to {table} {token!r}, "
                                f"which {self.folder / (table + '.json')} lacks")
        return index[token]

    @contextmanager
    def _fields(self, table: str):
        """A record without a field the source reads: NuScenesError naming the table."""
        try:
            yield
        except (KeyError, TypeError) as e:
            raise NuScenesError(f"nuScenes table {self.folder / (table + '.json')}: a record lacks the field {e} "
                                "(or it has the wrong type)") from None

    def file(self, filename: str) -> Path:
        """A path in a record (samples/..., panoptic/...) as a file under the dataroot."""
        return self.dataroot / filename
