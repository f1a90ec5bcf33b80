"""Sharded replay: several inputs in one report, split over shards (--workers processes, torchrun ranks) and
merged exactly: the merged metrics must equal a single process's to the last bit."""
import json
import os
import shutil
import subprocess
import uuid

import numpy as np
import pytest

from ov_panoptic_ros.bridge.problems import Problem, ProblemLog
from ov_panoptic_ros.core.frame import PanopticResult, Vocabulary
from ov_panoptic_ros.data.synthetic_drive import SyntheticSource, write_synthetic_bag
from ov_panoptic_ros.eval.replay import replay
from ov_panoptic_ros.eval.replay_inputs import ReplayJob
from ov_panoptic_ros.eval.replay_shard import run_shard
from ov_panoptic_ros.eval.scoring import Scorer
from ov_panoptic_ros.eval.shard_state import merge
from ov_panoptic_ros.eval.shards import ShardPlan, collect, read_shard, shard_file, write_shard
from ov_panoptic_ros.eval.strided import StridedSource
from cli_run import CLI, cli

SYNTH = dict(frames=7, num_points=1500, num_cameras=1, image_size=(32, 24))


# ------------------------------------------------------------------------------------------------ striding
class Iterable:
    """Frames 0..n-1 that logs a camera problem with every frame and skips (logs, yields nothing) frame 3."""

    classes = None

    def __init__(self, n: int):
        self.n, self.problems, self.position = n, ProblemLog(), -1

    def __iter__(self):
        for i in range(self.n):
            if i == 3:
                self.problems.add(Problem("cloud_bad_layout", "bad", frame=i))
                continue
            self.problems.add(Problem("sync_miss", "late", camera="front", frame=i))
            self.position = i
            yield i, None


class Indexed(Iterable):
    """Random access to every frame (no skips, no problems), as the synthetic world gives."""

    def __iter__(self):
        for i in range(self.n):
            self.position = i
            yield i, None

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.position = i
        return i, None


@pytest.mark.parametrize("world", [1, 2, 3])
def test_strides_cover_every_frame_once_and_count_each_problem_once(world):
    for kind in (Iterable, Indexed):
        frames, skips, cameras = [], 0, 0
        for rank in range(world):
            strided = StridedSource(kind(8), rank, world)
            mine = [(strided.ordinal, item) for item, _ in strided]
            assert all(o % world == rank for o, _ in mine)
            frames += [item for _, item in mine]
            skips += strided.problems.frames_skipped
            cameras += sum(strided.problems.cameras.values())
        expected = [0, 1, 2, 4, 5, 6, 7] if kind is Iterable else list(range(8))
        assert sorted(frames) == expected
        if kind is Iterable:  # what the source left out is counted by one shard, whatever the split
            assert (skips, cameras) == (1, 7)


# ------------------------------------------------------------------------------------------------ exact merge
class NoisyOracle:
    """The synthetic drive's ground truth with a fifth of the labels changed and things' instances cut, per frame
    seeded by its stamp: IoUs everywhere in (0.5, 1), so the IoU sums are floats whose order shows."""

    def __init__(self, source_kwargs: dict):
        source = SyntheticSource(seed=3, **source_kwargs)
        self.vocabulary = Vocabulary(tuple(source.classes.names), stuff=("driveable_surface", "sidewalk", "manmade",
                                                                         "vegetation"))
        self.truth = {f.stamp_ns: t for f, t in source}

    def __call__(self, frame):
        t = self.truth[frame.stamp_ns]
        rng = np.random.default_rng(frame.stamp_ns % 2**32)
        labels = t.labels.astype(np.uint16).copy()
        flip = rng.random(labels.size) < 0.2
        labels[flip] = rng.integers(0, len(self.vocabulary.classes), flip.sum())
        inst = np.where(rng.random(labels.size) < 0.1, t.instance_ids + 1000, t.instance_ids).astype(np.uint32)
        n = frame.num_points
        return PanopticResult(labels, inst, np.ones(n, np.float32), [], self.vocabulary, {"total": 1.0})


