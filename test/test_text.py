"""Text embeddings: template ensembling against direct encode_text, the prompt cache, synonyms, threads."""
import threading

import pytest
import torch
import torch.nn.functional as F

from ov_panoptic_ros.core.config import DEFAULT_TEMPLATES, ClipConfig
from ov_panoptic_ros.core.frame import Vocabulary
from ov_panoptic_ros.core.vision.open_clip_dense import DenseClipEncoder
from ov_panoptic_ros.core.vision.text import ENTRY_OVERHEAD_BYTES, TextEncoder

TEMPLATES = ("a photo of a {}.", "there is a {} in the scene.", "a {} on the road.")


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return DenseClipEncoder(ClipConfig(model_name="ov-tiny-vit"), torch.device("cpu"))


def direct_embedding(encoder, name, templates):
    """What ensembling should give: mean of unit template embeddings, re-normalized."""
    with torch.no_grad():
        tokens = encoder.tokenizer([t.replace("{}", name) for t in templates])
        per_template = F.normalize(encoder.model.encode_text(tokens), dim=-1)
    return F.normalize(per_template.mean(dim=0), dim=0)


def test_ensembling_matches_direct_encode_text(encoder):
    vocab = Vocabulary(("car", "pedestrian, person", "road"), stuff=("road",), templates=TEMPLATES)
    emb = TextEncoder(encoder).embed(vocab)
    names = ["car", "pedestrian", "person", "road"]
    assert emb.embeddings.shape == (4, 64) and emb.embeddings.device.type == "cpu"
    assert emb.synonym_class.tolist() == [0, 1, 1, 2]
    assert emb.is_stuff.tolist() == [False, False, True]
    assert emb.model_id == encoder.model_id and emb.vocabulary is vocab
    for row, name in enumerate(names):
        assert torch.allclose(emb.embeddings[row], direct_embedding(encoder, name, TEMPLATES), atol=1e-6)
    assert not torch.allclose(emb.embeddings[1], emb.embeddings[2])  # synonyms keep their own rows


def test_empty_templates_use_the_default_ensemble(encoder):
    text = TextEncoder(encoder)
    emb = text.embed(Vocabulary(("truck",)))
    assert text.prompts_encoded == len(DEFAULT_TEMPLATES)
    assert torch.allclose(emb.embeddings[0], direct_embedding(encoder, "truck", DEFAULT_TEMPLATES), atol=1e-6)


def test_cache_encodes_only_new_prompts(encoder):
    text = TextEncoder(encoder)
    first = text.embed(Vocabulary(("car", "truck"), templates=TEMPLATES[:2]))
    assert text.prompts_encoded == 4
    second = text.embed(Vocabulary(("bus", "car"), templates=TEMPLATES[:2]))
    assert text.prompts_encoded == 6  # only "bus" x 2 templates were new
    text.embed(Vocabulary(("car", "truck"), templates=TEMPLATES[:2]))
    assert text.prompts_encoded == 6
    assert torch.equal(second.embeddings[1], first.embeddings[0])  # cached "car" gives the same row
    text.embed(Vocabulary(("car",), templates=TEMPLATES))  # a new template is a new prompt
    assert text.prompts_encoded == 7


def test_class_score_is_max_over_synonyms(encoder):
    emb = TextEncoder(encoder).embed(Vocabulary(("car", "pedestrian,person,walker"), templates=TEMPLATES))
    features = emb.embeddings[[3, 0]]  # exactly "walker" and exactly "car"
    scores = emb.cosine(features)
    assert scores.shape == (2, 2)
    assert scores[0, 1].item() == pytest.approx(1.0, abs=1e-5)  # "walker" wins for class 1
    assert scores[1, 0].item() == pytest.approx(1.0, abs=1e-5)
    assert scores.argmax(dim=1).tolist() == [1, 0]


