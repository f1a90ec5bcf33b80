"""nuscenes-devkit's own answers about a dataroot, for test/test_nuscenes_source.py. Runs in the oracle venv
(.venv-oracle: nuscenes-devkit 1.2.0, numpy < 2), so it imports only the devkit, numpy and the standard library.

    python nuscenes_oracle.py DATAROOT VERSION OUT.json

The devkit opens the dataroot with its NuScenes class and writes, as JSON:
- general_to_challenge: the general class name -> challenge class index of its LidarsegClassMapper;
- labels: per LIDAR_TOP sample_data token, the challenge labels PanopticClassMapper.convert_label gives the
  panoptic file (as the devkit's panoptic evaluation reads it);
- projections: per sample token and camera, map_pointcloud_to_image's pixels and depths (the devkit's ego-motion
  chain, its own masks: depth > 1 m, one pixel inside the image);
- mini_val: the sample tokens of get_samples_in_eval_set(nusc, 'mini_val');
- splits: create_splits_scenes().
"""
import json
import sys

import numpy as np
from nuscenes import NuScenes
from nuscenes.eval.lidarseg.utils import get_samples_in_eval_set
from nuscenes.eval.panoptic.utils import PanopticClassMapper
from nuscenes.utils.data_io import load_bin_file
from nuscenes.utils.splits import create_splits_scenes

CAMERAS = ("CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_FRONT_LEFT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT")


def main(dataroot: str, version: str, out: str) -> None:
    nusc = NuScenes(version=version, dataroot=dataroot, verbose=False)
    mapper = PanopticClassMapper(nusc)
    general = {name: int(mapper.fine_idx_2_coarse_idx_mapping[idx])
               for name, idx in nusc.lidarseg_name2idx_mapping.items()}
    labels, projections = {}, {}
    for sample in nusc.sample:
        lidar = sample["data"]["LIDAR_TOP"]
        panoptic = load_bin_file(f"{dataroot}/{nusc.get('panoptic', lidar)['filename']}", type="panoptic")
        labels[lidar] = mapper.convert_label(panoptic // 1000).astype(int).tolist()
        for camera in CAMERAS:
            uv, depth, _ = nusc.explorer.map_pointcloud_to_image(lidar, sample["data"][camera])
            projections[f"{sample['token']}/{camera}"] = np.concatenate([uv[:2].T, depth[:, None]], 1).tolist()
    result = {"general_to_challenge": general, "labels": labels, "projections": projections,
              "mini_val": get_samples_in_eval_set(nusc, "mini_val"), "splits": create_splits_scenes()}
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(*sys.argv[1:4])
