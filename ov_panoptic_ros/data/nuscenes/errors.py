"""The two ways nuScenes input fails: the dataset cannot be used at all, or one sample (or camera) cannot."""
from __future__ import annotations


class NuScenesError(ValueError):
    """A dataroot, version folder, table or option that cannot be used; raised before any frame is yielded,
    and the message names the path (or the option) and why."""


class SampleProblem(Exception):
    """One sample's file (cloud, image, labels) that cannot be used: `kind` is the problem kind the source
    counts in its ProblemLog (bridge/problems.py kinds where one fits, else a source-specific one)."""

    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind
