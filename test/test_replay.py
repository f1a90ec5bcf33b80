"""Offline replay end to end: real bags, the real tiny pipeline, every report file checked."""
import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ov_panoptic_ros.bridge.clouds import read_cloud_fields
from ov_panoptic_ros.core.classes import ClassInfo
from ov_panoptic_ros.core.config import load_config
from ov_panoptic_ros.core.frame import PanopticResult, Vocabulary
from ov_panoptic_ros.data.bag.reader import open_bag
from ov_panoptic_ros.data.bag.typestore import typestore
from ov_panoptic_ros.data.bag.writer import BagWriter
from ov_panoptic_ros.data.synthetic_drive import write_synthetic_bag
from ov_panoptic_ros.eval.errors import ReplayError
from ov_panoptic_ros.eval.replay import replay_offline
from ov_panoptic_ros.eval.scoring import Scorer, load_mapping_file

BAG_KW = dict(num_points=2000, num_cameras=2, image_size=(64, 48), seed=5)
CLI = [str(Path(sys.executable).parent / "ov-panoptic")]
TOP_KEYS = {"schema", "version", "mode", "partial", "partial_reasons", "bag", "config", "pipeline_mode", "vocabulary",
            "gt_classes", "mapping", "metrics", "frames", "points", "latency_ms", "stage_latency_ms", "timing",
            "figures", "figure_errors", "output_bag"}


@pytest.fixture(scope="module")
def pipeline():
    from ov_panoptic_ros.core.pipeline import PanopticPipeline

    return PanopticPipeline(load_config("tiny"))


@pytest.fixture(scope="module")
def bag4(tmp_path_factory):
    path = tmp_path_factory.mktemp("bags") / "drive4.mcap"
    write_synthetic_bag(path, n_frames=4, **BAG_KW)
    return path


def _png_ok(path: Path) -> None:
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.width >= 400 and im.height >= 300, f"{path.name} is only {im.size}"
        px = np.asarray(im.convert("RGB"), dtype=np.float64)
    assert px.std() > 10, f"{path.name} looks blank"
    assert len(np.unique(px.reshape(-1, 3), axis=0)) > 20, f"{path.name} has almost no colors"


def test_offline_replay_writes_a_complete_report(tmp_path, bag4, pipeline):
    out = tmp_path / "report"
    pred_bag = tmp_path / "pred.mcap"
    results = {}
    doc = replay_offline(bag4, "tiny", out, pipeline=pipeline, output_bag=pred_bag, progress=False,
                         on_frame=lambda i, r: results.__setitem__(i, r))

    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(doc))
    assert TOP_KEYS <= set(on_disk)
    assert on_disk["partial"] is False and on_disk["partial_reasons"] == []
    assert on_disk["config"] == "tiny" and on_disk["mode"] == "offline"
    assert on_disk["vocabulary"]["classes"] == list(pipeline.vocabulary.classes)
    frames = on_disk["frames"]
    assert frames["in_bag"] == frames["read"] == frames["processed"] == 4 and frames["skipped"] == 0
    assert sorted(results) == [0, 1, 2, 3]
    assert on_disk["points"]["total"] == sum(r.labels.shape[0] for r in results.values())

    m = on_disk["metrics"]
    for key in ("PQ", "PQ_dagger", "SQ", "RQ", "mIoU"):
        assert 0.0 <= m[key] <= 1.0
    assert set(m["groups"]) >= {"things", "stuff", "base", "novel", "things_novel", "stuff_base"}
    assert m["n_frames"] == 4 and m["n_points"] == on_disk["points"]["total"]
    assert set(m["classes"]) == {c["name"] for c in on_disk["gt_classes"]}

    lat = on_disk["latency_ms"]
    assert lat["n"] == 4 and 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert {"project", "clip_encode", "total"} <= set(on_disk["stage_latency_ms"])
    t = on_disk["timing"]
    assert 0 < t["bag_read_s"] < t["wall_s"] and 0 < t["bag_read_share"] < 1

    rows = list(csv.DictReader(open(out / "per_class.csv")))
    classes = [c["name"] for c in on_disk["gt_classes"]]
    assert [r["class"] for r in rows] == classes
    by_name = {r["class"]: r for r in rows}
    assert by_name["bus"]["base_novel"] == "novel" and by_name["car"]["base_novel"] == "base"
    assert by_name["sidewalk"]["thing_stuff"] == "stuff" and by_name["truck"]["thing_stuff"] == "thing"
    for r in rows:
        assert float(r["PQ"]) == pytest.approx(m["classes"][r["class"]]["PQ"], abs=1e-6)
        assert int(r["TP"]) == m["classes"][r["class"]]["TP"]

    confusion = list(csv.DictReader(open(out / "confusion.csv")))  # GT class x vocabulary entry, in points
    assert [r["class"] for r in confusion] == classes
    assert list(confusion[0])[1:] == [*on_disk["vocabulary"]["classes"], "(unlabeled)"]
    assert sum(int(v) for r in confusion for k, v in r.items() if k != "class") <= m["n_points"]
    assert sum(int(v) for r in confusion for k, v in r.items() if k != "class") > 0

    figs = on_disk["figures"]
    assert on_disk["figure_errors"] == {}
    assert {"pq_per_class.png", "confusion.png"} <= set(figs)
    assert sum(f.startswith("bev_") for f in figs) == 3
    assert sum(f.startswith("camera_") for f in figs) == 6  # 3 frames x 2 cameras
    for f in figs:
        _png_ok(out / f)

    # The predictions bag: one labeled cloud (the pipeline's own labels) and one MarkerArray per frame.
    with open_bag(pred_bag) as reader:
        counts = reader.message_counts
        assert counts["/ov_panoptic/panoptic_points"] == counts["/ov_panoptic/instances"] == 4
        assert counts["/ov_panoptic/ground_truth"] == 4 and counts["/ov_panoptic/vocabulary"] == 1
        assert "/ov_panoptic/vocabulary" in reader.latched_topics
        clouds = [m.decode() for m in reader.messages(["/ov_panoptic/panoptic_points"])]
        markers = [m.decode() for m in reader.messages(["/ov_panoptic/instances"])]
    names = [f.name for f in clouds[0].fields]
    assert names == ["x", "y", "z", "intensity", "label", "instance_id", "score", "rgb"]
    for index, cloud in enumerate(clouds):
        fields = read_cloud_fields(cloud, ["label", "instance_id", "score"])
        np.testing.assert_array_equal(fields["label"], results[index].labels)
        np.testing.assert_array_equal(fields["instance_id"], results[index].instance_ids)
    assert all(ma.markers[0].action == 3 for ma in markers)  # DELETEALL first


