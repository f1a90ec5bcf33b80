"""The real node as a child process (as on a vehicle), with its parameters from a bag's layout."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import yaml

NODE_NAME = "ov_panoptic"


def node_command() -> list[str]:
    """The installed `ov_panoptic_node` console script next to this Python, else the module."""
    script = Path(sys.executable).parent / "ov_panoptic_node"
    if script.exists():
        return [str(script)]
    found = shutil.which("ov_panoptic_node")
    return [found] if found else [sys.executable, "-m", "ov_panoptic_ros.ros.node"]


def _nested(flat: dict) -> dict:
    """{'a.b': 1} -> {'a': {'b': 1}}: the form ROS 2 parameter files use for dotted names."""
    out: dict = {}
    for key, value in flat.items():
        parts = key.split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def node_parameters(layout, config: str, calibration_file: Path, extra: dict | None = None) -> dict:
    """The node's parameters for this bag's topics and cameras (names from ros/params.py)."""
    params = {"pipeline.config": config, "calibration_file": str(calibration_file),
              "lidar_topic": layout.lidar_topic, "cameras": layout.camera_names}
    for cam in layout.cameras:
        params[f"{cam.name}.image_topic"] = cam.image_topic
        params[f"{cam.name}.info_topic"] = cam.info_topic
        params[f"{cam.name}.compressed"] = cam.compressed
        params[f"{cam.name}.rectified"] = cam.rectified  # its topic's name says so (data/bag/layout.py)
    params.update(extra or {})
    return params


class NodeProcess:
    """`ov_panoptic_node` as a child process, its output in a log file, stopped with SIGINT like Ctrl-C."""

    def __init__(self, params: dict, workdir: Path, command: list[str] | None = None, name: str = NODE_NAME):
        """`name` renames the node (`-r __node:=`), so its outputs stay apart from another node's on the domain."""
        workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.params_file = workdir / "node_params.yaml"
        self.params_file.write_text(yaml.safe_dump({name: {"ros__parameters": _nested(params)}}))
        self.log_path = workdir / "node.log"
        self._log = open(self.log_path, "w")
        cmd = (command or node_command()) + ["--ros-args", "-r", f"__node:={name}",
                                                  "--params-file", str(self.params_file)]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=os.environ.copy())

    def alive(self) -> bool:
        return self.proc.poll() is None

    def last_error(self) -> str:
        """The node's start-up error line (its FATAL), else the last line it logged."""
        self._log.flush()
        lines = [line.strip() for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()]
        fatal = [line for line in lines if "start-up error" in line or "FATAL" in line]
        return (fatal or lines or ["(nothing logged)"])[-1]

    def stop(self, timeout_s: float = 10.0) -> int:
        """SIGINT (the node shuts down cleanly), then SIGKILL after `timeout_s`; the exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode
