"""The evaluation bag layout: what write_synthetic_bag records must read back exactly, in both storages."""
import os

import numpy as np
import pytest
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rosbags.interfaces import QosDurability
from rosbags.rosbag2 import Reader

from ov_panoptic_ros.bridge.clouds import FLOAT32, read_cloud, read_cloud_fields
from ov_panoptic_ros.bridge.images import compressed_to_rgb, image_to_rgb
from ov_panoptic_ros.bridge.packing import pack_lidar_cloud
from ov_panoptic_ros.bridge.problems import CloudError
from ov_panoptic_ros.data.bag.errors import BagCorruptError, BagError, BagNotFoundError, MissingTopicsError
from ov_panoptic_ros.data.bag.layout import CALIBRATION_ATTACHMENT, BagTopics, gt_classes_from_json, gt_classes_to_json
from ov_panoptic_ros.data.bag.mcap_file import add_mcap_attachment, read_mcap_attachments
from ov_panoptic_ros.data.bag.reader import open_bag
from ov_panoptic_ros.data.bag.writer import BagWriter
from ov_panoptic_ros.data.synthetic import scene_sequence
from ov_panoptic_ros.data.synthetic_drive import synthetic_classes, write_synthetic_bag

SMALL = dict(n_frames=3, num_points=1500, num_cameras=2, image_size=(48, 32), seed=3)


def _scenes(**kw):
    return list(scene_sequence(kw["n_frames"], seed=kw["seed"], num_points=kw["num_points"],
                               num_cameras=kw["num_cameras"], image_size=kw["image_size"]))


def _stamp(msg):
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


@pytest.mark.parametrize("name", ["drive_dir_mcap", "drive.mcap", "drive_dir_sqlite", "drive.db3"])
def test_round_trip_every_layout_item(tmp_path, name):
    storage = "sqlite3" if "sqlite" in name or name.endswith(".db3") else "mcap"
    path = tmp_path / name
    info = write_synthetic_bag(path, storage=storage, **SMALL)
    scenes = _scenes(**SMALL)
    with open_bag(path) as reader:
        assert reader.storage == storage
        counts = reader.message_counts
        assert counts["/lidar/points"] == counts["/ov_panoptic/ground_truth"] == 3
        assert counts["/cam_front/image_raw"] == counts["/cam_back/camera_info"] == 3
        assert counts["/ov_panoptic/calibration"] == counts["/ov_panoptic/gt_classes"] == 1
        layout = reader.layout()
        assert layout.camera_names == ["cam_front", "cam_back"]
        for name_, ext in scenes[0].calibration.cameras.items():
            np.testing.assert_allclose(layout.calibration.cameras[name_].T_cam_lidar, ext.T_cam_lidar, atol=1e-12)
        assert layout.classes == synthetic_classes()
        assert layout.classes.names[2] == "bus" and layout.classes.is_novel[2] and layout.classes.is_thing[2]

        stamps, clouds, gts, images = [], [], [], {}
        last = -1
        for msg in reader.messages():
            assert msg.log_time_ns >= last, "messages must come out in time order"
            last = msg.log_time_ns
            if msg.topic == "/lidar/points":
                decoded = msg.decode()
                stamps.append(_stamp(decoded))
                clouds.append(read_cloud(decoded))
            elif msg.topic == "/ov_panoptic/ground_truth":
                gts.append(read_cloud_fields(msg.decode(), ["label", "instance_id"]))
            elif msg.topic == "/cam_back/image_raw":
                images.setdefault("cam_back", []).append(image_to_rgb(msg.decode()))
            elif msg.topic == "/cam_front/camera_info" and "info" not in images:
                images["info"] = msg.decode()
    assert stamps == info.stamps_ns == [s.frame.stamp_ns for s in scenes]
    for scene, cloud, gt, img in zip(scenes, clouds, gts, images["cam_back"]):
        np.testing.assert_array_equal(cloud.xyz, scene.frame.points)
        np.testing.assert_array_equal(cloud.intensity, scene.frame.intensity)
        np.testing.assert_array_equal(gt["label"], scene.gt_labels)
        np.testing.assert_array_equal(gt["instance_id"], scene.gt_instance_ids)
        np.testing.assert_array_equal(img, scene.frame.images[1])
    np.testing.assert_allclose(np.asarray(images["info"].k).reshape(3, 3), scenes[0].camera_infos[0].K)
    assert images["info"].distortion_model == "plumb_bob"


