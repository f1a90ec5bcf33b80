"""LiDAR-master synchronization, clock-agnostic: nearest match, offsets, waiting policy, time jumps."""
import pytest

from ov_panoptic_ros.bridge.stamps import NS
from ov_panoptic_ros.bridge.sync import CameraSynchronizer, FrameAssembler

MS = 1_000_000
T0 = 1_700_000_000 * NS


def _sync(**kw):
    kw.setdefault("max_offset_s", 0.05)
    return CameraSynchronizer({"front": 0.0, "back": 0.0}, **kw)


def test_nearest_image_within_max_offset():
    s = _sync()
    for dt in (-100, -30, 10, 60):
        s.add("front", T0 + dt * MS, f"f{dt}")
    s.add("back", T0 - 70 * MS, "b-70")
    m = s.match(T0)
    assert m == {"front": "f10", "back": None}  # back's only image is 70 ms away: no match


def test_time_offset_is_applied_before_matching():
    s = CameraSynchronizer({"front": 0.08}, max_offset_s=0.02)  # camera clock runs 80 ms behind
    s.add("front", T0 - 80 * MS, "right")
    s.add("front", T0, "wrong")
    assert s.match(T0) == {"front": "right"}


def test_out_of_order_arrival_still_picks_nearest():
    s = _sync()
    for dt in (40, -5, 20, -45):  # arrival order scrambled
        s.add("front", T0 + dt * MS, dt)
    assert s.match(T0)["front"] == -5


def test_buffer_is_bounded_and_unknown_cameras_ignored():
    s = _sync(buffer_size=3)
    for i in range(10):
        s.add("front", T0 + i * 10 * MS, i)
    assert s.match(T0)["front"] is None  # the oldest were evicted
    assert s.match(T0 + 90 * MS)["front"] == 9
    assert s.add("left", T0, "x") is False


def test_backwards_jump_of_a_camera_clears_its_buffer():
    s = _sync()
    s.add("front", T0 + 10 * NS, "old timeline")
    s.add("front", T0, "new timeline")  # 10 s back: a bag loop
    assert s.time_jumps == 1
    assert s.match(T0 + 10 * NS, observe=False)["front"] is None
    assert s.match(T0, observe=False)["front"] == "new timeline"


def test_backwards_jump_of_the_cloud_drops_the_old_timeline_but_keeps_the_new():
    s = _sync()
    s.observe_cloud(T0 + 10 * NS)
    s.add("front", T0 + 10 * NS, "old")
    s.add("back", T0 + 10 * NS, "old")
    s.add("back", T0 + 1 * MS, "new")  # back already looped (and cleared its own buffer)
    assert s.time_jumps == 1
    m = s.match(T0)  # the cloud loops too
    assert s.time_jumps == 2
    assert m == {"front": None, "back": "new"}
    assert s.match(T0 + 10 * NS, observe=False)["front"] is None  # the old front image is gone


def test_small_backwards_steps_are_not_jumps():
    s = _sync(jump_threshold_s=1.0)
    s.observe_cloud(T0 + 100 * MS)
    s.add("front", T0 + 100 * MS, "a")
    assert not s.observe_cloud(T0)  # 100 ms out of order: reordering, not a jump
    assert s.time_jumps == 0 and s.match(T0 + 90 * MS)["front"] == "a"


def test_decided_when_no_later_image_can_be_nearer():
    s = _sync()
    assert not s.is_decided("front", T0)
    s.add("front", T0 - 100 * MS, 0)
    s.add("front", T0 - 50 * MS, 1)  # period 50 ms; best is 50 ms before the cloud: a later one may be nearer
    assert not s.is_decided("front", T0)
    s.add("front", T0 - 1 * MS, 2)  # 1 ms before, next expected ~49 ms after: decided
    assert s.is_decided("front", T0)
    assert s.is_decided("front", T0 - 60 * MS)  # an image at/after the stamp exists


def _assembler(timeout=0.1):
    return FrameAssembler(_sync(), camera_timeout_s=timeout)


