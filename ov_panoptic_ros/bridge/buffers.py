"""Message payloads as numpy bytes, whatever the message flavour holds them in."""
from __future__ import annotations

import numpy as np


def as_uint8(data) -> np.ndarray:
    """The message payload as a flat uint8 array, without copying when it supports the buffer protocol."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:  # a plain list of ints
        return np.asarray(data, dtype=np.uint8)
