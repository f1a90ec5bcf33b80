"""The SemanticKITTI FrameSource (data/semantickitti/) on a tiny sequence written in the real on-disk format:
points and remission, the learning map and instance ids, image_2's placement against P2 @ Tr, the preset's
base/novel split, and bad input (errors naming the path; a bad label file or a missing image counted)."""
import itertools
import re

import numpy as np
import pytest
import torch
from random_access import (check_indexed_as_iterated, check_shards_build_only_their_frames,
                           check_training_order_shuffles)

from ov_panoptic_ros.core.classes import SEMANTICKITTI_NAMES, SEMANTICKITTI_NOVEL, semantickitti_classes
from ov_panoptic_ros.core.config import ProjectionConfig, load_config
from ov_panoptic_ros.core.geometry import project_points
from ov_panoptic_ros.data.factory import open_source
from ov_panoptic_ros.data.semantickitti import SemanticKittiError, SemanticKittiSource
from ov_panoptic_ros.data.source import FrameUnavailable
from ov_panoptic_ros.eval.strided import StridedSource
from ov_panoptic_ros.testing.semantickitti_tiny import (HEIGHT, KNOWN_POINT, N_POINTS, P2_TEXT, RAW, TR_TEXT, WIDTH,
                                                        calib_text, write_sequence)
from ov_panoptic_ros.train.data import FrameOrder


@pytest.fixture
def root(tmp_path):
    write_sequence(tmp_path, "08")
    write_sequence(tmp_path, "11", labels=False)
    return tmp_path


def test_frames_carry_the_scans_points_remission_times_and_image(root):
    source = open_source(f"semantickitti:{root}", sequences=["08"], every=1, max_frames=None)
    assert isinstance(source, SemanticKittiSource) and len(source) == 3
    items, positions = [], []
    for item in source:
        items.append(item)
        positions.append(source.position)
    assert positions == [0, 1, 2] and source.problems.frames_skipped == 0 and not source.problems.cameras
    assert source.classes == semantickitti_classes()
    for k, (frame, truth) in enumerate(items):
        scan = np.fromfile(root / "sequences" / "08" / "velodyne" / f"{k:06d}.bin", dtype=np.float32).reshape(-1, 4)
        np.testing.assert_array_equal(frame.points, scan[:, :3])
        np.testing.assert_array_equal(frame.intensity, scan[:, 3])
        assert frame.stamp_ns == round(0.1036 * k * 1e9) and frame.frame_id == "velodyne"
        (camera,), (image,) = frame.cameras, frame.images
        assert (camera.name, camera.width, camera.height, camera.distortion_model) == ("image_2", WIDTH, HEIGHT, "none")
        assert image.shape == (HEIGHT, WIDTH, 3) and tuple(image[5, 5]) == (200, 0, 10 + k)  # RGB, this scan's
        assert truth.labels.shape == (N_POINTS,)


def test_learning_map_folds_raw_ids_into_the_19_classes_and_ignore(root):
    classes = semantickitti_classes()
    assert classes.ignore == (0,) and classes.names[0] == "unlabeled" and classes.n_classes == 20
    assert [n for n, t in zip(classes.names, classes.is_thing) if t] == [
        "car", "bicycle", "motorcycle", "truck", "other-vehicle", "person", "bicyclist", "motorcyclist"]
    _, truth = next(iter(SemanticKittiSource(root, sequences="08")))
    expected = {10: "car", 252: "car", 0: "unlabeled", 1: "unlabeled", 40: "road", 60: "road", 13: "other-vehicle",
                254: "person", 30: "person", 52: "unlabeled", 99: "unlabeled", 123: "unlabeled", 70: "vegetation",
                15: "motorcycle", 81: "traffic-sign"}
    for i in range(len(RAW)):
        assert SEMANTICKITTI_NAMES[truth.labels[i]] == expected[RAW[i][0]], RAW[i]
    assert truth.labels.dtype == np.uint16 and truth.instance_ids.dtype == np.uint32