def test_max_frames_and_every(tmp_path, bag4, pipeline):
    seen = []
    doc = replay_offline(bag4, "tiny", tmp_path / "a", pipeline=pipeline, every=2, progress=False,
                         figure_frames=0, on_frame=lambda i, r: seen.append(i))
    assert seen == [0, 2] and doc["frames"]["processed"] == 2 and doc["frames"]["every"] == 2
    assert doc["figures"] == ["pq_per_class.png", "confusion.png"]
    seen.clear()
    doc = replay_offline(bag4, "tiny", tmp_path / "b", pipeline=pipeline, max_frames=3, progress=False,
                         figure_frames=1, on_frame=lambda i, r: seen.append(i))
    assert seen == [0, 1, 2] and doc["frames"]["processed"] == 3 and doc["partial"] is False
    assert doc["metrics"]["n_frames"] == 3


def test_interrupt_writes_a_partial_report(tmp_path, bag4, pipeline):
    def interrupt(index, result):
        if index == 1:
            raise KeyboardInterrupt

    out = tmp_path / "r"
    doc = replay_offline(bag4, "tiny", out, pipeline=pipeline, progress=False, on_frame=interrupt)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["partial"] is True and "interrupted" in saved["partial_reasons"][0]
    assert saved["frames"]["processed"] == 2 and saved["metrics"]["n_frames"] == 2
    assert (out / "per_class.csv").exists() and (out / "pq_per_class.png").exists()
    assert doc == saved


