"""keep_freed_memory: freed frame-sized buffers stay in the process (checked in a fresh interpreter)."""
import subprocess
import sys

SCRIPT = """
import sys
import numpy as np
from ov_panoptic_ros.core.process import keep_freed_memory

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024

if sys.argv[1] == "keep":
    assert keep_freed_memory()
drops = []
for _ in range(3):
    frame = [np.ones(8 << 20, np.uint8) for _ in range(4)]  # a frame's temporaries, touched
    before = rss_mb()
    del frame
    drops.append(before - rss_mb())
print(max(drops[1:]))  # after the first round, as glibc adapts its threshold to the first free
"""


def freed_mb(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def test_freed_buffers_go_back_to_the_kernel_by_default_and_stay_when_kept():
    assert freed_mb("default") > 8.0  # glibc trims the freed 32 MB (over twice its largest block)
    assert freed_mb("keep") < 1.0


def test_openmp_waits_passively_unless_the_user_chose(monkeypatch):
    import os

    from ov_panoptic_ros.core.process import passive_openmp

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    assert passive_openmp() and os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    assert os.environ["GOMP_SPINCOUNT"] == "100000"  # a brief spin, then sleep
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setenv("GOMP_SPINCOUNT", "7")
    assert passive_openmp() and os.environ["GOMP_SPINCOUNT"] == "7"  # the user's spin count stays
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.delenv("GOMP_SPINCOUNT")
    assert not passive_openmp() and os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    assert "GOMP_SPINCOUNT" not in os.environ  # the user's policy is theirs entirely
