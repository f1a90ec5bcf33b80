"""The one error a SemanticKITTI directory raises before any frame is read."""
from __future__ import annotations


class SemanticKittiError(ValueError):
    """A dataset directory that cannot be read as a whole (a wrong root, a missing sequence, a bad calib.txt or
    times.txt). The message names the path, so the user knows which file to fix; nothing has been yielded."""
