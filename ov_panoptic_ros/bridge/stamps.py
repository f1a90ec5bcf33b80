"""Message stamps as integer nanoseconds: the one conversion every layer uses (no float seconds drift)."""
from __future__ import annotations

NS = 1_000_000_000


def stamp_to_ns(stamp) -> int:
    """builtin_interfaces/Time (rclpy or rosbags) -> integer nanoseconds."""
    return int(stamp.sec) * NS + int(stamp.nanosec)


def ns_to_sec_nanosec(stamp_ns: int) -> tuple[int, int]:
    """Integer nanoseconds -> (sec, nanosec) for a builtin_interfaces/Time."""
    return int(stamp_ns // NS), int(stamp_ns % NS)
