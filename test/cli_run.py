"""`ov-panoptic` run as a user runs it: a subprocess of this venv's entry point, output captured as text."""
import os
import subprocess
import sys
from pathlib import Path

CLI = [str(Path(sys.executable).parent / "ov-panoptic")]


def cli(*args, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """`ov-panoptic ARGS...` (paths and numbers as their str), in this environment plus `env`."""
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