def test_lidar_cloud_layout_and_ground_truth_fields(tmp_path):
    """The input cloud is plain x, y, z[, intensity] float32; ground-truth fields read back as writable copies."""
    rng = np.random.default_rng(5)
    xyz, inten = rng.normal(0, 10, (9, 3)).astype(np.float32), rng.random(9).astype(np.float32)
    packed = pack_lidar_cloud(xyz, inten)
    assert packed.fields == [("x", 0, FLOAT32, 1), ("y", 4, FLOAT32, 1), ("z", 8, FLOAT32, 1),
                             ("intensity", 12, FLOAT32, 1)]
    assert packed.point_step == 16 and bytes(packed.data) == np.column_stack([xyz, inten]).tobytes()
    bare = pack_lidar_cloud(xyz.astype(np.float64), None)  # cast to float32, like a driver's cloud
    assert bare.point_step == 12 and bytes(bare.data) == xyz.tobytes()

    write_synthetic_bag(tmp_path / "g.mcap", **SMALL)
    with open_bag(tmp_path / "g.mcap") as reader:
        gt_msg = reader.first_message("/ov_panoptic/ground_truth").decode()
    gt = read_cloud_fields(gt_msg, ["label", "instance_id"])
    assert gt["label"].dtype == np.uint16 and gt["instance_id"].dtype == np.uint32
    assert gt["label"].flags.c_contiguous and gt["label"].flags.writeable
    assert not np.shares_memory(gt["label"], gt_msg.data)  # a copy: scores and samples outlive the message
    np.testing.assert_array_equal(gt["label"], _scenes(**SMALL)[0].gt_labels)
    with pytest.raises(CloudError, match="'semantic_label'") as e:
        read_cloud_fields(gt_msg, ["semantic_label", "instance_id"])
    assert e.value.kind == "cloud_missing_field"


def test_latched_topics_are_recorded_transient_local(tmp_path):
    write_synthetic_bag(tmp_path / "b", **SMALL)
    with Reader(tmp_path / "b") as raw:
        durability = {c.topic: c.ext.offered_qos_profiles[0].durability for c in raw.connections}
    assert durability["/ov_panoptic/calibration"] == QosDurability.TRANSIENT_LOCAL
    assert durability["/ov_panoptic/gt_classes"] == QosDurability.TRANSIENT_LOCAL
    assert durability["/lidar/points"] == QosDurability.VOLATILE
    with open_bag(tmp_path / "b") as reader:
        assert {"/ov_panoptic/calibration", "/ov_panoptic/gt_classes"} <= reader.latched_topics
        assert "/lidar/points" not in reader.latched_topics


def test_compressed_images(tmp_path):
    write_synthetic_bag(tmp_path / "c.mcap", compressed=True, **SMALL)
    scene = _scenes(**SMALL)[0]
    with open_bag(tmp_path / "c.mcap") as reader:
        layout = reader.layout()
        assert all(c.compressed and c.image_topic.endswith("/image_raw/compressed") for c in layout.cameras)
        rgb = compressed_to_rgb(reader.first_message("/cam_front/image_raw/compressed").decode())
    assert rgb.shape == scene.frame.images[0].shape
    assert np.abs(rgb.astype(int) - scene.frame.images[0]).mean() < 12  # JPEG, quality 95


def test_calibration_attachment_is_indexed_and_used_when_the_topic_is_absent(tmp_path):
    path = tmp_path / "a.mcap"
    write_synthetic_bag(path, topics=BagTopics(calibration="/elsewhere/calibration"), **SMALL)
    attached = read_mcap_attachments(path)
    assert CALIBRATION_ATTACHMENT in attached
    with Reader(path) as raw:  # the rewritten file is still a valid MCAP for rosbags
        assert sum(1 for _ in raw.messages()) == 3 * 6 + 2
    with open_bag(path) as reader:  # default topics: the calibration topic is not there
        layout = reader.layout()
    assert layout.calibration_source == f"MCAP attachment {CALIBRATION_ATTACHMENT}"
    assert layout.calibration_text == attached[CALIBRATION_ATTACHMENT].decode()


def test_add_attachment_twice_keeps_both(tmp_path):
    path = tmp_path / "x.mcap"
    write_synthetic_bag(path, attach_calibration=False, **SMALL)
    assert read_mcap_attachments(path) == {}
    add_mcap_attachment(path, "one.txt", b"1")
    add_mcap_attachment(path, "two.txt", b"22")
    assert read_mcap_attachments(path) == {"one.txt": b"1", "two.txt": b"22"}


def test_adding_an_attachment_to_a_cut_file_is_refused_and_leaves_it_alone(tmp_path):
    path = tmp_path / "x.mcap"
    write_synthetic_bag(path, attach_calibration=False, **SMALL)
    cut = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(cut)
    with pytest.raises(BagCorruptError, match="x.mcap"):
        add_mcap_attachment(path, "one.txt", b"1")
    assert path.read_bytes() == cut and sorted(p.name for p in tmp_path.iterdir()) == ["x.mcap"]


