"""The rosbags typestore (Kilted message definitions) and the rosbags flavour of `bridge.builders.MessageKit`."""
from __future__ import annotations

import functools

import numpy as np
from rosbags.typesys import Stores, get_typestore

from ov_panoptic_ros.bridge.builders import MessageKit


@functools.lru_cache(maxsize=1)
def typestore():
    """The Kilted typestore (built once: building it parses every message definition)."""
    return get_typestore(Stores.ROS2_KILTED)


@functools.lru_cache(maxsize=1)
def rosbags_kit() -> MessageKit:
    """rosbags message classes; array fields as numpy arrays, as rosbags serializes them."""
    return MessageKit(classes=dict(typestore().types), f64=lambda a: np.asarray(a, dtype=np.float64),
                      u8=lambda a: np.frombuffer(a, dtype=np.uint8) if isinstance(a, bytes)
                      else np.ascontiguousarray(a, dtype=np.uint8).reshape(-1))
