"""Bag errors: every one carries a message meant for the user, never a traceback."""
from __future__ import annotations

from pathlib import Path


def topic_listing(topic_types: dict[str, str]) -> str:
    """'topic [Type], ...' sorted: what an error shows so the user can name the right topics."""
    return ", ".join(f"{t} [{ty.rpartition('/')[2]}]" for t, ty in sorted(topic_types.items())) or "none"


class BagError(Exception):
    """A bag that cannot be used; the message says which bag and why."""


class BagNotFoundError(BagError):
    pass


class BagCorruptError(BagError):
    pass


class BagReadError(BagCorruptError):
    """Reading failed part-way; `messages_read` messages came out before the fault."""

    def __init__(self, message: str, messages_read: int = 0):
        super().__init__(message)
        self.messages_read = messages_read


class MissingTopicsError(BagError):
    def __init__(self, path: Path, missing: list[str], available: dict[str, str]):
        self.missing = list(missing)
        super().__init__(
            f"bag {path} lacks the topic(s) this needs: {', '.join(self.missing)}; topics in the bag:"
            f" {topic_listing(available)} (name yours with --topics FILE, --lidar-topic, --image-topic,"
            f" --info-topic; see docs/bag_layout.md)"
        )
