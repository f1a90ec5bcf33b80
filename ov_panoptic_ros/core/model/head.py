"""P3Former / Mask2Former-style query decoder with an open-vocabulary classifier.

Queries (the paper's sec. 3): `num_queries` learnable queries, matched to ground truth by Hungarian
assignment in training and free to take any class, then one learned query per base stuff class of the
training vocabulary, supervised to that class for good. Both are parameters: the network's shape depends
on the training vocabulary's stuff count, never on the run-time vocabulary. At inference every query is
scored against the current vocabulary, so the learnable queries can name novel things and novel stuff.

Each decoder layer: masked cross-attention over voxel features (a query only attends to voxels its
previous mask prediction puts above 0.5; a query whose mask is empty attends everywhere, as in
Mask2Former), then self-attention among queries, then an FFN, each with a residual and a post-LayerNorm.

Predictions (shared heads, made from the initial queries and after every layer, for deep supervision):
mask logits = mask embedding . voxel mask features (with head.position_aware, P3Former's PA-Seg: the voxel
position embedding of position.py is added to the voxel features first, and the mask logits gain a
position-only term, position mask embedding . position embedding, which the loss also supervises alone);
class embedding in CLIP space (dim = text
embedding dim); class logits = exp(logit_scale) * cosine(class embedding, text) - no_object_bias,
with `ClassEmbeddings.cosine` (max over synonyms), so any vocabulary size works. Class probabilities
are per-class sigmoids (P3Former's focal classifier): a class's score does not depend on how many
other classes the vocabulary has. `no_object_bias` is the learned scalar 'no object' threshold:
a query is 'no object' when no class's scaled cosine clears it.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ov_panoptic_ros.core.config import HeadConfig
from ov_panoptic_ros.core.model.position import PositionEmbedding
from ov_panoptic_ros.core.vision.text import ClassEmbeddings

CLIP_LOGIT_SCALE_INIT = math.log(1 / 0.07)  # CLIP's initial temperature
MAX_LOGIT_SCALE = math.log(100.0)  # CLIP's clamp
NO_OBJECT_PRIOR = 0.01  # initial class probability of an unaligned query (focal-loss prior)
MASK_THRESHOLD = 0.5


def _mlp(dims: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class DecoderLayer(nn.Module):
    """Masked cross-attention -> self-attention -> FFN (post-norm residuals)."""

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        d = cfg.hidden_dim
        self.cross_attn = nn.MultiheadAttention(d, cfg.num_heads, batch_first=True)
        self.cross_norm = nn.LayerNorm(d)
        self.self_attn = nn.MultiheadAttention(d, cfg.num_heads, batch_first=True)
        self.self_norm = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, cfg.ffn_dim), nn.ReLU(inplace=True), nn.Linear(cfg.ffn_dim, d))
        self.ffn_norm = nn.LayerNorm(d)

    def forward(self, queries: torch.Tensor, voxels: torch.Tensor, blocked: torch.Tensor) -> torch.Tensor:
        """(Q, d) queries, (V, d) voxel features, (Q, V) bool True where attention is not allowed."""
        q, kv = queries.unsqueeze(0), voxels.unsqueeze(0)
        q = self.cross_norm(q + self.cross_attn(q, kv, kv, attn_mask=blocked, need_weights=False)[0])
        q = self.self_norm(q + self.self_attn(q, q, q, need_weights=False)[0])
        q = self.ffn_norm(q + self.ffn(q))
        return q.squeeze(0)


def attention_block_mask(mask_logits: torch.Tensor) -> torch.Tensor:
    """Block voxels outside the predicted mask; a query with an empty mask may attend everywhere."""
    blocked = mask_logits.detach().sigmoid() < MASK_THRESHOLD
    empty = blocked.all(dim=1, keepdim=True)
    return blocked & ~empty


class QueryHead(nn.Module):
    def __init__(self, cfg: HeadConfig, clip_dim: int, num_stuff_queries: int):
        super().__init__()
        if cfg.hidden_dim % cfg.num_heads:
            raise ValueError(f"head.hidden_dim {cfg.hidden_dim} is not divisible by head.num_heads {cfg.num_heads}")
        if cfg.num_queries < 1 or cfg.num_layers < 1:
            raise ValueError(
                f"head needs num_queries >= 1 and num_layers >= 1, got {cfg.num_queries} and {cfg.num_layers}")
        d = cfg.hidden_dim
        self.num_learned_queries = cfg.num_queries
        self.queries = nn.Parameter(torch.randn(cfg.num_queries, d) * 0.02)
        self.stuff_queries = nn.Parameter(torch.randn(num_stuff_queries, d) * 0.02)
        self.query_norm = nn.LayerNorm(d)
        self.mask_features = nn.Linear(d, d)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.num_layers))
        self.pred_norm = nn.LayerNorm(d)
        self.mask_embed = _mlp([d, d, d])
        self.class_embed = _mlp([d, d, clip_dim])
        self.logit_scale = nn.Parameter(torch.tensor(CLIP_LOGIT_SCALE_INIT))
        self.no_object_bias = nn.Parameter(torch.tensor(math.log((1 - NO_OBJECT_PRIOR) / NO_OBJECT_PRIOR)))
        self.position = PositionEmbedding(d) if cfg.position_aware else None
        self.position_mask_embed = _mlp([d, d, d]) if cfg.position_aware else None

    def predict(self, queries: torch.Tensor, mask_features: torch.Tensor, class_emb: ClassEmbeddings,
                position: torch.Tensor | None = None):
        """Mask logits (Q, V), class embedding (Q, D), class logits (Q, C) and the position-only mask term (Q, V)
        or None, from the current queries."""
        q = self.pred_norm(queries)
        mask_logits = self.mask_embed(q) @ mask_features.T
        position_logits = None
        if position is not None:
            position_logits = self.position_mask_embed(q) @ position.T
            mask_logits = mask_logits + position_logits
        embedding = self.class_embed(q)
        scale = self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()
        class_logits = scale * class_emb.cosine(embedding) - self.no_object_bias
        return mask_logits, embedding, class_logits, position_logits

    def forward(self, voxel_features: torch.Tensor, class_emb: ClassEmbeddings, positions: torch.Tensor | None = None,
                all_layers: bool = True) -> dict:
        """Predictions from the initial queries and after each layer (last layer last), for (V, d) voxel features
        and (V, 3) voxel positions normalised to about [-1, 1] (needed with head.position_aware).

        `all_layers=False` keeps only the last layer's predictions (inference); every layer's masks are
        still computed because the next layer's attention needs them.
        """
        position = None
        if self.position is not None:
            if positions is None:
                raise ValueError("head.position_aware needs the voxel positions")
            position = self.position(positions)
            voxel_features = voxel_features + position
        queries = self.query_norm(torch.cat([self.queries, self.stuff_queries], dim=0))
        mask_features = self.mask_features(voxel_features)
        preds = [self.predict(queries, mask_features, class_emb, position)]
        for layer in self.layers:
            queries = layer(queries, voxel_features, attention_block_mask(preds[-1][0]))
            preds.append(self.predict(queries, mask_features, class_emb, position))
        if not all_layers:
            preds = preds[-1:]
        out = {
            "mask_logits": [p[0] for p in preds],
            "class_embed": [p[1] for p in preds],
            "class_logits": [p[2] for p in preds],
        }
        if position is not None:
            out["position_mask_logits"] = [p[3] for p in preds]
        return out
