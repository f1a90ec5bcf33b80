"""One factory for every FrameSource, chosen from a name or a path (kiss-icp's dataset factory)."""
from __future__ import annotations

from pathlib import Path

from ov_panoptic_ros.data.source import FrameSource

SYNTHETIC, WORLD = "synthetic", "world"


def _seed(text: str) -> int:
    seed = text.partition(":")[2]
    try:
        return int(seed) if seed else 0
    except ValueError:
        raise ValueError(f"source {text!r}: the seed after ':' must be an integer") from None


def world_seeds(text: str) -> list[int]:
    """'world' -> [0]; 'world:7' -> [7]; 'world:100:120' -> seeds 100..119 (one drive each)."""
    parts = text.split(":")[1:]
    try:
        if len(parts) == 2:
            return list(range(int(parts[0]), int(parts[1])))
        return [int(parts[0])] if parts and parts[0] else [0]
    except ValueError:
        raise ValueError(f"source {text!r}: expected world, world:SEED or world:FIRST:STOP") from None


def open_source(spec: str | Path, **options) -> FrameSource:
    """A source by name or path:
    - 'world[:SEED]' or 'world:FIRST:STOP': drives of the synthetic world, 16 nuScenes classes (options: frames
      per seed, start, every, cameras, image_size, duration_s);
    - 'synthetic[:SEED]': the small synthetic street (options: frames, num_points, num_cameras, image_size);
    - 'semantickitti:ROOT': SemanticKITTI scans with image_2 and the 19 learning classes (options: sequences, a list
      or '00,08', default every one under ROOT/sequences; every, max_frames; images, False for LiDAR only; novel,
      the classes marked novel in the ground truth);
    - 'nuscenes:DATAROOT': nuScenes keyframes (LIDAR_TOP, 6 cameras) with Panoptic nuScenes labels in the 16
      challenge classes (options: version, default v1.0-mini; split, one of the version's: train, val, mini_train,
      mini_val, test; scenes, names; every, max_frames; cameras, channel names, [] for LiDAR only; ground_truth,
      default all but v1.0-test; novel);
    - anything else: a bag in the evaluation layout (options: topics, calibration_file, every, max_frames)."""
    text = str(spec)
    name = text.partition(":")[0]
    if name == WORLD:
        from ov_panoptic_ros.data.world.source import WorldSource

        return WorldSource(seed=world_seeds(text), **options)
    if name == SYNTHETIC:
        from ov_panoptic_ros.data.synthetic_drive import SyntheticSource

        return SyntheticSource(seed=_seed(text), **options)
    if name == "semantickitti":
        from ov_panoptic_ros.data.semantickitti import SemanticKittiError, SemanticKittiSource

        root = text.partition(":")[2]
        if not root:
            raise SemanticKittiError(f"source {text!r}: expected semantickitti:ROOT, the directory holding sequences/")
        return SemanticKittiSource(root, **options)
    if name == "nuscenes":
        from ov_panoptic_ros.data.nuscenes import NuScenesError, NuScenesSource

        dataroot = text.partition(":")[2]
        if not dataroot:
            raise NuScenesError(f"source {text!r}: expected nuscenes:DATAROOT, the directory holding v1.0-*/")
        return NuScenesSource(dataroot, **options)
    from ov_panoptic_ros.data.bag.source import BagFrameSource

    return BagFrameSource.open(spec, **options)