# ------------------------------------------------------------------------------------------------
# Scoring sanity: a perfect prediction, through the whole replay path, scores 1.
# ------------------------------------------------------------------------------------------------
class GroundTruthOracle:
    """Predicts the bag's own ground truth, in a vocabulary with other names, synonyms and order.

    Not a model: it exists to prove that mapping + scoring are right independently of any model.
    """

    vocabulary = Vocabulary(("tree", "pedestrian,person", "road", "car", "lorry", "bus", "sidewalk", "building"),
                            stuff=("tree", "road", "sidewalk", "building"))
    gt_to_vocab = {"car": 3, "truck": 4, "bus": 5, "pedestrian": 1, "driveable_surface": 2, "sidewalk": 6,
                   "manmade": 7, "vegetation": 0}

    def __init__(self, bag, classes: ClassInfo, shift_instances: bool = False):
        self.lut = np.array([self.gt_to_vocab[n] for n in classes.names])
        self.shift = shift_instances
        with open_bag(bag) as reader:
            self.gt = {}
            for msg in reader.messages(["/ov_panoptic/ground_truth"]):
                cloud = msg.decode()
                self.gt[cloud.header.stamp.sec * 10**9 + cloud.header.stamp.nanosec] = read_cloud_fields(
                    cloud, ["label", "instance_id"])

    def __call__(self, frame):
        gt = self.gt[frame.stamp_ns]
        inst = gt["instance_id"] * 7 + 3  # other ids, same segments: ids need not agree, only segments
        if self.shift:
            inst = np.roll(inst, len(inst) // 3)
        n = frame.num_points
        return PanopticResult(self.lut[gt["label"]].astype(np.uint16), np.where(gt["instance_id"] > 0, inst, 0),
                              np.ones(n, np.float32), [], self.vocabulary, {"total": 0.0})


def test_perfect_prediction_scores_one(tmp_path, bag4):
    with open_bag(bag4) as reader:
        classes = reader.gt_classes()
    mapping = tmp_path / "map.yaml"
    mapping.write_text("mapping:\n  lorry: truck\n")
    doc = replay_offline(bag4, "tiny", tmp_path / "r", pipeline=GroundTruthOracle(bag4, classes),
                         mapping=mapping, progress=False)
    m = doc["metrics"]
    assert doc["mapping"]["table"] == {"tree": "vegetation", "pedestrian,person": "pedestrian",
                                       "road": "driveable_surface", "car": "car", "lorry": "truck", "bus": "bus",
                                       "sidewalk": "sidewalk", "building": "manmade"}
    present = [n for n in classes.names if n not in m["absent_classes"]]
    assert len(present) >= 6
    for name in present:
        c = m["classes"][name]
        assert c["PQ"] == pytest.approx(1.0) and c["IoU"] == pytest.approx(1.0), name
        assert c["FP"] == 0 and c["FN"] == 0 and c["TP"] > 0
    for name in m["absent_classes"]:
        assert m["classes"][name]["TP"] == 0 and m["classes"][name]["PQ"] == 0.0
    assert m["PQ"] == pytest.approx(len(present) / len(classes.names))
    # Without the lorry -> truck entry every truck point is "unmapped": truck IoU and PQ drop to 0.
    doc = replay_offline(bag4, "tiny", tmp_path / "r2", pipeline=GroundTruthOracle(bag4, classes), progress=False,
                         figure_frames=0)
    assert doc["mapping"]["unmapped_vocabulary"] == ["lorry"]
    assert doc["metrics"]["classes"]["truck"]["IoU"] == 0.0


def test_scorer_detects_instance_errors(bag4):
    """Stuff stays perfect, things lose PQ when instance segments are scrambled: scoring is not trivially 1."""
    with open_bag(bag4) as reader:
        classes = reader.gt_classes()
    oracle = GroundTruthOracle(bag4, classes, shift_instances=True)
    scorer = Scorer(classes, oracle.vocabulary, {"lorry": "truck"})
    for stamp, gt in oracle.gt.items():
        from ov_panoptic_ros.core.frame import Frame

        result = oracle(Frame(points=np.zeros((len(gt["label"]), 3), np.float32), stamp_ns=stamp))
        scorer.add(result.labels, result.instance_ids, gt["label"], gt["instance_id"])
    m = scorer.metrics()
    assert m["groups"]["stuff"]["mIoU"] == pytest.approx(1.0)
    assert m["classes"]["driveable_surface"]["PQ"] == pytest.approx(1.0)
    assert m["groups"]["things"]["PQ"] < 0.9
    assert scorer.confusion.sum() == m["n_points"]


def test_mapping_file_errors(tmp_path, bag4):
    bad = tmp_path / "m.yaml"
    bad.write_text("road: [1, 2]\n")
    with pytest.raises(ReplayError, match="values must be class names"):
        load_mapping_file(bad)
    bad.write_text("road: parking_lot\n")
    with open_bag(bag4) as reader:
        classes = reader.gt_classes()
    with pytest.raises(ReplayError, match="parking_lot"):
        Scorer(classes, GroundTruthOracle.vocabulary, load_mapping_file(bad))
    with pytest.raises(ReplayError, match="nope.yaml"):
        load_mapping_file(tmp_path / "nope.yaml")


# ------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------
def _copy_bag(src: Path, dst: Path, edit, topic: str = "/ov_panoptic/ground_truth") -> None:
    """Copy every message; `edit(index, decoded)` on each message of `topic` returns "drop" to leave it
    out, True when it changed the message, anything else to keep it as it was."""
    ts = typestore()
    with open_bag(src) as reader, BagWriter(dst) as writer:
        index = 0
        for conn in reader.connections:
            writer.add_topic(conn.topic, conn.msgtype, latched=conn.topic in reader.latched_topics)
        for msg in reader.messages():
            raw = msg.raw
            if msg.topic == topic:
                decoded = msg.decode()
                action = edit(index, decoded)
                index += 1
                if action == "drop":
                    continue
                if action is True:
                    raw = ts.serialize_cdr(decoded, msg.msgtype)
            writer.write_raw(msg.topic, msg.log_time_ns, raw)


def test_bad_ground_truth_frames_are_skipped_and_counted(tmp_path, bag4, pipeline):
    def edit(index, cloud):
        if index == 1:  # drop the last 10 points: count no longer matches the cloud
            cloud.width -= 10
            cloud.row_step = cloud.width * cloud.point_step
            cloud.data = cloud.data[: cloud.row_step]
            return True
        if index == 2:  # an unknown class index
            labels = read_cloud_fields(cloud, ["label"])["label"]
            cloud.data = cloud.data.copy()
            offset = next(f.offset for f in cloud.fields if f.name == "label")
            view = np.ndarray(labels.shape, np.uint16, buffer=cloud.data, offset=offset, strides=(cloud.point_step,))
            view[:5] = 42
            return True
        return False

    bad = tmp_path / "bad.mcap"
    _copy_bag(bag4, bad, edit)
    doc = replay_offline(bad, "tiny", tmp_path / "r", pipeline=pipeline, progress=False, figure_frames=0)
    f = doc["frames"]
    assert f["processed"] == 2 and f["skipped"] == 2
    assert f["skipped_by_reason"] == {"ground_truth_point_count": 1, "ground_truth_unknown_class": 1}
    details = {e["frame"]: e["detail"] for e in f["skipped_examples"]}
    assert "1990 points but the cloud has 2000" in details[1]
    assert "[42]" in details[2]
    assert doc["metrics"]["n_frames"] == 2 and doc["partial"] is False


def test_camera_problems_leave_the_camera_out_and_are_counted(tmp_path, pipeline):
    """Compressed images; one corrupt JPEG and one missing image: the frames still run, without that camera."""
    src = tmp_path / "c.mcap"
    write_synthetic_bag(src, n_frames=3, compressed=True, **BAG_KW)
    step1, step2 = tmp_path / "s1.mcap", tmp_path / "s2.mcap"

    def corrupt(index, img):
        if index == 1:
            img.data = np.frombuffer(b"\xff\xd8 not a jpeg", np.uint8)
            return True

    _copy_bag(src, step1, corrupt, topic="/cam_front/image_raw/compressed")
    _copy_bag(step1, step2, lambda index, img: "drop" if index == 2 else None, topic="/cam_back/image_raw/compressed")
    doc = replay_offline(step2, "tiny", tmp_path / "r", pipeline=pipeline, progress=False, figure_frames=3)
    f = doc["frames"]
    assert f["processed"] == 3 and f["skipped"] == 0 and f["without_cameras"] == 0
    assert f["camera_issues"] == {"cam_front: image_corrupt": 1, "cam_back: sync_miss": 1}
    cams = sorted(x for x in doc["figures"] if x.startswith("camera_"))
    assert "camera_frame00001_cam_front.png" not in cams and "camera_frame00001_cam_back.png" in cams


def test_truncated_bag_gives_a_partial_report_with_the_good_frames(tmp_path, pipeline):
    path = tmp_path / "long.mcap"
    write_synthetic_bag(path, n_frames=8, num_points=6000, image_size=(160, 120), seed=2)
    data = path.read_bytes()
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    doc = replay_offline(cut, "tiny", tmp_path / "r", pipeline=pipeline, progress=False, figure_frames=1)
    assert doc["partial"] is True and "truncated" in doc["partial_reasons"][0]
    assert doc["frames"]["processed"] >= 2 and doc["metrics"]["n_frames"] == doc["frames"]["processed"]
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["partial"] is True


def test_missing_ground_truth_is_a_clean_error_when_required(tmp_path, pipeline):
    """ground_truth=True (scoring or nothing); without it, such a bag replays unscored (test_replay_no_truth.py)."""
    from ov_panoptic_ros.data.bag.errors import MissingTopicsError

    path = tmp_path / "nogt.db3"
    write_synthetic_bag(path, n_frames=1, ground_truth=False, **BAG_KW)
    with pytest.raises(MissingTopicsError, match="/ov_panoptic/ground_truth"):
        replay_offline(path, "tiny", tmp_path / "r", pipeline=pipeline, progress=False, ground_truth=True)
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------------------------------------
# The CLI: clean errors and exit codes (no traceback), SIGINT
# ------------------------------------------------------------------------------------------------
def _cli(*args, timeout=300):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=timeout)


