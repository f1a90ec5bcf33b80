"""The training frames are read in a child process: the frame generators hold the GIL for much of their
numpy work, so run on a thread beside training they slowed both.

Measured on this project's 2-core machines while 30k-point synthetic frames were generated in the background
(tiny network, one torch thread; two rounds on a shared, busy host): a training step took 560-830 ms with the
generator on a thread against 210-390 ms with it in a process (190-400 ms alone), and the generator made
0.16-0.22 frames/s on the thread against 0.31-0.51 in the process. Once the frames come from the cache, either
way costs nothing measurable; so frames come from a process (spawned: it imports no torch), and their CLIP
features are computed on a thread of the training process (prefetch.py), where the one frozen encoder lives
(on the GPU when there is one).

The child runs data.FrameOrder on a source it opens from the same spec and sends (position, the frame's index
in the source, frame, ground truth, epoch length) through a bounded queue; without `images` (training from a
feature cache) it sends the frames without their camera images. It ignores Ctrl-C (the training process decides when to stop)
and ends when the training process does.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal

from ov_panoptic_ros.train.config import SourceConfig
from ov_panoptic_ros.train.data import TrainingDataError


class FrameReader:
    """Iterates (position, index in the source, frame, ground truth) of this process's training order, read by a
    child process."""

    def __init__(self, src: SourceConfig, seed: int, rank: int, world: int, cache_frames: int,
                 epoch_frames: int | None, start: int, depth: int, images: bool = True):
        self.epoch_frames = epoch_frames
        ctx = mp.get_context("spawn")
        self._queue = ctx.Queue(maxsize=depth)
        self._process = ctx.Process(target=_read, name="train-reader", daemon=True,
                                    args=(self._queue, src, seed, rank, world, cache_frames, epoch_frames, start,
                                          os.getpid(), images))
        self._process.start()

    def __iter__(self):
        while True:
            try:
                kind, value = self._queue.get(timeout=1.0)
            except queue.Empty:
                if not self._process.is_alive():
                    raise RuntimeError(f"the training frame reader died (exit code {self._process.exitcode})")
                continue
            if kind == "error":  # re-raised with the child's message (any exception type survives the trip)
                raise TrainingDataError(value)
            position, index, frame, truth, self.epoch_frames = value
            yield position, index, frame, truth

    def close(self) -> None:
        self._process.terminate()
        self._process.join()
        self._queue.close()
        self._queue.cancel_join_thread()


def _read(out, src: SourceConfig, seed, rank, world, cache_frames, epoch_frames, start, parent: int,
          images: bool) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import dataclasses

    from ov_panoptic_ros.data.factory import open_source
    from ov_panoptic_ros.train.data import FrameOrder

    try:
        order = FrameOrder(open_source(src.spec, **src.options), seed, rank, world, cache_frames, epoch_frames)
        for position, index, frame, truth in order.numbered_frames(start):
            if not images:
                frame = dataclasses.replace(frame, images=[], cameras=[])
            if not _put(out, ("frame", (position, index, frame, truth, order.epoch_frames)), parent):
                return
    except Exception as e:  # noqa: BLE001 - raised in the training process, which owns the console
        _put(out, ("error", str(e) if isinstance(e, TrainingDataError) else f"{type(e).__name__}: {e}"), parent)


def _put(out, item, parent: int) -> bool:
    """Blocks while the queue is full; False once the training process is gone."""
    while os.getppid() == parent:
        try:
            out.put(item, timeout=1.0)
            return True
        except queue.Full:
            continue
    return False
