"""The teacher backend: CLIP's role played by a dense CNN trained here, aligned to a real frozen text encoder.

No CLIP weights can be fetched on the machines this project runs on, so the method is proven on a synthetic
world with a 2D teacher that has seen every class in images (LSeg-style: per-pixel features trained to match
the all-MiniLM-L6-v2 embeddings of the class names; train/teacher.py). Because the text side is a real
sentence encoder, names the teacher never saw ("automobile", "lorry") still land near the right features.

Selected by `clip.model_name: teacher` with `clip.checkpoint` pointing at the teacher's file. Its features
are consumed exactly like CLIP's: the same preprocessing and cell geometry (preprocess.py), unit rows,
`sample_seen_point_features`. model_id = "teacher@" + sha256[:16] of the checkpoint file, so a 3D network
trained against one teacher refuses another; the checkpoint in turn names the text model it was aligned to
and is refused beside any other.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ov_panoptic_ros.core.config import ClipConfig
from ov_panoptic_ros.core.vision.features import DenseFeatures
from ov_panoptic_ros.core.vision.minilm_text import NAME as MINILM, MiniLMTextTower
from ov_panoptic_ros.core.vision.preprocess import ImagePreprocess
from ov_panoptic_ros.core.vision.teacher_checkpoint import TeacherCheckpointError, build_net, read_teacher
from ov_panoptic_ros.core.vision.teacher_net import TeacherNet
from ov_panoptic_ros.core.vision.weights import checkpoint_path, compute_dtype, file_sha256


class TeacherEncoder:
    """A frozen TeacherNet as a DenseImageEncoder (backend.py): images -> unit feature maps at its stride."""

    def __init__(self, net: TeacherNet, image_size: int, model_id: str, device: torch.device,
                 dtype: torch.dtype = torch.float32):
        self.device = torch.device(device)
        self.dtype = dtype
        self.net = net.to(device=self.device, dtype=dtype).eval().requires_grad_(False)
        self.model_id = model_id
        self.embed_dim = net.embed_dim
        self.stride = net.stride
        # TeacherNet normalizes its [0, 1] input itself, so the shared preprocessing only resizes and pads.
        self.preprocess = ImagePreprocess(image_size, net.stride, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), self.device)

    def encode(self, images: list[np.ndarray]) -> DenseFeatures:
        """(H, W, 3) uint8 RGB images -> per-cell unit features, batched over all cameras."""
        if not images:
            return DenseFeatures(torch.zeros(0, self.embed_dim, 0, 0, device=self.device),
                                 torch.zeros(0, 2, device=self.device))
        with torch.inference_mode():
            batch, pixel_to_cell = self.preprocess(images)
            maps = F.normalize(self.net(batch.to(self.dtype)).float(), dim=1)
        return DenseFeatures(maps.contiguous(memory_format=torch.channels_last), pixel_to_cell)  # cells contiguous


def load_teacher(clip_cfg: ClipConfig, device: torch.device) -> tuple[TeacherEncoder, MiniLMTextTower]:
    """The teacher in `clip.checkpoint` and the text tower it was aligned to, after every check passed."""
    if clip_cfg.pretrained:
        raise ValueError(f"clip.pretrained {clip_cfg.pretrained!r} is an open_clip tag; the teacher has none:"
                         " its weights are the clip.checkpoint file")
    path = checkpoint_path(clip_cfg.checkpoint)
    if path is None:
        raise ValueError("clip.model_name 'teacher' needs clip.checkpoint: a teacher file written by "
                         "ov_panoptic_ros.train.teacher (there is no untrained teacher)")
    payload = read_teacher(path)
    saved = payload["text_model"]
    if saved["name"] != MINILM:
        raise TeacherCheckpointError(f"teacher checkpoint {str(path)!r} was aligned to text model "
                                     f"{saved['name']!r}; the only text model here is {MINILM!r}")
    text = MiniLMTextTower(device)
    if saved["model_id"] != text.model_id:
        raise TeacherCheckpointError(f"teacher checkpoint {str(path)!r} was aligned to {saved['model_id']}, "
                                     f"but the installed text model is {text.model_id}")
    device = torch.device(device)
    image = TeacherEncoder(build_net(payload, path), clip_cfg.image_size or payload["image_size"],
                           f"teacher@{file_sha256(path)[:16]}", device, compute_dtype(clip_cfg.precision, device))
    return image, text