def test_adding_an_attachment_keeps_everything_else(tmp_path):
    """The rewrite through the library keeps the header, rosbags' `rosbag2` metadata record, the schemas,
    the channels with their QoS, and every message in file order."""
    path = tmp_path / "k.mcap"
    write_synthetic_bag(path, attach_calibration=False, **SMALL)

    def contents():
        with open(path, "rb") as f:
            reader = make_reader(f)
            header, summary = reader.get_header(), reader.get_summary()
            metadata = [(m.name, m.metadata) for m in reader.iter_metadata()]
            channels = sorted((c.topic, c.message_encoding, c.metadata, summary.schemas[c.schema_id].name,
                               summary.schemas[c.schema_id].encoding, summary.schemas[c.schema_id].data)
                              for c in summary.channels.values())
            messages = [(c.topic, m.log_time, m.publish_time, m.sequence, m.data)
                        for _, c, m in reader.iter_messages(log_time_order=False)]
        return header.profile, header.library, metadata, channels, messages

    before = contents()
    add_mcap_attachment(path, "one.txt", b"1")
    assert contents() == before
    assert before[0] == "ros2" and [name for name, _ in before[2]] == ["rosbag2"]
    assert len(before[4]) == 3 * 6 + 2
    with open(path, "rb") as f:  # a ROS 2 reader (mcap-ros2-support) decodes it with the file's own schemas
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        decoded = [d for _, _, _, d in reader.iter_decoded_messages(topics=["/ov_panoptic/gt_classes"])]
    assert gt_classes_from_json(decoded[0].data) == synthetic_classes()


def test_missing_topics_are_all_named(tmp_path):
    write_synthetic_bag(tmp_path / "b.mcap", ground_truth=False, **SMALL)
    with open_bag(tmp_path / "b.mcap", BagTopics(lidar="/velodyne_points")) as reader:
        with pytest.raises(MissingTopicsError) as err:
            reader.layout()
    msg = str(err.value)
    assert "/velodyne_points" in msg and "/ov_panoptic/ground_truth" in msg
    assert "/lidar/points" in msg  # the listing of what the bag does hold
    assert set(err.value.missing) == {"/velodyne_points", "/ov_panoptic/ground_truth"}


def test_open_bag_checks_required_topics_up_front(tmp_path):
    write_synthetic_bag(tmp_path / "b.mcap", **SMALL)
    with pytest.raises(MissingTopicsError, match="/radar/points, /imu"):
        open_bag(tmp_path / "b.mcap", require=["/lidar/points", "/radar/points", "/imu"])
    with open_bag(tmp_path / "b.mcap", require=["/lidar/points"]) as reader:
        assert reader.message_counts["/lidar/points"] == 3


def test_bag_without_calibration_says_how_to_provide_one(tmp_path):
    path = tmp_path / "n.db3"
    write_synthetic_bag(path, topics=BagTopics(calibration="/x"), **SMALL)
    with open_bag(path) as reader, pytest.raises(BagError, match="--calibration"):
        reader.layout()


def test_missing_and_garbage_bags_give_clear_errors(tmp_path):
    with pytest.raises(BagNotFoundError, match="does not exist"):
        open_bag(tmp_path / "nope.mcap")
    garbage = tmp_path / "garbage.mcap"
    garbage.write_bytes(os.urandom(5000))
    with pytest.raises(BagCorruptError, match="garbage.mcap"):
        open_bag(garbage)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagCorruptError, match="empty"):
        open_bag(tmp_path / "empty")
    db = tmp_path / "junk.db3"
    db.write_bytes(b"SQLite format 3\0" + os.urandom(3000))
    with pytest.raises(BagCorruptError):
        open_bag(db)


