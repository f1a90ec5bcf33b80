"""Text embeddings of a vocabulary in CLIP space: prompts, synonyms, template ensembling, a cache.

`ClassEmbeddings` is what both the zero-shot baseline and the trained head score against.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ov_panoptic_ros.core.frame import Vocabulary


@dataclass
class ClassEmbeddings:
    """A vocabulary embedded in CLIP space, ready to score features against.

    One row per synonym (each the normalized mean of its normalized template embeddings);
    `synonym_class[s]` is the class index of row s. A class scores the max over its synonyms.
    """

    vocabulary: Vocabulary
    embeddings: torch.Tensor  # (S, D) unit rows
    synonym_class: torch.Tensor  # (S,) long, values in [0, C)
    is_stuff: torch.Tensor  # (C,) bool
    model_id: str  # identity of the CLIP model that made them

    @property
    def num_classes(self) -> int:
        return len(self.vocabulary.classes)

    def to(self, device: torch.device | str) -> ClassEmbeddings:
        return ClassEmbeddings(self.vocabulary, self.embeddings.to(device), self.synonym_class.to(device),
                               self.is_stuff.to(device), self.model_id)

    def cosine(self, features: torch.Tensor) -> torch.Tensor:
        """(N, D) features -> (N, C) cosine similarity, max over each class's synonyms."""
        f = torch.nn.functional.normalize(features.float(), dim=-1)
        sim = f @ self.embeddings.float().T  # (N, S)
        out = sim.new_full((sim.shape[0], self.num_classes), -2.0)
        idx = self.synonym_class.unsqueeze(0).expand_as(sim)
        return out.scatter_reduce(1, idx, sim, reduce="amax", include_self=True)