def test_instance_ids_come_from_the_upper_bits_unique_per_frame_and_zero_on_stuff(root):
    _, truth = next(iter(SemanticKittiSource(root, sequences="08")))
    ids = {RAW[i]: int(truth.instance_ids[i]) for i in range(len(RAW))}
    assert ids[(10, 7)] == ids[(252, 7)] == (1 << 16) + 7  # a car, parked or moving: one object, its raw id below
    assert ids[(10, 9)] != ids[(10, 7)] and ids[(10, 9)] & 0xFFFF == 9
    assert ids[(254, 3)] == ids[(30, 3)] != 0 and ids[(254, 3)] & 0xFFFF == 3
    assert len({ids[(13, 2)], ids[(15, 4)], ids[(30, 3)], ids[(10, 7)]}) == 4  # no two things share an id
    for raw in [(0, 0), (1, 0), (40, 0), (60, 0), (52, 0), (99, 0), (123, 0), (70, 0), (81, 0)]:
        assert ids[raw] == 0, raw  # stuff and unlabeled
    segments = {(int(l), int(i)) for l, i in zip(truth.labels, truth.instance_ids) if i}
    assert len({i for _, i in segments}) == len(segments)  # an id names one (class, object)


def test_a_known_point_projects_to_the_pixel_P2_Tr_gives(root):
    P2 = np.array(P2_TEXT.split(), dtype=float).reshape(3, 4)
    Tr = np.vstack([np.array(TR_TEXT.split(), dtype=float).reshape(3, 4), [0, 0, 0, 1]])
    h = P2 @ Tr @ np.append(KNOWN_POINT, 1.0)
    expected = h[:2] / h[2]  # the KITTI loaders' projection, independent of the source's K and T_cam_lidar
    assert 0 < expected[0] < WIDTH and 0 < expected[1] < HEIGHT  # the point is in view
    frame, _ = next(iter(SemanticKittiSource(root, sequences=["08"])))
    (camera,) = frame.cameras
    cam = camera.T_cam_lidar @ np.append(KNOWN_POINT, 1.0)
    np.testing.assert_allclose((camera.K @ cam[:3])[:2] / cam[2], expected, atol=1e-9)
    np.testing.assert_allclose(camera.T_cam_lidar[:3, 3] - Tr[:3, 3], np.linalg.solve(P2[:, :3], P2[:, 3]))
    proj = project_points(torch.from_numpy(frame.points), frame.cameras, ProjectionConfig(occlusion=False))
    seen = (proj.point == 0).nonzero().flatten()
    assert seen.numel() == 1  # the pipeline's projection sees it, at that pixel
    np.testing.assert_allclose(proj.uv[seen[0]].numpy(), expected, atol=1e-3)


def _error(match_path):
    return pytest.raises(SemanticKittiError, match=re.escape(str(match_path)))


@pytest.mark.parametrize("case", ["root", "sequence", "calib", "p2_short", "p2_missing", "tr_text", "tr_not_rotation",
                                  "times"])
def test_bad_datasets_are_an_error_naming_the_path(tmp_path, case):
    seq = write_sequence(tmp_path, "08", scans=1)
    bad_root, path = tmp_path, seq / "calib.txt"
    if case == "root":
        bad_root = path = tmp_path / "sequences"  # one level too deep
    elif case == "sequence":
        path = tmp_path / "sequences" / "05"
    elif case == "calib":
        path.unlink()
    elif case == "p2_short":
        path.write_text(calib_text(p2=" ".join(P2_TEXT.split()[:11])))
    elif case == "p2_missing":
        path.write_text(calib_text().replace("P2:", "P9:"))
    elif case == "tr_text":
        path.write_text(calib_text(tr=TR_TEXT.replace("-7.210626507497e-03", "x")))
    elif case == "tr_not_rotation":
        path.write_text(calib_text(tr=" ".join(["2.0"] * 12)))
    elif case == "times":
        path = seq / "times.txt"
        path.unlink()
    with _error(path):
        SemanticKittiSource(bad_root, sequences=["05" if case == "sequence" else "08"])


