"""How nuScenes input fails as a whole; one sample (or camera) that cannot be used is data/source.py's
FrameProblem."""
from __future__ import annotations


class NuScenesError(ValueError):
    """A dataroot, version folder, table or option that cannot be used; raised before any frame is yielded,
    and the message names the path (or the option) and why."""
