"""Launch-argument parsing the launch file needs, kept here so it is tested without `launch` installed."""
from __future__ import annotations

TRUE_WORDS = ("true", "1", "yes", "on")
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")


def parse_remaps(text: str) -> list[tuple[str, str]]:
    """`camera_remaps:="/cam_front/image_raw=/sensing/front/image /cam_front/camera_info=/sensing/front/info"`
    -> [(from, to), ...]: space- or comma-separated FROM=TO pairs (ROS remapping rules for the node)."""
    pairs = []
    for item in text.replace(",", " ").split():
        source, sep, target = item.partition("=")
        if not (sep and source and target) or "=" in target:
            raise ValueError(f"camera_remaps entry {item!r} is not FROM=TO (for example /cam_front/image_raw=/x)")
        pairs.append((source, target))
    return pairs


def parse_bool(name: str, text: str) -> bool:
    """A launch argument given as true/false (1/0, yes/no, on/off), case-insensitive."""
    word = text.strip().lower()
    if word not in TRUE_WORDS + ("false", "0", "no", "off"):
        raise ValueError(f"launch argument {name}:={text!r} is not true or false")
    return word in TRUE_WORDS


def parse_log_level(text: str) -> str:
    level = text.strip().lower()
    if level not in LOG_LEVELS:
        raise ValueError(f"launch argument log_level:={text!r} is not one of {', '.join(LOG_LEVELS)}")
    return level