def test_truncated_mcap_is_salvaged_up_to_the_cut(tmp_path):
    """A recorder killed mid-drive leaves an MCAP without footer: the complete messages are still read."""
    path = tmp_path / "long.mcap"
    write_synthetic_bag(path, n_frames=8, num_points=6000, image_size=(160, 120), seed=1)
    with open_bag(path) as reader:
        original = [(m.topic, m.log_time_ns, m.raw) for m in reader.messages()]
    data = path.read_bytes()
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(data[: len(data) // 2])
    with open_bag(cut) as reader:
        assert "truncated" in reader.partial_reason
        salvaged = [(m.topic, m.log_time_ns, m.raw) for m in reader.messages()]
        layout = reader.layout()  # calibration and classes survive: they come first
    assert 0 < len(salvaged) < len(original)
    assert salvaged == original[: len(salvaged)]
    assert sum(t == "/lidar/points" for t, _, _ in salvaged) >= 2
    assert layout.camera_names == ["cam_front", "cam_back"]


def test_mcap_cut_inside_its_first_chunk_keeps_the_complete_messages_of_that_chunk(tmp_path):
    """A recorder killed before its first chunk (1 MiB) was closed: the chunk's complete messages still read."""
    path = tmp_path / "short.mcap"
    write_synthetic_bag(path, n_frames=8, num_points=6000, image_size=(160, 120), seed=1)
    with open_bag(path) as reader:
        original = [(m.topic, m.log_time_ns, m.raw) for m in reader.messages()]
    with open(path, "rb") as f:
        first_chunk = min(make_reader(f).get_summary().chunk_indexes, key=lambda c: c.chunk_start_offset)
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(path.read_bytes()[: first_chunk.chunk_start_offset + first_chunk.chunk_length // 2])
    with open_bag(cut) as reader:
        assert "cut short" in reader.partial_reason
        salvaged = [(m.topic, m.log_time_ns, m.raw) for m in reader.messages()]
        layout = reader.layout()
    assert salvaged == original[: len(salvaged)]
    assert sum(t == "/lidar/points" for t, _, _ in salvaged) >= 1
    assert layout.camera_names == ["cam_front", "cam_back"]


def test_reading_is_lazy(tmp_path):
    path = tmp_path / "lazy.db3"
    write_synthetic_bag(path, n_frames=6, num_points=3000, image_size=(64, 48))
    with open_bag(path) as reader:
        assert reader.first_message("/lidar/points") is not None
        assert 0 < reader.bytes_read < reader.size_bytes / 4, "first_message must not read the whole bag"
        messages = reader.messages()
        first = next(messages)
        assert first.topic == "/ov_panoptic/calibration"


def test_gt_class_json_round_trip_and_errors():
    classes = synthetic_classes()
    assert gt_classes_from_json(gt_classes_to_json(classes)) == classes
    with pytest.raises(BagError, match="not valid JSON"):
        gt_classes_from_json("{")
    with pytest.raises(BagError, match="non-empty 'classes'"):
        gt_classes_from_json('{"classes": []}')
    with pytest.raises(BagError, match="class 1 needs"):
        gt_classes_from_json('{"classes": [{"name": "car"}, {"thing": true}]}')
    with pytest.raises(BagError, match="duplicate"):
        gt_classes_from_json('{"classes": [{"name": "car"}, {"name": "Car"}]}')


def test_writer_never_overwrites(tmp_path):
    write_synthetic_bag(tmp_path / "b.mcap", **SMALL)
    with pytest.raises(BagError, match="exists already"):
        BagWriter(tmp_path / "b.mcap")
    with pytest.raises(BagError, match="suffix"):
        BagWriter(tmp_path / "c.mcap", storage="sqlite3")


def damage_chunk(path, chunk_number: int) -> None:
    """Overwrite the first records of one MCAP chunk with 0xFF (the footer and index stay valid)."""
    with open(path, "rb") as f:
        chunks = sorted(c.chunk_start_offset for c in make_reader(f).get_summary().chunk_indexes)
    assert len(chunks) > chunk_number, f"only {len(chunks)} chunks"
    buf = bytearray(path.read_bytes())
    start = chunks[chunk_number] + 9 + 40  # record header, then start/end/size/crc/compression ''/length
    buf[start:start + 64] = b"\xff" * 64
    path.write_bytes(bytes(buf))


def test_garbage_inside_the_bag_stops_reading_with_a_count(tmp_path):
    from ov_panoptic_ros.data.bag.errors import BagReadError

    path = tmp_path / "g.mcap"
    write_synthetic_bag(path, n_frames=8, num_points=6000, image_size=(160, 120), seed=1)
    damage_chunk(path, 2)
    read = []
    with open_bag(path) as reader, pytest.raises(BagReadError, match="damaged") as err:
        for msg in reader.messages():
            read.append(msg.topic)
    assert err.value.messages_read == len(read) > 10


def test_salvage_stops_at_the_first_damaged_record(tmp_path):
    """A file both damaged and cut short: the salvage keeps the messages before the damage, in order."""
    path = tmp_path / "d.mcap"
    write_synthetic_bag(path, n_frames=8, num_points=6000, image_size=(160, 120), seed=1)
    with open_bag(path) as reader:
        original = [(m.topic, m.log_time_ns, m.raw) for m in reader.messages()]
    damage_chunk(path, 1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 9 // 10])
    with open_bag(path) as reader:
        assert "damaged" in reader.partial_reason
        salvaged = [(m.topic, m.log_time_ns, m.raw) for m in reader.messages()]
        assert reader.message_counts["/lidar/points"] == sum(t == "/lidar/points" for t, _, _ in salvaged) >= 1
    assert 0 < len(salvaged) < len(original) // 2
    assert salvaged == original[: len(salvaged)]
