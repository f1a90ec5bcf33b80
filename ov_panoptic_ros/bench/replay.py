"""Bag I/O throughput and the bag's share of an offline replay.

Two questions: (1) how fast does the evaluation layout read back, raw and deserialized, with
nuScenes-sized 4.4 MB clouds (275k points x 16 B), MCAP against sqlite3; (2) in a real offline
replay with the tiny pipeline, what fraction of the wall time is spent reading the bag (it must
not be the bottleneck, i.e. it must take less time than everything else; measured ~5% on 10 frames).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from ov_panoptic_ros.bridge import builders
from ov_panoptic_ros.bridge.packing import pack_lidar_cloud
from ov_panoptic_ros.data.bag.reader import open_bag
from ov_panoptic_ros.data.bag.typestore import rosbags_kit
from ov_panoptic_ros.data.bag.writer import BagWriter
from ov_panoptic_ros.data.synthetic_drive import write_synthetic_bag

CLOUD_POINTS = 275_000  # x, y, z, intensity float32: 4.4 MB per cloud
TOPIC = "/lidar/points"


def _write_clouds(path: Path, n: int, storage: str) -> int:
    rng = np.random.default_rng(0)
    xyz = rng.normal(0, 20, (CLOUD_POINTS, 3)).astype(np.float32)
    intensity = rng.random(CLOUD_POINTS, dtype=np.float32)
    size = 0
    with BagWriter(path, storage) as writer:
        for i in range(n):
            stamp = 1_700_000_000 * 10**9 + i * 100_000_000
            msg = builders.cloud(rosbags_kit(), pack_lidar_cloud(xyz, intensity), stamp, "lidar")
            size += len(msg.data)
            writer.write(TOPIC, stamp, msg)
    return size


def _read(path: Path, decode: bool) -> dict:
    from ov_panoptic_ros.bridge.clouds import read_cloud

    t0 = time.perf_counter()
    convert_s, n, nbytes = 0.0, 0, 0
    with open_bag(path) as reader:
        for msg in reader.messages([TOPIC]):
            n += 1
            nbytes += len(msg.raw)
            if decode:
                cloud = msg.decode()
                c0 = time.perf_counter()
                read_cloud(cloud)
                convert_s += time.perf_counter() - c0
    wall = time.perf_counter() - t0
    return {"messages": n, "MB": nbytes / 1e6, "wall_s": wall, "MB_per_s": nbytes / 1e6 / wall,
            "msgs_per_s": n / wall, "read_cloud_ms_per_msg": convert_s * 1e3 / n if decode and n else None}


def bench_bag_io(n_clouds: int) -> dict:
    out = {"cloud_MB": CLOUD_POINTS * 16 / 1e6, "clouds": n_clouds}
    with tempfile.TemporaryDirectory() as tmp:
        for storage, name in (("mcap", "b.mcap"), ("sqlite3", "b.db3")):
            path = Path(tmp) / name
            t0 = time.perf_counter()
            written = _write_clouds(path, n_clouds, storage)
            write_s = time.perf_counter() - t0
            _read(path, decode=False)  # warm the page cache: measure the reader, not the disk
            out[storage] = {
                "write_MB_per_s": written / 1e6 / write_s,
                "raw": _read(path, decode=False),
                "deserialized": _read(path, decode=True),
            }
    return out


def bench_replay_share(n_frames: int, num_points: int) -> dict:
    from ov_panoptic_ros.eval.replay import replay_offline

    with tempfile.TemporaryDirectory() as tmp:
        bag = Path(tmp) / "drive.mcap"
        write_synthetic_bag(bag, n_frames=n_frames, num_points=num_points, num_cameras=2, image_size=(320, 240))
        doc = replay_offline(bag, "tiny", Path(tmp) / "report", progress=False, figure_frames=0)
    t = doc["timing"]
    return {"frames": doc["frames"]["processed"], "points_per_frame": num_points, "wall_s": t["wall_s"],
            "bag_read_s": t["bag_read_s"], "bag_read_share": t["bag_read_share"],
            "frames_per_s": t["frames_per_s"], "pipeline_latency_ms_p50": doc["latency_ms"]["p50"],
            "target": "bag reading is not the bottleneck: it takes less of the wall time than everything else"}


def bench_replay(quick: bool = False) -> dict:
    """JSON-able results for `ov-panoptic bench --only replay`."""
    io = bench_bag_io(10 if quick else 50)
    share = bench_replay_share(3 if quick else 10, 20_000 if quick else 34_000)
    return {"bag_io": io, "offline_replay": share,
            "bag_read_is_bottleneck": bool(share["bag_read_share"] is not None and share["bag_read_share"] >= 0.5)}