def test_late_camera_within_timeout_is_used():
    a = _assembler()
    a.add_image("front", T0, "F")
    a.add_cloud(T0, "cloud", now_s=0.0)
    assert a.poll(0.03) == []  # back not here yet, still inside the timeout
    a.add_image("back", T0 + 2 * MS, "B")
    (frame,) = a.poll(0.05)
    assert frame.images == {"front": "F", "back": "B"} and frame.missing == [] and frame.cloud == "cloud"
    assert a.sync_misses == {"front": 0, "back": 0}


def test_missing_camera_frame_goes_out_after_timeout_with_the_other():
    a = _assembler(timeout=0.1)
    a.add_image("front", T0, "F")
    a.add_cloud(T0, "cloud", now_s=0.0)
    assert a.poll(0.099) == []
    (frame,) = a.poll(0.1)
    assert frame.images == {"front": "F", "back": None} and frame.missing == ["back"]
    assert a.sync_misses == {"front": 0, "back": 1}
    assert abs(frame.waited_s - 0.1) < 1e-9


def test_a_camera_awaiting_its_prerequisite_holds_the_cloud_until_usable_or_the_timeout():
    a = FrameAssembler(_sync(), camera_timeout_s=0.1, awaiting=["back"])
    a.add_image("front", T0, "F")
    a.add_image("back", T0, "B")
    a.add_cloud(T0, "first", now_s=0.0)
    assert a.poll(0.01) == []  # both images are here, but back's CameraInfo is not
    a.camera_usable("back")
    (frame,) = a.poll(0.02)
    assert frame.images == {"front": "F", "back": "B"} and frame.missing == []
    b = FrameAssembler(_sync(), camera_timeout_s=0.1, awaiting=["back"])
    b.add_image("front", T0, "F")
    b.add_image("back", T0, "B")
    b.add_cloud(T0, "cloud", now_s=0.0)
    (late,) = b.poll(0.1)  # never usable: the cloud goes out at the timeout, with the images it matched
    assert late.images == {"front": "F", "back": "B"} and abs(late.waited_s - 0.1) < 1e-9
    b.add_image("front", T0 + 100 * MS, "F2")  # the next cloud no longer waits for back's CameraInfo
    b.add_image("back", T0 + 100 * MS, "B2")
    b.add_cloud(T0 + 100 * MS, "next", now_s=0.2)
    (after,) = b.poll(0.2)
    assert after.cloud == "next" and after.waited_s == 0.0


def test_frames_come_out_in_arrival_order_and_pending_is_bounded():
    a = FrameAssembler(_sync(), camera_timeout_s=1.0, max_pending=2)
    for i in range(4):
        a.add_cloud(T0 + i * 100 * MS, i, now_s=0.0)
    assert a.dropped_pending == 2 and a.num_pending == 2
    out = a.poll(1.0)
    assert [f.cloud for f in out] == [2, 3]


def test_cloud_time_jump_drops_pending_clouds_of_the_old_timeline():
    a = _assembler(timeout=1.0)
    a.add_cloud(T0 + 20 * NS, "old", now_s=0.0)
    a.add_cloud(T0, "new", now_s=0.1)
    assert a.dropped_pending == 1 and a.sync.time_jumps == 1
    a.add_image("front", T0, "F")
    a.add_image("back", T0, "B")
    (frame,) = a.poll(0.2)
    assert frame.cloud == "new" and frame.missing == []


def test_changing_max_offset_at_run_time_applies_to_the_next_match():
    s = _sync()
    s.add("front", T0 + 80 * MS, "x")
    assert s.match(T0)["front"] is None
    s.max_offset_s = 0.1
    assert s.match(T0)["front"] == "x"


def test_an_image_exactly_at_max_offset_matches_on_either_side():
    s = _sync(max_offset_s=0.05)
    s.add("front", T0 + 50 * MS, "after")  # exactly the limit: matches (the limit is inclusive)
    s.add("back", T0 - 50 * MS, "before")
    assert s.match(T0) == {"front": "after", "back": "before"}
    assert s.match(T0 + 100 * MS, observe=False)["front"] == "after"  # the limit on the other side
    assert s.match(T0 - 1, observe=False) == {"front": None, "back": "before"}  # front is 50 ms + 1 ns away


def test_zero_max_offset_matches_only_the_exact_stamp():
    s = _sync(max_offset_s=0.0)  # hardware-triggered cameras
    s.add("front", T0, "exact")
    s.add("back", T0 + 1, "one ns late")
    assert s.match(T0) == {"front": "exact", "back": None}


