"""Process-wide settings that keep per-frame latency steady: the C allocator, and OpenMP's waiting.

Every frame allocates and frees tens of MB of temporaries (projection grids, images, packed clouds).
glibc hands large freed blocks back to the kernel, so the next frame takes a page fault and a kernel
zero-fill per 4 KiB page again: projecting 100k points into 6 cameras then costs 2-4 ms more in most
frames (measured; see bench.ros). Keeping freed memory for reuse removes that; RSS then holds at the
per-frame peak instead of going up and down.

OpenMP workers that busy-wait between parallel regions fight each other and everything else on a small
shared machine: small sparse convolutions ran 5-20x slower (measured; a 30k-point frame's backbone took 10 s
instead of 0.3 s at a load of 5 on 2 cores). Workers that sleep the moment a region ends cost the other way on
an idle machine: the sparse backbone's many small ops each wake them, and the shipped models' frame took 136 ms
at two threads instead of 75 (`ov-panoptic bench --only shipped_model`). So workers spin briefly
(GOMP_SPINCOUNT 100000, tens of microseconds: back-to-back ops of one frame find them awake) and then sleep,
never spinning between frames: 87 ms idle, and 251 ms against 260 ms for pure passive waiting next to two
busy processes. Executables call `steady_latency()` once at start-up, before torch loads; a library does not.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 << 20  # glibc's largest accepted value on 64-bit


def keep_freed_memory(trim_threshold_bytes: int = 1 << 30) -> bool:
    """Serve blocks up to 32 MiB from the heap and keep up to `trim_threshold_bytes` of freed heap
    memory. Returns False where the C library has no mallopt (not glibc): nothing changes there."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold_bytes))


SPIN_COUNT = "100000"  # libgomp's GOMP_SPINCOUNT: spins before a worker sleeps (its own default is 300000)


def passive_openmp() -> bool:
    """OMP_WAIT_POLICY=PASSIVE with a brief spin (GOMP_SPINCOUNT) unless the user chose a policy; True when set
    here. Must run before torch loads."""
    if "OMP_WAIT_POLICY" in os.environ:
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)
    return True


def steady_latency() -> bool:
    """Both settings; returns keep_freed_memory's answer (False: not glibc, freed memory goes back)."""
    passive_openmp()
    return keep_freed_memory()