def test_cli_errors_are_clean(tmp_path, bag4):
    no_checkpoint = tmp_path / "with_checkpoint.yaml"
    no_checkpoint.write_text("preset: tiny\ncheckpoint: /no/such/model.pt\n")
    garbage = tmp_path / "g.mcap"
    garbage.write_bytes(os.urandom(4096))
    cases = [
        (["replay", str(tmp_path / "missing.mcap")], "does not exist"),
        (["replay", str(garbage)], "cannot read bag"),
        (["replay", str(bag4), "--lidar-topic", "/velodyne_points"], "/velodyne_points"),
        (["replay", str(bag4), "--config", "no_such_preset"], "neither a preset"),
        (["play", str(tmp_path / "missing.mcap")], "does not exist"),
        (["replay", str(bag4), "--config", "nuscenes"], "CUDA is not available on this machine; set device: cpu"),
        (["replay", str(bag4), "--config", str(no_checkpoint)], "/no/such/model.pt"),
        (["config", "no_such_preset"], "neither a preset"),
        (["bench", "--only", "nothing"], "unknown benchmark"),
    ]
    for args, expected in cases:
        proc = _cli(*args, "--out", str(tmp_path / "o")) if args[0] == "replay" else _cli(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert expected in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)  # what, why, what to do