def test_a_spec_without_a_root_is_an_error_and_the_errors_are_value_errors():
    with pytest.raises(SemanticKittiError, match="semantickitti:ROOT"):
        open_source("semantickitti:")
    assert issubclass(SemanticKittiError, ValueError)


def test_labels_of_the_wrong_length_skip_their_frame_and_are_counted(root):
    label = root / "sequences" / "08" / "labels" / "000001.label"
    np.zeros(N_POINTS - 5, dtype=np.uint32).tofile(label)
    source = SemanticKittiSource(root, sequences="08")
    stamps = [frame.stamp_ns for frame, _ in source]
    assert len(stamps) == 2 and stamps[1] == round(0.2072 * 1e9)
    assert dict(source.problems.frames) == {"ground_truth_point_count": 1}
    (problem,) = source.problems.examples
    assert problem.frame == 1 and str(label) in problem.detail and problem.camera is None


def test_a_truncated_scan_or_missing_label_file_skips_its_frame(root):
    scan = root / "sequences" / "08" / "velodyne" / "000000.bin"
    scan.write_bytes(scan.read_bytes()[:-6])
    (root / "sequences" / "08" / "labels" / "000002.label").unlink()
    source = SemanticKittiSource(root, sequences="08")
    assert [source.position for _ in source] == [1]
    assert dict(source.problems.frames) == {"cloud_bad_layout": 1, "ground_truth_missing": 1}
    assert str(scan) in source.problems.examples[0].detail


def test_a_missing_image_costs_the_camera_only_and_is_counted(root):
    (root / "sequences" / "08" / "image_2" / "000002.png").unlink()
    source = SemanticKittiSource(root, sequences="08")
    frames = [frame for frame, _ in source]
    assert [len(f.cameras) for f in frames] == [1, 1, 0] and source.problems.frames_skipped == 0
    assert dict(source.problems.cameras) == {"image_2: image_missing": 1}
    assert source.problems.examples[0].frame == 2
    lidar_only = SemanticKittiSource(root, sequences="08", images=False)
    assert all(not f.cameras and not f.images for f, _ in lidar_only) and not lidar_only.problems.cameras


def test_sequences_without_labels_give_no_ground_truth(root):
    test_only = open_source(f"semantickitti:{root}", sequences=[11])
    assert test_only.classes is None and [t for _, t in test_only] == [None] * 3
    both = SemanticKittiSource(root, sequences="08,11")
    truths = [t for _, t in both]
    assert both.classes is not None and [t is None for t in truths] == [False] * 3 + [True] * 3
    everything = SemanticKittiSource(root)  # every sequence under ROOT/sequences, in order
    assert [s.name for s in everything.sequences] == ["08", "11"]


def test_every_and_max_frames_select_by_position_across_sequences(root):
    source = SemanticKittiSource(root, sequences=[8, "11"], every=2)
    positions = [source.position for _ in source]
    assert positions == [0, 2, 4] and len(source) == 3
    capped = SemanticKittiSource(root, sequences=["08", "11"], every=1, max_frames=4)
    assert [capped.position for _ in capped] == [0, 1, 2, 3] and len(capped) == 4
    with pytest.raises(ValueError, match="every >= 1"):
        SemanticKittiSource(root, sequences="08", every=0)


def test_an_index_gives_the_frame_iteration_gives_across_sequences(root):
    iterated = check_indexed_as_iterated(lambda: SemanticKittiSource(root, sequences="08,11"))
    assert len(iterated) == 6 and [t is None for _, t in iterated] == [False] * 3 + [True] * 3
    source = SemanticKittiSource(root, sequences="08,11", images=False)
    frame, truth = source[4]  # sequence 11's scan 1
    scan = np.fromfile(root / "sequences" / "11" / "velodyne" / "000001.bin", dtype=np.float32).reshape(-1, 4)
    np.testing.assert_array_equal(frame.points, scan[:, :3])
    assert truth is None and frame.stamp_ns == round(0.1036 * 1e9) and source.position == 4
    with pytest.raises(IndexError, match="frame 6 of a 6-frame SemanticKITTI source"):
        source[6]