def test_images_older_than_buffer_s_behind_the_newest_are_dropped():
    s = _sync(buffer_s=0.5)
    for i in range(10):  # 10 Hz
        s.add("front", T0 + i * 100 * MS, i, nbytes=100)
    assert s.buffered("front") == (6, 600)  # 0.4 .. 0.9 s: the one exactly 0.5 s behind the newest stays
    assert s.match(T0 + 400 * MS)["front"] == 4
    assert s.match(T0 + 300 * MS)["front"] is None
    s.add("front", T0 + 200 * MS, "late arrival, old stamp", nbytes=100)  # out of order and too old: not kept
    assert s.buffered("front") == (6, 600)


def test_of_two_equally_near_images_the_earlier_wins_in_either_arrival_order():
    for arrival in (("before", "after"), ("after", "before")):
        s = _sync()
        for name in arrival:
            s.add("front", T0 + (-20 if name == "before" else 20) * MS, name)
        assert s.match(T0)["front"] == "before", arrival


def test_eviction_orders_by_stamp_alone_so_repeated_stamps_need_no_comparable_items():
    """A driver that republishes a stamp: the buffered messages themselves are never compared."""
    s = _sync(max_bytes=250, buffer_s=10.0)
    first, again, newest = {"msg": 1}, {"msg": 2}, {"msg": 3}
    s.add("front", T0, first, nbytes=100)
    s.add("front", T0, again, nbytes=100)
    s.add("front", T0 + 10 * MS, newest, nbytes=100)
    assert s.buffered("front") == (2, 200)
    assert s.match(T0 + 10 * MS)["front"] is newest


def test_buffer_bytes_evict_the_oldest_stamp_and_keep_the_newest():
    s = _sync(max_bytes=300, buffer_s=10.0)
    for dt in (30, 10, 20):  # arrival order differs from stamp order
        s.add("front", T0 + dt * MS, dt, nbytes=100)
    s.add("front", T0 + 40 * MS, 40, nbytes=100)
    assert s.buffered("front") == (3, 300)
    assert s.match(T0 + 10 * MS, observe=False)["front"] == 20  # the 10 ms image (oldest stamp) went first
    s.add("front", T0 + 50 * MS, "huge", nbytes=1000)  # larger than the bound alone: it still stays
    assert s.buffered("front") == (1, 1000)
    assert s.match(T0 + 50 * MS)["front"] == "huge"
    assert s.buffered("back") == (0, 0)  # per camera: the other buffer is untouched


def test_bounds_apply_when_changed_at_run_time_and_a_jump_resets_the_byte_count():
    s = _sync(buffer_s=10.0)
    for i in range(5):
        s.add("front", T0 + i * 100 * MS, i, nbytes=100)
    s.buffer_s, s.max_bytes = 0.1, 150
    s.add("front", T0 + 500 * MS, 5, nbytes=100)
    assert s.buffered("front") == (1, 100)
    s.add("front", T0 - 10 * NS, "new timeline", nbytes=7)
    assert s.time_jumps == 1 and s.buffered("front") == (1, 7)


def test_assembler_counts_released_and_camera_incomplete_frames():
    a = _assembler(timeout=0.1)
    a.add_image("front", T0, "F")
    a.add_image("back", T0, "B")
    a.add_cloud(T0, "complete", now_s=0.0)
    a.add_image("front", T0 + 100 * MS, "F2")
    a.add_cloud(T0 + 100 * MS, "back missing", now_s=0.0)
    assert [f.cloud for f in a.poll(0.1)] == ["complete", "back missing"]
    assert (a.released, a.incomplete) == (2, 1)
    a.add_cloud(T0 + 200 * MS, "both missing", now_s=0.1)
    assert [f.missing for f in a.poll(0.2)] == [["front", "back"]]
    assert (a.released, a.incomplete) == (3, 2)  # counted over the node's life, not per poll


