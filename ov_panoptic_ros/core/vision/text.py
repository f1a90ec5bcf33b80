"""Text embeddings of a vocabulary in the vision-language space: prompts, synonyms, template ensembling, a cache.

`ClassEmbeddings` is what both the zero-shot baseline and the trained head score against.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
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


CACHE_BYTES = 64 << 20  # default bound of a text encoder's prompt cache
# Per cached prompt besides its row: the prompt string, the LRU dict entry and its slot number. Measured
# 221 bytes (RSS of 200k entries with 45-character prompts), rounded up.
ENTRY_OVERHEAD_BYTES = 256


class PromptCache:
    """LRU cache of one text tower's unit prompt embeddings, bounded by `max_bytes`.

    Rows live in one (capacity, D) float32 slab and an evicted prompt's slot is overwritten in place.
    A tensor per prompt fragmented the heap: tens of thousands of small rows allocated between the text
    tower's large transient buffers took RSS from 0.8 to 2.2 GB over five 2,000-class vocabularies.
    capacity = max_bytes // (4 D + ENTRY_OVERHEAD_BYTES), so what the cache holds, `nbytes`, never
    exceeds the bound. Not thread-safe on its own: TextEncoder holds its lock around every call.
    """

    def __init__(self, max_bytes: int = CACHE_BYTES):
        self.max_bytes = max_bytes
        self._slots: OrderedDict[str, int] = OrderedDict()  # prompt -> slab row; least recently used first
        self._slab: torch.Tensor | None = None  # allocated at the first insert, when D is known

    def __len__(self) -> int:
        return len(self._slots)

    @property
    def capacity(self) -> int:
        return 0 if self._slab is None else self._slab.shape[0]

    @property
    def nbytes(self) -> int:
        """What the held prompts cost as the bound counts it (the slab's untouched rows are not resident)."""
        return 0 if self._slab is None else len(self) * (self._slab.shape[1] * 4 + ENTRY_OVERHEAD_BYTES)

    def lookup(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        """Copies of the cached rows among `prompts` (distinct), each marked as just used."""
        hits = [p for p in prompts if p in self._slots]
        for p in hits:
            self._slots.move_to_end(p)
        if not hits:
            return {}
        rows = self._slab.index_select(0, torch.tensor([self._slots[p] for p in hits]))
        return dict(zip(hits, rows))

    def insert(self, prompts: list[str], rows: torch.Tensor) -> None:
        """Cache (P, D) rows for prompts not cached yet, evicting the least recently used when full."""
        if self._slab is None:
            d = rows.shape[1]
            self._slab = torch.empty(self.max_bytes // (4 * d + ENTRY_OVERHEAD_BYTES), d)
        for prompt, row in zip(prompts, rows):
            if not self.capacity:
                return
            slot = len(self._slots) if len(self._slots) < self.capacity else self._slots.popitem(last=False)[1]
            self._slab[slot] = row
            self._slots[prompt] = slot


class TextEncoder:
    """Embeds vocabularies with a text tower (backend.py); a prompt is encoded once and cached (PromptCache).

    The cache is bounded (`max_cache_bytes`, default 64 MiB: 37,449 prompts of a 384-d model, 20,164 of a
    768-d one, i.e. 2,674 / 1,440 classes under the 14 default templates). Without a bound, every distinct
    vocabulary a node was ever given stayed in memory. A vocabulary larger than the bound is still embedded
    exactly; its least recently used prompts are simply encoded again when next needed.

    Thread-safe: the node embeds a new vocabulary in a worker thread while frames run. The lock is held
    while missing prompts are encoded, so two overlapping requests never encode the same prompt twice.
    """

    def __init__(self, tower: TextTower, batch_size: int = 256, max_cache_bytes: int = CACHE_BYTES):
        self.tower = tower
        self.batch_size = batch_size
        self.cache = PromptCache(max_cache_bytes)
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
        unique = list(dict.fromkeys(prompts))
        with self._lock:
            found = self.cache.lookup(unique)
            missing = [p for p in unique if p not in found]
            for start in range(0, len(missing), self.batch_size):
                batch = missing[start:start + self.batch_size]
                rows = self._encode(batch)
                found.update(zip(batch, rows))
                self.cache.insert(batch, rows)
            return found

    def _encode(self, prompts: list[str]) -> torch.Tensor:
        emb = self.tower.encode_prompts(prompts)
        self.prompts_encoded += len(prompts)
        return emb
