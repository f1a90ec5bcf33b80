"""Text embeddings of a vocabulary in the vision-language space: prompts, synonyms, template ensembling, a cache.

`ClassEmbeddings` is what both the zero-shot baseline and the trained head score against.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ov_panoptic_ros.core.config import DEFAULT_TEMPLATES
from ov_panoptic_ros.core.frame import Vocabulary

if TYPE_CHECKING:
    from ov_panoptic_ros.core.vision.backend import TextTower


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


def fill_template(template: str, name: str) -> str:
    """Insert a class name at the template's '{}' (plain replace, so other braces in a template are literal)."""
    return template.replace("{}", name)


class TextEncoder:
    """Embeds vocabularies with a text tower (backend.py); one prompt is encoded once per model and cached.

    Thread-safe: the node embeds a new vocabulary in a worker thread while frames run. The lock is held
    while missing prompts are encoded, so two overlapping requests never encode the same prompt twice.
    """

    def __init__(self, tower: TextTower, batch_size: int = 256):
        self.tower = tower
        self.batch_size = batch_size
        self._cache: dict[tuple[str, str], torch.Tensor] = {}  # (model_id, prompt) -> (D,) unit, CPU float32
        self._lock = threading.Lock()
        self.prompts_encoded = 0  # how many prompts went through the text tower (cache misses)

    def embed(self, vocabulary: Vocabulary) -> ClassEmbeddings:
        """Per synonym: normalized mean of its normalized template embeddings. CPU tensors."""
        templates = vocabulary.templates or DEFAULT_TEMPLATES
        synonyms = [(c, name) for c, names in enumerate(vocabulary.synonyms) for name in names]
        prompts = [[fill_template(t, name) for t in templates] for _, name in synonyms]
        table = self.prompt_embeddings([p for row in prompts for p in row])
        rows = [torch.stack([table[p] for p in row]).mean(dim=0) for row in prompts]
        embeddings = torch.nn.functional.normalize(torch.stack(rows), dim=-1)
        return ClassEmbeddings(
            vocabulary=vocabulary,
            embeddings=embeddings,
            synonym_class=torch.tensor([c for c, _ in synonyms], dtype=torch.long),
            is_stuff=torch.from_numpy(vocabulary.is_stuff.copy()),
            model_id=self.tower.model_id,
        )

    def prompt_embeddings(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        """Unit embedding per prompt, encoding only those not cached yet."""
        model_id = self.tower.model_id
        with self._lock:
            missing = list(dict.fromkeys(p for p in prompts if (model_id, p) not in self._cache))
            for start in range(0, len(missing), self.batch_size):
                batch = missing[start:start + self.batch_size]
                for prompt, emb in zip(batch, self._encode(batch)):
                    self._cache[(model_id, prompt)] = emb
            return {p: self._cache[(model_id, p)] for p in prompts}

    def _encode(self, prompts: list[str]) -> torch.Tensor:
        emb = self.tower.encode_prompts(prompts)
        self.prompts_encoded += len(prompts)
        return emb