# ------------------------------------------------------------------ boundaries and counters (mutation testing)
def test_an_image_exactly_max_offset_s_away_matches_and_zero_offset_needs_equal_stamps():
    s = _sync(max_offset_s=0.05)
    s.add("front", T0 + 50 * MS, "at the limit")
    s.add("back", T0 - 50 * MS - 1, "1 ns past it")
    assert s.match(T0) == {"front": "at the limit", "back": None}
    hw = CameraSynchronizer({"front": 0.0}, max_offset_s=0.0)  # hardware-triggered cameras: allowed by the range
    hw.add("front", T0, "same stamp")
    hw.add("front", T0 + 1, "1 ns later")
    assert hw.match(T0) == {"front": "same stamp"}
    assert hw.match(T0 + 1) == {"front": "1 ns later"}
    assert hw.match(T0 + 2) == {"front": None}


def test_default_buffer_keeps_the_30_newest_images_and_at_least_one_is_required():
    s = CameraSynchronizer({"front": 0.0}, max_offset_s=0.0)
    for i in range(31):
        assert s.add("front", T0 + i * MS, i) is True
    assert s.match(T0, observe=False) == {"front": None}  # the 31st image evicted the first
    assert s.match(T0 + MS, observe=False) == {"front": 1}
    one = CameraSynchronizer({"front": 0.0}, max_offset_s=1.0, buffer_size=1)
    one.add("front", T0, "a")
    one.add("front", T0 + MS, "b")
    assert one.match(T0, observe=False) == {"front": "b"}
    with pytest.raises(ValueError, match="^buffer_size must be at least 1$"):
        CameraSynchronizer({"front": 0.0}, buffer_size=0)


def test_a_step_back_of_exactly_the_jump_threshold_is_not_a_jump():
    s = _sync(jump_threshold_s=1.0)
    s.add("front", T0 + 1 * NS, "newest")
    s.add("front", T0, "exactly 1 s back")
    assert s.time_jumps == 0
    s.add("front", T0 - 1, "1 ns more")  # more than 1 s behind the newest
    assert s.time_jumps == 1
    assert not s.observe_cloud(T0 + 1 * NS) and not s.observe_cloud(T0)
    assert s.observe_cloud(T0 - 1) and s.time_jumps == 2


def test_jumps_are_counted_per_jump_against_the_newest_stamp_seen():
    s = _sync(jump_threshold_s=1.0)
    s.add("front", T0 + 10 * NS, "a")
    s.add("front", T0 + 9_500 * MS, "b")  # 0.5 s back: reordering; the newest stays at +10 s
    assert s.time_jumps == 0
    s.add("front", T0 + 8_800 * MS, "c")  # 1.2 s behind the newest (only 0.7 s behind the last)
    assert s.time_jumps == 1
    s.add("back", T0 + 10 * NS, "d")
    s.add("back", T0, "e")
    assert s.time_jumps == 2
    s.observe_cloud(T0 + 10 * NS)
    assert not s.observe_cloud(T0 + 9_500 * MS)
    assert s.observe_cloud(T0 + 8_800 * MS)  # against the newest cloud, not the last one
    assert s.observe_cloud(T0 + 6 * NS)  # and after a jump, against the stamp it jumped to
    assert s.time_jumps == 4


def test_a_cloud_jump_keeps_images_up_to_the_threshold_after_it_and_their_newest_stamp():
    s = _sync(max_offset_s=0.0, jump_threshold_s=1.0)
    s.observe_cloud(T0 + 10 * NS)
    s.add("front", T0 + 1 * NS, "at the horizon")
    s.add("back", T0 + 1 * NS + 1, "past it")
    assert s.time_jumps == 0
    assert s.observe_cloud(T0)
    assert s.match(T0 + 1 * NS, observe=False) == {"front": "at the horizon", "back": None}
    s.add("front", T0 - 1, "1 ns over 1 s behind the kept image")  # the kept image still sets the newest
    assert s.time_jumps == 2
    assert s.match(T0 + 1 * NS, observe=False)["front"] is None


def test_decided_by_the_median_period_at_exactly_0_4_of_it():
    s = _sync()
    for dt in (-150, -100, -50, -25):  # gaps 50, 50, 25: period 50 ms, so 20 ms decides
        s.add("front", T0 + dt * MS, dt)
    assert not s.is_decided("front", T0)  # the best is 25 ms before the cloud
    s = _sync()
    for dt in (-150, -100, -50, -20):
        s.add("front", T0 + dt * MS, dt)
    assert s.is_decided("front", T0)  # 20 ms = 0.4 x 50 ms
    s = _sync()
    for dt in (-100, -50, -50, -20):  # a repeated stamp is not a gap: gaps 50, 30, period 50 ms
        s.add("front", T0 + dt * MS, dt)
    assert s.is_decided("front", T0)