def test_cli_debug_shows_the_traceback(tmp_path):
    for flags in (["--debug", "replay"], ["replay", "--debug"]):  # before or after the command
        proc = _cli(*flags, str(tmp_path / "missing.mcap"))
        assert proc.returncode == 2 and "Traceback" in proc.stderr and "does not exist" in proc.stderr


@pytest.mark.slow
def test_cli_replay_and_sigint(tmp_path):
    """The real command end to end; SIGINT mid-run still leaves a partial report and exits 130.

    The bag is long (small frames, cheap to write) so the replay is still running when the signal lands,
    however fast the machine; stderr is read on a thread so the progress bar is seen as it is drawn."""
    n = 400
    bag = tmp_path / "drive.mcap"
    write_synthetic_bag(bag, n_frames=n, **BAG_KW)
    out = tmp_path / "report"
    proc = subprocess.Popen(CLI + ["replay", str(bag), "--out", str(out), "--figure-frames", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: proc.stderr.read(1), "")), daemon=True)
    reader.start()
    progress = re.compile(rf"\b([0-9]+)/{n}\b")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        done = [int(m) for m in progress.findall("".join(chunks))]
        if done and max(done) >= 2:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout = proc.stdout.read()  # stderr belongs to the reader thread: communicate() would race it
    proc.wait(timeout=120)
    reader.join(timeout=30)
    stderr = "".join(chunks)
    assert proc.returncode == 130, stdout + stderr
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["partial"] is True and "interrupted" in doc["partial_reasons"][0]
    assert 2 <= doc["frames"]["processed"] < n
    assert "PARTIAL: interrupted" in stderr and "Traceback" not in stderr
    assert "PQ " in stdout


def test_garbage_mid_bag_keeps_the_frames_before_it(tmp_path, pipeline):
    from test_bag import damage_chunk

    path = tmp_path / "g.mcap"
    write_synthetic_bag(path, n_frames=8, num_points=6000, image_size=(160, 120), seed=4)
    damage_chunk(path, 2)
    doc = replay_offline(path, "tiny", tmp_path / "r", pipeline=pipeline, progress=False, figure_frames=0)
    assert doc["partial"] is True and "damaged" in doc["partial_reasons"][0]
    assert 2 <= doc["frames"]["processed"] < 8 and doc["metrics"]["n_frames"] == doc["frames"]["processed"]
