"""The shared types: vocabulary validation (the node's reject reasons come from here), frame checks."""
import json

import numpy as np
import pytest

from ov_panoptic_ros.core.frame import (MAX_CLASSES, CameraModel, Frame, PanopticResult, Vocabulary,
                                        VocabularyError, class_color)


def test_vocabulary_synonyms_names_and_stuff():
    v = Vocabulary(("car", "pedestrian, person", "road"), stuff=("road",))
    assert v.names == ["car", "pedestrian", "road"]
    assert v.synonyms[1] == ["pedestrian", "person"]
    assert v.is_stuff.tolist() == [False, False, True]


@pytest.mark.parametrize(
    "classes, stuff, reason",
    [
        ((), (), "empty"),
        (("car", "Car"), (), "duplicate"),
        (("car", "car,auto"), (), "duplicate"),
        (("car", "  "), (), "blank"),
        (("car", "bus,"), (), "blank"),
        (("car",), ("road",), "not in the vocabulary"),
    ],
)
def test_vocabulary_rejects_with_reason(classes, stuff, reason):
    with pytest.raises(VocabularyError, match=reason):
        Vocabulary(classes, stuff)


def test_vocabulary_rejects_too_many_classes_for_uint16():
    with pytest.raises(VocabularyError, match="uint16"):
        Vocabulary(tuple(f"c{i}" for i in range(MAX_CLASSES + 1)))


def test_vocabulary_rejects_template_without_placeholder():
    with pytest.raises(VocabularyError, match="placeholder"):
        Vocabulary(("car",), templates=("a photo",))


def test_vocabulary_json_and_stable_colors():
    a = Vocabulary(("car", "road"), ("road",), version=3)
    b = Vocabulary(("road", "tree", "car"), ("road",))
    payload = json.loads(a.to_json())
    assert payload["version"] == 3 and payload["classes"] == ["car", "road"] and payload["stuff"] == ["road"]
    assert payload["colors"][0] == list(class_color("car"))
    assert (a.colors()[0] == b.colors()[2]).all()  # color follows the name, not the index


def _camera(**kw):
    args = dict(name="c", width=4, height=3, K=np.diag([10.0, 10.0, 1.0]))
    args.update(kw)
    return CameraModel(**args)


def test_camera_model_rejects_zero_matrix_and_unknown_distortion():
    with pytest.raises(ValueError, match="focal"):
        _camera(K=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="unknown distortion model 'fisheye9'"):
        _camera(distortion_model="fisheye9")


def test_frame_checks_image_size_against_camera():
    cam = _camera()
    Frame(points=np.zeros((5, 3)), images=[np.zeros((3, 4, 3), np.uint8)], cameras=[cam])
    with pytest.raises(ValueError, match="CameraInfo says 4x3"):
        Frame(points=np.zeros((5, 3)), images=[np.zeros((4, 4, 3), np.uint8)], cameras=[cam])


def test_panoptic_result_requires_aligned_arrays():
    v = Vocabulary(("car",))
    with pytest.raises(ValueError, match="one entry per point"):
        PanopticResult(np.zeros(3), np.zeros(2), np.zeros(3), [], v)
    r = PanopticResult(np.zeros(3), np.zeros(3), np.zeros(3), [], v)
    assert r.labels.dtype == np.uint16 and r.instance_ids.dtype == np.uint32 and r.scores.dtype == np.float32
