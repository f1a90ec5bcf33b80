"""Writing a rosbag2 (MCAP or sqlite3, a single file or a directory) from rosbags messages or raw bytes."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from rosbags.interfaces import Connection, Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import StoragePlugin, Writer

from ov_panoptic_ros.data.bag.errors import BagError
from ov_panoptic_ros.data.bag.typestore import typestore

STORAGES = ("mcap", "sqlite3")
LATCHED_QOS = Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL,
                  QosTime(0, 0), QosTime(0, 0), QosLiveliness.AUTOMATIC, QosTime(0, 0), False)
SENSOR_QOS = Qos(QosHistory.KEEP_LAST, 10, QosReliability.RELIABLE, QosDurability.VOLATILE,
                 QosTime(0, 0), QosTime(0, 0), QosLiveliness.AUTOMATIC, QosTime(0, 0), False)


def storage_for(path: Path, storage: str | None) -> str:
    """The storage of a bag path: given, or from a .mcap / .db3 suffix, else MCAP."""
    by_suffix = {".mcap": "mcap", ".db3": "sqlite3"}.get(path.suffix)
    if storage is None:
        return by_suffix or "mcap"
    if storage not in STORAGES:
        raise BagError(f"unknown bag storage {storage!r}; choose from {', '.join(STORAGES)}")
    if by_suffix and by_suffix != storage:
        raise BagError(f"bag path {path} has the suffix of {by_suffix} storage but storage={storage!r}")
    return storage


class BagWriter:
    """A rosbags Writer that takes typestore messages by topic name.

    A path ending in .mcap / .db3 becomes that single file (what Foxglove opens directly); any other
    path becomes a rosbag2 directory. Closing always finalizes the bag, so a run that stops early
    still leaves a readable bag with everything written so far.
    """

    def __init__(self, path: str | Path, storage: str | None = None):
        self.path = Path(path)
        self.storage = storage_for(self.path, storage)
        if self.path.exists():
            raise BagError(f"{self.path} exists already; not overwriting it")
        self.single_file = self.path.suffix in (".mcap", ".db3")
        self._tmp = tempfile.mkdtemp(prefix=".bagwrite-", dir=self.path.parent) if self.single_file else None
        target = Path(self._tmp) / "bag" if self.single_file else self.path
        plugin = StoragePlugin.MCAP if self.storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(target, version=Writer.VERSION_LATEST, storage_plugin=plugin)
        self._writer.open()
        self._conns: dict[str, Connection] = {}
        self.closed = False

    def add_topic(self, topic: str, msgtype: str, latched: bool = False) -> None:
        if topic in self._conns:
            return
        qos = [LATCHED_QOS if latched else SENSOR_QOS]
        self._conns[topic] = self._writer.add_connection(topic, msgtype, typestore=typestore(),
                                                         offered_qos_profiles=qos)

    def write(self, topic: str, stamp_ns: int, msg) -> None:
        self.add_topic(topic, msg.__msgtype__)
        self.write_raw(topic, stamp_ns, typestore().serialize_cdr(msg, msg.__msgtype__))

    def write_raw(self, topic: str, stamp_ns: int, data: bytes) -> None:
        self._writer.write(self._conns[topic], int(stamp_ns), data)

    def close(self) -> Path:
        """Finalize; returns the bag path (the single file, or the directory)."""
        if self.closed:
            return self.path
        self.closed = True
        self._writer.close()
        if self.single_file:
            produced = next(p for p in (Path(self._tmp) / "bag").iterdir() if p.suffix in (".mcap", ".db3"))
            shutil.move(str(produced), self.path)
            shutil.rmtree(self._tmp, ignore_errors=True)
        return self.path

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def mcap_file(self) -> Path | None:
        if self.storage != "mcap":
            return None
        return self.path if self.single_file else next(self.path.glob("*.mcap"), None)
