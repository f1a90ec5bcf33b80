"""Atomic file writes: a reader (another rank, a resumed run, a report viewer) sees the whole file or none.

The data goes to a hidden temporary beside the file (one per process: ranks writing the same file never share
one), is flushed to disk and renamed over the real name; a temporary is removed when its write fails, Ctrl-C
included. Only a killed process leaves one (`temporaries` finds them for whoever redoes that file).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def temporaries(path: str | Path) -> list[Path]:
    """The temporaries of `path` left by any process."""
    path = Path(path)
    return list(path.parent.glob(f".{path.name}.*.tmp"))


def is_temporary(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(".tmp")


@contextmanager
def atomic_open(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file to write `path` through (np.savez and torch.save take it); renamed into place on exit."""
    path = Path(path)
    tmp = _temporary(path)
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, data: bytes | list[bytes]) -> int:
    """`data` (bytes, or chunks of them) written to `path` atomically; returns the bytes written."""
    chunks = [data] if isinstance(data, bytes) else data
    with atomic_open(path) as f:
        for chunk in chunks:
            f.write(chunk)
    return sum(len(c) for c in chunks)
