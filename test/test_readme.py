"""The README's commands, run exactly as written (the pip path); the ROS-install blocks are only listed.

Each ```bash block is preceded by a marker: `<!-- readme-test: pip -->` (run in a fresh bash from the
repository root, must exit 0), `pip-background` (started and kept running, e.g. the node, until the next
`<!-- readme-test: stop-background -->`, then stopped with Ctrl-C and expected to exit cleanly), or
`ros-install` (needs a ROS 2 installation: not run here). A block without a marker fails the test, so no
command can slip into the README untested by accident.
"""
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"<!-- readme-test: ([a-z-]+) -->")
BLOCK = re.compile(r"```bash\n(.*?)```", re.S)


def readme_steps() -> list[tuple[str, str]]:
    """(kind, script) in README order; stop-background steps have no script."""
    text = (ROOT / "README.md").read_text()
    steps, pos = [], 0
    for block in BLOCK.finditer(text):
        markers = MARKER.findall(text, pos, block.start())
        steps += [(m, "") for m in markers if m == "stop-background"]
        kind = next((m for m in reversed(markers) if m != "stop-background"), None)
        assert kind is not None and text[:block.start()].rstrip().endswith("-->"), \
            f"README block without a readme-test marker right before it:\n{block.group(1)}"
        steps.append((kind, block.group(1)))
        pos = block.end()
    steps += [("stop-background", "") for m in MARKER.findall(text, pos) if m == "stop-background"]
    return steps


def test_every_readme_block_is_marked_and_the_pip_path_runs_something():
    kinds = [k for k, _ in readme_steps()]
    assert set(kinds) <= {"pip", "pip-background", "stop-background", "ros-install"}, kinds
    assert kinds.count("pip") >= 3 and kinds.count("pip-background") == kinds.count("stop-background") == 1


def _wait_for_node(background: subprocess.Popen, timeout_s: float = 300.0) -> None:
    """A human would wait for the node's 'ready' line before typing in the second terminal."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert background.poll() is None, "the README's background command exited early"
        probe = subprocess.run(["bash", "-c", "source .venv/bin/activate && ov-panoptic param list /ov_panoptic"],
                               cwd=ROOT, capture_output=True, text=True, timeout=120)
        if probe.returncode == 0:
            return
        time.sleep(1.0)
    pytest.fail("the README's node did not come up")


@pytest.mark.slow
def test_the_pip_path_of_the_readme_runs_as_written():
    background = None
    for kind, script in readme_steps():
        if kind == "pip":
            proc = subprocess.run(["bash", "-e", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=900)
            assert proc.returncode == 0, f"README block failed:\n{script}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        elif kind == "pip-background":
            background = subprocess.Popen(["bash", "-e", "-c", script], cwd=ROOT, start_new_session=True,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            _wait_for_node(background)
        elif kind == "stop-background":
            os.killpg(background.pid, signal.SIGINT)  # Ctrl-C in its terminal
            out, _ = background.communicate(timeout=60)
            assert background.returncode == 0, out[-3000:]
            assert "ready:" in out, out[-3000:]
