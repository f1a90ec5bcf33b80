"""Every logged scalar goes to TensorBoard event files (OUT/tensorboard) and to OUT/scalars.csv (step, tag,
value), rank 0 only; StepWindow adds steps/s and the share of time spent waiting for data over each logged
window. A resumed run first drops what the interrupted one logged after its checkpoint (the CSV rows, and
TensorBoard's events through `purge_step`), so the logs read as one uninterrupted run.
"""
from __future__ import annotations

import csv
import math
import time
from pathlib import Path

CSV_FILE, TENSORBOARD_DIR = "scalars.csv", "tensorboard"
COLUMNS = ("step", "tag", "value")


class Logbook:
    def __init__(self, out: Path, resume_step: int):
        from torch.utils.tensorboard import SummaryWriter

        self.path = out / CSV_FILE
        rows = []
        if self.path.exists():
            with open(self.path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        self._file = open(self.path, "w", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow(COLUMNS)
        self._csv.writerows([r[c] for c in COLUMNS] for r in rows)
        self._writer = SummaryWriter(str(out / TENSORBOARD_DIR), purge_step=resume_step + 1)

    def log(self, step: int, scalars: dict[str, float]) -> None:
        for tag, value in scalars.items():
            if value is None or not math.isfinite(value):
                continue
            self._writer.add_scalar(tag, value, step)
            self._csv.writerow((step, tag, repr(float(value))))
        self._file.flush()

    def close(self) -> None:
        self._writer.close()
        self._file.close()


class StepWindow:
    """Steps/s and the share of wall time spent waiting for data, over the steps since the last log."""

    def __init__(self, data):
        """`data`: what training waits on; its `wait_s` counts the seconds waited."""
        self.data = data
        self._reset()

    def _reset(self) -> None:
        self.t, self.wait, self.steps = time.perf_counter(), self.data.wait_s, 0

    def tick(self) -> None:
        self.steps += 1

    def share(self) -> float:
        elapsed = time.perf_counter() - self.t
        return (self.data.wait_s - self.wait) / elapsed if elapsed > 0 else 0.0

    def scalars(self) -> dict:
        elapsed = time.perf_counter() - self.t
        out = {"time/steps_per_s": self.steps / elapsed, "time/data_wait_share": self.share()}
        self._reset()
        return out
