"""The trainer's parts on their own: config, training order, prefetching, schedule, ground-truth mapping."""
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from ov_panoptic_ros.core.classes import ClassInfo, nuscenes_classes
from ov_panoptic_ros.core.config import ConfigError, VocabularyConfig, load_config
from ov_panoptic_ros.core.frame import UNLABELED
from ov_panoptic_ros.core.model.targets import ClassSplit
from ov_panoptic_ros.data.synthetic_drive import synthetic_classes
from ov_panoptic_ros.train.config import ScheduleConfig, load_train_config
from ov_panoptic_ros.train.data import FrameOrder, TrainingDataError
from ov_panoptic_ros.train.labels import split_classes, vocabulary_lut
from ov_panoptic_ros.train.optim import lr_factor
from ov_panoptic_ros.train.prefetch import Prefetcher


# ------------------------------------------------------------------------------------------------ config
def test_the_shipped_config_loads(tmp_path):
    pipeline, train = load_train_config("street", {"steps": 7})
    assert pipeline.name == "tiny" and train.steps == 7 and train.data.spec == "synthetic:0"
    assert train.val.spec == "synthetic:1000" and train.schedule.kind == "cosine"


def _write(tmp_path, text: str):
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", [
    ("preset: tiny\ntrain: {stepz: 3}\n", r"cfg.yaml: train: unknown key\(s\) \['stepz'\]"),
    ("preset: tiny\ntrain: {optimizer: {learning_rate: 1}}\n",
     r"train.optimizer: unknown key\(s\) \['learning_rate'\]"),
    ("preset: tiny\nheed: {}\ntrain: {}\n", r"cfg.yaml: config: unknown key\(s\) \['heed'\]"),
    ("preset: tiny\n", r"needs a `train:` mapping"),
    ("preset: tiny\ntrain: {schedule: {kind: linear}}\n", r"train.schedule.kind 'linear'"),
    ("preset: tiny\ntrain: {steps: 0}\n", r"train.steps must be a positive integer"),
    ("preset: tiny\ntrain: {data: {spec: synthetic}, val: {spec: 'synthetic:0'}}\n",
     r"train.val.spec 'synthetic:0' shares data with the training source 'synthetic'"),
    ("preset: tiny\ntrain: {data: {spec: 'world:100:120'}, val: {spec: 'world:119:121'}}\n",
     r"train.val.spec 'world:119:121' shares data with the training source 'world:100:120'"),
    ("preset: tiny\ntrain: {data: {spec: 'synthetic:3', options: [1]}}\n", r"source options must be a mapping"),
])
def test_bad_configs_name_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_train_config(_write(tmp_path, text))


def test_a_pipeline_file_as_preset_and_held_out_seeds(tmp_path):
    (tmp_path / "pipe.yaml").write_text("preset: tiny\nhead: {num_queries: 4}\n")
    path = _write(tmp_path, "preset: pipe.yaml\ntrain: {data: {spec: 'synthetic:1'}, val: {spec: 'synthetic:2'}}\n")
    pipeline, train = load_train_config(path)
    assert pipeline.head.num_queries == 4 and train.val.spec == "synthetic:2"


# ------------------------------------------------------------------------------------------------ order
class ListSource:
    """Frames 0..n-1 as plain tokens; `indexed` adds __getitem__, `reads` counts the frames read."""

    def __init__(self, n: int, indexed: bool):
        self.n, self.reads = n, 0
        if indexed:
            self.__class__ = IndexedListSource

    def __len__(self):
        return self.n

    def _item(self, i):
        self.reads += 1
        return SimpleNamespace(i=i, stamp_ns=i), "truth"

    def __iter__(self):
        return (self._item(i) for i in range(self.n))


class IndexedListSource(ListSource):
    def __getitem__(self, i):
        return self._item(i)


def _take(order: FrameOrder, start: int, count: int) -> list[tuple[int, int]]:
    frames = order.frames(start)
    return [(g, frame.i) for g, frame, _ in (next(frames) for _ in range(count))]


def test_an_indexed_source_is_shuffled_per_epoch_by_a_seeded_permutation():
    order = [i for _, i in _take(FrameOrder(ListSource(5, indexed=True), seed=3), 0, 15)]
    epochs = [order[k:k + 5] for k in (0, 5, 10)]
    assert all(sorted(e) == list(range(5)) for e in epochs)
    assert len({tuple(e) for e in epochs}) == 3  # every epoch its own order (5! orders: a clash is unlikely)
    assert order == [i for _, i in _take(FrameOrder(ListSource(5, indexed=True), seed=3), 0, 15)]
    assert order != [i for _, i in _take(FrameOrder(ListSource(5, indexed=True), seed=4), 0, 15)]


def test_an_iterable_source_is_read_in_order():
    assert [i for _, i in _take(FrameOrder(ListSource(3, indexed=False)), 0, 7)] == [0, 1, 2, 0, 1, 2, 0]


@pytest.mark.parametrize("indexed", [True, False])
def test_ranks_take_every_world_size_th_frame_and_resume_continues_exactly(indexed):
    whole = _take(FrameOrder(ListSource(5, indexed), seed=1), 0, 24)
    rank0 = _take(FrameOrder(ListSource(5, indexed), seed=1, rank=0, world=2), 0, 12)
    rank1 = _take(FrameOrder(ListSource(5, indexed), seed=1, rank=1, world=2), 0, 12)
    assert sorted(rank0 + rank1) == whole and all(g % 2 == 0 for g, _ in rank0)
    # A resume at position 13 (epoch 2, frame 3), with the epoch length from the checkpoint or not:
    for epoch_frames in (5, None):
        source = ListSource(5, indexed)
        resumed = _take(FrameOrder(source, seed=1, epoch_frames=epoch_frames), 13, 11)
        assert resumed == whole[13:]
        if not indexed and epoch_frames:
            assert source.reads == 3 + 11  # epoch 2 is read from its start (3 skipped), no earlier epoch


def test_a_cache_reads_each_frame_once():
    for indexed in (True, False):
        source = ListSource(4, indexed)
        order = FrameOrder(source, seed=0, cache_frames=4)
        _take(order, 0, 12)
        assert source.reads == 4
        small = ListSource(4, indexed)
        _take(FrameOrder(small, seed=0, cache_frames=2), 0, 12)
        assert small.reads == (4 + 2 + 2 if indexed else 12)  # two frames cached; an iterable needs its whole epoch


def test_frames_without_ground_truth_or_no_frames_are_errors():
    empty = ListSource(0, indexed=False)
    with pytest.raises(TrainingDataError, match="yields no frames"):
        next(FrameOrder(empty).frames(0))
    source = ListSource(2, indexed=True)
    source._item = lambda i: (SimpleNamespace(i=i, stamp_ns=7), None)
    with pytest.raises(TrainingDataError, match="position 0 .stamp 7. has no ground truth"):
        next(FrameOrder(source).frames(0))


# ------------------------------------------------------------------------------------------------ prefetch
def test_prefetch_keeps_order_measures_waiting_and_passes_errors_on():
    def slow(items):
        for i in items:
            time.sleep(0.02)
            yield (i,)

    data = Prefetcher(slow(range(5)), lambda i: i * 10, depth=2)
    assert list(data) == [0, 10, 20, 30, 40] and data.wait_s > 0.05
    data.close()

    def broken():
        yield (1,)
        raise ValueError("frame 2 is broken")

    data = Prefetcher(broken(), lambda i: i, depth=2)
    assert next(data) == 1
    with pytest.raises(ValueError, match="frame 2 is broken"):
        next(data)
    data.close()


def test_closing_stops_a_worker_blocked_on_a_full_queue():
    data = Prefetcher(((i,) for i in range(10**9)), lambda i: i, depth=1)
    time.sleep(0.05)
    data.close()
    assert not any(t.name == "train-data" and t.is_alive() for t in threading.enumerate())


# ------------------------------------------------------------------------------------------------ schedule
def test_warmup_then_multistep_or_cosine():
    multi = ScheduleConfig(kind="multistep", milestones=(10, 20), gamma=0.5, warmup_steps=4)
    assert [lr_factor(s, multi, 30) for s in (0, 1, 3, 4, 9, 10, 19, 20, 29)] == \
        [0.25, 0.5, 1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    cosine = ScheduleConfig(kind="cosine", warmup_steps=2, final_lr_ratio=0.1)
    assert lr_factor(1, cosine, 13) == 1.0 and lr_factor(2, cosine, 13) == pytest.approx(1.0)
    assert lr_factor(7, cosine, 13) == pytest.approx(0.55) and lr_factor(12, cosine, 13) == pytest.approx(0.1)


# ------------------------------------------------------------------------------------------------ labels
def test_ground_truth_maps_onto_the_vocabulary_through_synonyms_and_common_names():
    config = load_config("tiny")  # road,driveable surface / building,manmade structure / pedestrian,person ...
    split = ClassSplit.from_config(config.vocabulary)
    street = synthetic_classes()
    lut = vocabulary_lut(street, split, "train.data.spec 'synthetic'")
    assert [split.dataset.names[j] for j in lut] == ["car", "truck", "bus", "pedestrian", "road", "sidewalk",
                                                     "building", "vegetation"]
    novel = split_classes(street, lut, split)
    assert [n for n, v in zip(novel.names, novel.is_novel) if v] == ["bus", "pedestrian", "vegetation"]


def test_unmapped_ambiguous_or_mistyped_classes_are_config_errors():
    split = ClassSplit.from_config(VocabularyConfig(classes=("car", "road,driveable surface", "tree"),
                                                    stuff=("road", "tree")))
    with pytest.raises(ConfigError, match=r"train.data.spec 'x': ground-truth class\(es\) \['truck', 'bus', "
                                          r"'pedestrian', 'sidewalk', 'manmade'\] map onto no class"):
        vocabulary_lut(synthetic_classes(), split, "train.data.spec 'x'")
    things = ClassSplit.from_config(VocabularyConfig(classes=("car", "road"), stuff=("car",)))
    gt = ClassInfo.from_names(["car", "road"], things=["car"])
    with pytest.raises(ConfigError, match=r"\['car', 'road'\] are things where vocabulary.stuff says stuff"):
        vocabulary_lut(gt, things, "w")
    twice = ClassSplit.from_config(VocabularyConfig(classes=("road", "street"), stuff=("road", "street")))
    with pytest.raises(ConfigError, match="entries 'road' and 'street' both name the ground-truth class 'driveable_"):
        vocabulary_lut(ClassInfo.from_names(["driveable_surface"]), twice, "w")


def test_ignored_ground_truth_classes_need_no_vocabulary_entry():
    names = ("car", "pedestrian", "driveable_surface", "manmade", "vegetation", "barrier", "bicycle", "bus",
             "construction_vehicle", "motorcycle", "traffic_cone", "trailer", "truck", "other_flat", "sidewalk",
             "terrain")
    stuff = ("driveable_surface", "manmade", "vegetation", "other_flat", "sidewalk", "terrain")
    split = ClassSplit.from_config(VocabularyConfig(classes=names, stuff=stuff))
    lut = vocabulary_lut(nuscenes_classes(), split, "w")
    assert lut[0] == UNLABELED and np.all(lut[1:] != UNLABELED)  # 'noise' is ignored