def test_concurrent_embeds_agree_and_never_encode_a_prompt_twice(encoder):
    text = TextEncoder(encoder, batch_size=3)
    vocabularies = [Vocabulary(tuple(names), templates=TEMPLATES) for names in
                    (["car", "truck", "bus"], ["bus", "tree", "car"], ["road", "car"], ["truck", "tree", "sign"])]
    results: dict[int, torch.Tensor] = {}
    errors = []
    start = threading.Barrier(len(vocabularies) * 2)

    def worker(i, vocab):
        try:
            start.wait()
            results[i] = text.embed(vocab).embeddings
        except Exception as e:  # surfaced below: a thread's exception must fail the test
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i, vocabularies[i % len(vocabularies)]))
               for i in range(len(vocabularies) * 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and len(results) == len(threads)
    unique_names = {"car", "truck", "bus", "tree", "road", "sign"}
    assert text.prompts_encoded == len(unique_names) * len(TEMPLATES)
    sequential = TextEncoder(encoder)
    for i, emb in results.items():
        expected = sequential.embed(vocabularies[i % len(vocabularies)]).embeddings
        assert torch.allclose(emb, expected, atol=1e-6)


# ---- the bounded prompt cache (issue 10, fuzz defect 4) ----------------------------------------------

ENTRY = 64 * 4 + ENTRY_OVERHEAD_BYTES  # one cached 64-d prompt, as the bound counts it


def test_distinct_large_vocabularies_never_grow_the_cache_past_its_bound(encoder):
    bound = 100 * ENTRY
    text = TextEncoder(encoder, batch_size=64, max_cache_bytes=bound)
    reference = TextEncoder(encoder)  # unbounded for these sizes: the embeddings a bound must not change
    for round_ in range(4):  # each vocabulary: 50 classes x 3 templates = 150 prompts, more than the bound holds
        vocab = Vocabulary(tuple(f"thing{round_}x{i}" for i in range(50)), templates=TEMPLATES)
        emb = text.embed(vocab)
        assert text.cache.nbytes <= bound and len(text.cache) == text.cache.capacity == 100
        assert torch.allclose(emb.embeddings, reference.embed(vocab).embeddings, atol=1e-6)
    assert text.prompts_encoded == 4 * 150


def test_cache_evicts_the_least_recently_used_prompts(encoder):
    text = TextEncoder(encoder, max_cache_bytes=12 * ENTRY)
    a = Vocabulary(("car", "truck"), templates=TEMPLATES)  # 6 prompts each
    b = Vocabulary(("bus", "tree"), templates=TEMPLATES)
    text.embed(a)
    text.embed(b)
    text.embed(a)  # a is now the most recently used
    assert text.prompts_encoded == 12
    text.embed(Vocabulary(("road",), templates=TEMPLATES))  # 3 new prompts evict 3 of b's, none of a's
    text.embed(a)
    assert text.prompts_encoded == 15
    text.embed(b)  # b's 3 cached prompts are touched first, then its 3 evicted ones push out "road"
    assert text.prompts_encoded == 18
    text.embed(a)
    assert text.prompts_encoded == 18
    text.embed(Vocabulary(("road",), templates=TEMPLATES))
    assert text.prompts_encoded == 21
    assert len(text.cache) == 12 and text.cache.nbytes == 12 * ENTRY


def test_returned_rows_survive_the_eviction_of_their_slot(encoder):
    text = TextEncoder(encoder, max_cache_bytes=3 * ENTRY)
    held = text.prompt_embeddings(["a car", "a bus", "a tree"])
    again = text.prompt_embeddings(["a car", "a bus", "a tree"])  # cache hits
    kept = {p: row.clone() for p, row in again.items()}
    text.prompt_embeddings(["a road", "a sign", "a wall"])  # overwrites every slot
    assert text.prompts_encoded == 6
    for p in kept:
        assert torch.equal(again[p], kept[p]) and torch.equal(held[p], kept[p])


def test_a_zero_bound_turns_the_cache_off(encoder):
    text = TextEncoder(encoder, max_cache_bytes=0)
    vocab = Vocabulary(("car", "truck"), templates=TEMPLATES)
    first, second = text.embed(vocab), text.embed(vocab)
    assert text.prompts_encoded == 12 and len(text.cache) == 0 and text.cache.nbytes == 0
    assert torch.equal(first.embeddings, second.embeddings)