def test_clear_empties_the_buffers_and_forgets_the_newest_stamps():
    s = _sync()
    s.observe_cloud(T0 + 10 * NS)
    s.add("front", T0 + 10 * NS, "old")
    s.clear()
    assert s.match(T0 + 10 * NS, observe=False) == {"front": None, "back": None}
    s.add("front", T0, "after")  # 10 s back, but nothing is remembered: not a jump
    assert not s.observe_cloud(T0)
    assert s.time_jumps == 0 and s.match(T0) == {"front": "after", "back": None}


def test_frame_carries_the_cloud_stamp_and_misses_accumulate():
    a = _assembler(timeout=0.1)
    a.add_image("front", T0, "F")
    a.add_cloud(T0, "c0", now_s=0.0)
    a.add_cloud(T0 + 100 * MS, "c1", now_s=0.0)
    f0, f1 = a.poll(0.5)
    assert (f0.stamp_ns, f1.stamp_ns) == (T0, T0 + 100 * MS)
    assert f0.missing == ["back"] and f1.missing == ["front", "back"]
    assert a.sync_misses == {"front": 1, "back": 2}


def test_timeout_is_measured_from_the_cloud_arrival_on_the_callers_clock():
    a = _assembler(timeout=0.1)
    a.add_cloud(T0, "cloud", now_s=100.0)
    assert a.poll(100.0625) == []  # not 200.0625 s (now + arrival) past a 0.1 s timeout
    (frame,) = a.poll(100.125)
    assert frame.cloud == "cloud" and frame.waited_s == 0.125


def test_a_waiting_cloud_does_not_hold_back_a_later_one_that_is_ready():
    a = _assembler(timeout=1.0)
    a.add_image("front", T0 - 50 * MS, "F-50")
    a.add_image("back", T0 - 50 * MS, "B-50")
    a.add_cloud(T0 + 100 * MS, "first", now_s=0.0)  # no image near it yet: undecided
    a.add_image("front", T0, "F0")
    a.add_image("back", T0, "B0")
    a.add_cloud(T0, "second", now_s=0.01)  # reordered 100 ms back; images at its stamp decide it
    (ready,) = a.poll(0.02)
    assert ready.cloud == "second" and ready.images == {"front": "F0", "back": "B0"}
    assert a.num_pending == 1
    (late,) = a.poll(1.0)
    assert late.cloud == "first" and late.missing == ["front", "back"]


def test_polling_an_older_pending_cloud_is_not_a_time_jump():
    a = _assembler(timeout=1.0)
    a.add_cloud(T0, "a", now_s=0.0)  # waits: no images
    a.add_image("front", T0 + 2 * NS, "F")
    a.add_image("back", T0 + 2 * NS, "B")
    a.add_cloud(T0 + 2 * NS, "b", now_s=0.5)  # 2 s later (a gap in the drive), ready at once
    out = a.poll(1.0)
    assert [f.cloud for f in out] == ["a", "b"]
    assert out[1].images == {"front": "F", "back": "B"}
    assert a.sync.time_jumps == 0


def test_default_pending_bound_is_4_and_drops_add_up_over_time_jumps():
    a = FrameAssembler(_sync(), camera_timeout_s=10.0)
    for i in range(5):
        a.add_cloud(T0 + 20 * NS + i * 100 * MS, i, now_s=0.0)
    assert a.num_pending == 4 and a.dropped_pending == 1
    a.add_cloud(T0 + 10 * NS, "loop", now_s=0.1)  # the 4 pending clouds are of the old timeline
    assert a.num_pending == 1 and a.dropped_pending == 5
    a.add_cloud(T0, "loop again", now_s=0.2)
    assert a.num_pending == 1 and a.dropped_pending == 6


def test_next_deadline_is_the_oldest_pending_arrival_plus_the_timeout():
    a = _assembler(timeout=0.1)
    assert a.next_deadline_s() is None
    a.add_cloud(T0 + 100 * MS, "b", now_s=2.5)
    a.add_cloud(T0, "a", now_s=2.0)
    assert abs(a.next_deadline_s() - 2.1) < 1e-9