def test_every_and_max_frames_make_the_index_space_as_they_select_scans(root):
    every = SemanticKittiSource(root, sequences="08,11", every=4, images=False)
    assert len(every) == 2 and every[1][0].stamp_ns == round(0.1036 * 1e9) and every.position == 4
    with pytest.raises(IndexError):
        every[2]
    for options in (dict(every=2), dict(every=2, max_frames=2), dict(every=5), dict(max_frames=4)):
        check_indexed_as_iterated(lambda: SemanticKittiSource(root, sequences="08,11", **options))


def test_a_training_order_shuffles_the_scans_and_shards_build_only_their_own(tmp_path):
    write_sequence(tmp_path, "00", scans=5)
    write_sequence(tmp_path, "08", scans=3)
    iterated = list(SemanticKittiSource(tmp_path))
    assert len(iterated) == 8
    check_training_order_shuffles(lambda: SemanticKittiSource(tmp_path), iterated)
    check_shards_build_only_their_frames(lambda: SemanticKittiSource(tmp_path), iterated)


def test_an_index_of_a_scan_that_cannot_be_used_raises_and_counts_it(root):
    scan = root / "sequences" / "08" / "velodyne" / "000002.bin"
    scan.write_bytes(scan.read_bytes()[:-6])
    source = SemanticKittiSource(root, sequences="08,11", every=2)
    with pytest.raises(FrameUnavailable, match=re.escape(str(scan))) as raised:
        source[1]
    assert (raised.value.index, raised.value.problem.frame, raised.value.problem.kind) == (1, 2, "cloud_bad_layout")
    assert source.position == -1 and dict(source.problems.frames) == {"cloud_bad_layout": 1}
    assert source[2][0].stamp_ns == round(0.1036 * 1e9) and source.position == 4
    every = SemanticKittiSource(root, sequences="08,11", every=2)
    assert [every.position for _ in every] == [0, 4]  # iteration skips it
    shards = [StridedSource(SemanticKittiSource(root, sequences="08,11", every=2), rank, 2) for rank in (0, 1)]
    assert [[(s.ordinal, s.position) for _ in s] for s in shards] == [[(0, 0), (2, 4)], []]
    assert [dict(s.problems.frames) for s in shards] == [{}, {"cloud_bad_layout": 1}]
    with pytest.raises(FrameUnavailable, match=re.escape(str(scan))):
        list(itertools.islice(FrameOrder(SemanticKittiSource(root, sequences="08", every=2)).frames(0), 2))


def test_the_preset_split_is_the_sources_and_maps_onto_its_vocabulary(root):
    from ov_panoptic_ros.core.model.targets import ClassSplit
    from ov_panoptic_ros.train.labels import split_classes, vocabulary_lut

    vocabulary = load_config("semantickitti").vocabulary
    assert vocabulary.novel == ("other-vehicle", "motorcycle", "person", "vegetation") == SEMANTICKITTI_NOVEL
    classes = SemanticKittiSource(root, sequences="08").classes
    assert [n for n, novel in zip(classes.names, classes.is_novel) if novel] == [
        "motorcycle", "other-vehicle", "person", "vegetation"]
    split = ClassSplit.from_config(vocabulary)
    lut = vocabulary_lut(classes, split, "test")  # every ground-truth class has its vocabulary entry
    assert split_classes(classes, lut, split) == classes
    paper = SemanticKittiSource(root, sequences="08", novel=["truck", "bicycle"]).classes
    assert [n for n, novel in zip(paper.names, paper.is_novel) if novel] == ["bicycle", "truck"]
