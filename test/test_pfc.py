"""The PFC baseline's FC-CLIP ensemble on hand-made masks, CLIP voxel features and class scores."""
import torch
import torch.nn.functional as F

from ov_panoptic_ros.core.config import PfcConfig
from ov_panoptic_ros.core.frame import Vocabulary
from ov_panoptic_ros.core.model.pfc import ensemble_probabilities, in_training_vocabulary
from ov_panoptic_ros.data.synthetic import random_class_embeddings

TRAIN = Vocabulary(("car", "Road,street"), ("road",))
RUNTIME = Vocabulary(("automobile,car", "bus", "street"), ("street",))  # car by synonym, street by case


def test_in_training_vocabulary_matches_any_synonym_case_insensitively():
    assert in_training_vocabulary(RUNTIME, TRAIN).tolist() == [True, False, True]


def test_geometric_ensemble_with_base_and_novel_exponents():
    emb = random_class_embeddings(RUNTIME, 8)
    text = emb.embeddings  # rows: automobile, car, bus, street
    # 4 voxels: 0, 1 seen with the bus text direction, 2 seen with the car direction, 3 unseen
    voxel_clip = torch.stack([text[2], text[2], text[1], torch.zeros(8)])
    seen = torch.tensor([True, True, True, False])
    big = 10.0
    masks = torch.tensor([[big, big, -0.1, -big],  # query 0: voxels 0, 1 (voxel 2 at p = 0.48 is left out)
                          [-big, -big, -big, big]])  # query 1: only the unseen voxel: no CLIP
    logits = torch.tensor([[0.4, -2.0, -1.0], [1.0, 0.0, -3.0]])
    cfg = PfcConfig(base_clip_exponent=0.4, novel_clip_exponent=0.8, clip_temperature=0.05)
    probs = ensemble_probabilities(logits, masks, voxel_clip, seen, emb, in_training_vocabulary(RUNTIME, TRAIN), cfg)
    p_clip = (emb.cosine(text[2:3]) / 0.05).softmax(dim=1)[0]  # CLIP pooled in query 0's mask is the bus text
    p_net = logits.sigmoid()
    exponent = torch.tensor([0.4, 0.8, 0.4])
    torch.testing.assert_close(probs[0], p_net[0] ** (1 - exponent) * p_clip ** exponent)
    torch.testing.assert_close(probs[1], p_net[1])  # no seen voxel: the network's own scores
    assert probs[0].argmax() == 1 and p_net[0].argmax() == 0  # CLIP names the novel class the network missed


def test_pooling_is_over_seen_voxels_weighted_equally():
    emb = random_class_embeddings(RUNTIME, 8)
    text = emb.embeddings
    voxel_clip = torch.stack([text[0], text[2], text[2], text[3]])
    seen = torch.tensor([True, True, True, False])
    masks = torch.full((1, 4), 10.0)
    cfg = PfcConfig(base_clip_exponent=1.0, novel_clip_exponent=1.0, clip_temperature=0.01)
    all_base = torch.ones(3, dtype=torch.bool)
    probs = ensemble_probabilities(torch.zeros(1, 3), masks, voxel_clip, seen, emb, all_base, cfg)
    pooled = F.normalize(text[0] + 2 * text[2], dim=0).unsqueeze(0)  # the unseen street voxel is left out
    torch.testing.assert_close(probs, (emb.cosine(pooled) / 0.01).softmax(dim=1))


def test_clip_is_pooled_where_the_mask_probability_is_strictly_above_one_half():
    emb = random_class_embeddings(RUNTIME, 8)
    text = emb.embeddings
    voxel_clip = torch.stack([text[1], text[2], text[3]])  # car, bus, street
    seen = torch.ones(3, dtype=torch.bool)
    masks = torch.tensor([[0.5, 0.0, -0.5]])  # p = 0.62 (in), exactly 0.5 (out), 0.38 (out)
    cfg = PfcConfig(base_clip_exponent=1.0, novel_clip_exponent=1.0, clip_temperature=0.01)
    probs = ensemble_probabilities(torch.zeros(1, 3), masks, voxel_clip, seen, emb, torch.ones(3, dtype=torch.bool), cfg)
    torch.testing.assert_close(probs, (emb.cosine(text[1:2]) / 0.01).softmax(dim=1))  # the car voxel alone