def test_any_split_merges_to_the_bits_of_one_pass():
    oracle = NoisyOracle(SYNTH)
    job = ReplayJob(source="synthetic:3", source_options=SYNTH, figure_frames=0)
    whole = run_shard(job, ShardPlan(), pipeline=oracle, progress=False)
    one_pass = whole.scorer.eval.pan_iou.copy()  # PanopticEval's own running sum, before any merge
    reference = whole.scorer.metrics()
    merge(whole.parts, whole.scorer)
    assert whole.scorer.eval.pan_iou.tobytes() == one_pass.tobytes()
    assert whole.scorer.metrics() == reference and reference["n_frames"] == SYNTH["frames"]
    for world in (2, 3):
        shards = [run_shard(job, ShardPlan(r, world), pipeline=oracle, progress=False) for r in range(world)]
        assert [s.parts[0].meta["read"] for s in shards] == [len(range(r, 7, world)) for r in range(world)]
        merged_scorer = Scorer(whole.scorer.classes, oracle.vocabulary, keep_frame_iou=True)
        stats = merge([p for s in reversed(shards) for p in s.parts], merged_scorer)  # any order of arrival
        assert merged_scorer.eval.pan_iou.tobytes() == one_pass.tobytes()
        assert merged_scorer.metrics() == reference
        assert (merged_scorer.confusion == whole.scorer.confusion).all()
        assert stats.processed == 7 and len(stats.latency_ms) == 7


def test_shard_files_round_trip_and_an_earlier_runs_file_is_not_merged(tmp_path):
    oracle = NoisyOracle(SYNTH)
    job = ReplayJob(source="synthetic:3", source_options=SYNTH, figure_frames=0)
    plan = ShardPlan(1, 2, "torchrun", "run-b")
    shard = run_shard(job, plan, pipeline=oracle, progress=False)
    write_shard(tmp_path, ShardPlan(1, 2, "torchrun", "run-a"), shard.meta(), shard.parts)  # an earlier run's
    shards, missing, _ = collect(tmp_path, ShardPlan(0, 2, "torchrun", "run-b"), [], timeout_s=0.6)
    assert shards == {} and missing == {1: "none within 0.6 s"}
    write_shard(tmp_path, plan, shard.meta(), shard.parts)
    meta, parts = read_shard(shard_file(tmp_path, 1, 2))
    assert meta["token"] == "run-b" and [p.meta for p in parts] == [{**p.meta, "rank": 1} for p in shard.parts]
    for name, a in shard.parts[0].arrays.items():
        assert a.dtype == parts[0].arrays[name].dtype and a.tobytes() == parts[0].arrays[name].tobytes(), name


def test_ranks_in_process_give_the_single_report_and_a_missing_rank_a_partial_one(tmp_path):
    oracle = NoisyOracle(SYNTH)
    job = ReplayJob(source="synthetic:3", source_options=SYNTH, figure_frames=0)
    single = replay(job, tmp_path / "single", pipeline=oracle, progress=False)
    assert single["shards"]["count"] == 1 and single["frames"]["in_source"] == 7 and single["partial"] is False

    def rank(r):
        return ShardPlan(r, 2, "torchrun", "run-c")

    alone = replay(job, tmp_path / "alone", rank(0), pipeline=oracle, progress=False, shard_timeout_s=0.6)
    assert alone["partial_reasons"] == ["shard 1 of 2 wrote no state (none within 0.6 s): not in this report: "
                                        "synthetic:3"]
    assert alone["frames"]["processed"] == 4 and alone["shards"]["missing"] == [1]

    assert replay(job, tmp_path / "two", rank(1), pipeline=oracle, progress=False) == {
        "report": False, "rank": 1, "world": 2, "processed": 3, "partial_reasons": []}
    assert not (tmp_path / "two" / "metrics.json").exists()
    two = replay(job, tmp_path / "two", rank(0), pipeline=oracle, progress=False, shard_timeout_s=0.6)
    for key in ("metrics", "frames", "points", "mapping", "gt_classes", "partial_reasons"):
        assert two[key] == single[key], key
    assert two["latency_ms"]["n"] == 7 and [i["processed"] for i in two["inputs"]] == [4, 3]


# ------------------------------------------------------------------------------------------------ the CLI
def test_cli_refuses_what_sharding_cannot_do(tmp_path):
    a, b = tmp_path / "a.mcap", tmp_path / "b.mcap"
    cases = [
        (["replay", str(a), str(b), "--output-bag", str(tmp_path / "p.mcap")], "--output-bag mirrors one input bag"),
        (["replay", str(a), str(b), "--live"], "--live plays one bag"),
        (["replay", str(a), "--source", "world:1:3"], "not both"),
        (["replay"], "name one or more bags"),
        (["replay", "--source", "synthetic:1", "--every", "2"], "--source-option every=N"),
    ]
    for args, expected in cases:
        proc = cli(*args, "--out", str(tmp_path / "o"))
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert expected in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)


@pytest.mark.slow
def test_two_bags_single_workers_and_torchrun_ranks_give_the_same_report(tmp_path):
    """(a) both bags in one process, (b) --workers 2, (c) two ranks as torchrun starts them (rank 0 finds an
    earlier run's file for rank 1 in --out and must wait for the real one): metrics.json equal to the bit."""
    bags = [tmp_path / "a.mcap", tmp_path / "b.mcap"]
    for seed, bag in enumerate(bags):
        write_synthetic_bag(bag, n_frames=3, num_points=2000, num_cameras=2, image_size=(64, 48), seed=5 + seed)
    common = ["replay", *map(str, bags), "--figure-frames", "0", "--no-progress"]
    single = cli(*common, "--out", str(tmp_path / "a"))
    assert single.returncode == 0, single.stdout + single.stderr
    workers = cli(*common, "--out", str(tmp_path / "b"), "--workers", "2")
    assert workers.returncode == 0, workers.stdout + workers.stderr
    assert "shards: 2 of 2 merged (workers, by bags)" in workers.stdout

    out = tmp_path / "c"
    (out / "shards").mkdir(parents=True)
    shutil.copy(shard_file(tmp_path / "b", 1, 2), shard_file(out, 1, 2))  # stale: the --workers run's token
    run_id = str(uuid.uuid4())
    ranks = [subprocess.Popen(CLI + common + ["--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": "2",
                                              "TORCHELASTIC_RUN_ID": run_id})
             for r in (0, 1)]
    results = [p.communicate(timeout=600) for p in ranks]
    assert [p.returncode for p in ranks] == [0, 0], results
    assert "shard 1 of 2: 3 frames; rank 0 writes the report" in results[1][0]

    docs = {k: json.loads((tmp_path / k / "metrics.json").read_text()) for k in "abc"}
    assert docs["a"]["metrics"]["n_frames"] == 6 and docs["a"]["metrics"]["PQ"] > 0
    for k, launcher in (("b", "workers"), ("c", "torchrun")):
        d = docs[k]
        assert d["metrics"] == docs["a"]["metrics"], k  # every number, exactly
        assert d["frames"] == docs["a"]["frames"] and d["frames"]["processed"] == 6 and d["frames"]["in_bag"] == 6
        assert d["points"] == docs["a"]["points"] and d["latency_ms"]["n"] == 6
        assert d["shards"]["count"] == 2 and d["shards"]["launcher"] == launcher and d["shards"]["merged"] == [0, 1]
        assert [(i["input"], i["shard"], i["processed"]) for i in d["inputs"]] == [(str(bags[0]), 0, 3),
                                                                                    (str(bags[1]), 1, 3)]
        assert d["partial"] is False and d["bag"] is None
        for table in ("per_class.csv", "confusion.csv"):
            assert (tmp_path / k / table).read_bytes() == (tmp_path / "a" / table).read_bytes()
    assert docs["a"]["shards"]["count"] == 1 and not (tmp_path / "a" / "shards").exists()
