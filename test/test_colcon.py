"""`colcon build` of the package in a fresh workspace installs what `ros2 run`/`ros2 launch` need."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "ov_panoptic_ros"
SOURCES = ["setup.py", "setup.cfg", "package.xml", "LICENSE", "resource", "bin", PACKAGE, "launch", "config", "models",
           "README.md"]


def _colcon() -> str:
    exe = Path(sys.executable).with_name("colcon")
    return str(exe) if exe.exists() else shutil.which("colcon")


@pytest.mark.slow
def test_colcon_build_installs_package(tmp_path):
    src = tmp_path / "src" / PACKAGE
    src.mkdir(parents=True)
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            # not the in-tree build of the C extension: colcon must compile its own
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.so"))
        elif path.exists():
            shutil.copy2(path, src / name)
    proc = subprocess.run(
        [_colcon(), "--log-base", str(tmp_path / "log"), "build", "--base-paths", str(tmp_path / "src"),
         "--build-base", str(tmp_path / "build"), "--install-base", str(tmp_path / "install"),
         "--event-handlers", "console_direct-"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    prefix = tmp_path / "install" / PACKAGE
    share = prefix / "share" / PACKAGE
    for rel in ["package.xml", "launch/ov_panoptic.launch.py", "config/ov_panoptic.yaml",
                "config/calibration_demo.yaml", "config/ov_panoptic.rviz", "config/fastdds.xml",
                "models/teacher.pt", "models/ov_synthetic.pt"]:  # the default preset's models
        assert (share / rel).is_file(), f"not installed: share/{PACKAGE}/{rel}"
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE).is_file()
    exe = prefix / "lib" / PACKAGE / "ov_panoptic_node"
    assert exe.is_file() and os.access(exe, os.X_OK)

    # the installed executable runs from the install space and finds its share dir through the ament index
    site = next((prefix / "lib").glob("python3*/site-packages"))
    env = {**os.environ, "PYTHONPATH": str(site), "AMENT_PREFIX_PATH": str(prefix)}
    run = subprocess.run([str(exe), "--ros-args", "-p", "cameras:=[cam_nowhere]", "-p", "extrinsics_source:=file"],
                         capture_output=True, text=True, timeout=120, env=env)
    out = run.stdout + run.stderr
    assert run.returncode == 2, out
    assert str(share / "config" / "calibration_demo.yaml") in out and "cam_nowhere" in out, out

    # the C extension was compiled into the install space, and packs a cloud from there
    assert list((site / PACKAGE / "bridge").glob("_interleave*.so")), "not installed: the _interleave extension"
    code = ("import numpy as np; from ov_panoptic_ros.bridge import _interleave, packing;"
            "p = packing.pack_cloud({'a': np.arange(5, dtype=np.uint8), 'b': np.arange(5, dtype=np.float32)});"
            "assert bytes(p.data) == b''.join(bytes([i, 0, 0, 0]) + np.float32(i).tobytes() for i in range(5));"
            "print(_interleave.__file__)")
    check = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                           cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip().startswith(str(site)), check.stdout

    # `ov-panoptic` is on PATH after sourcing the workspace: setup.py installs a launcher into <prefix>/bin, for
    # which colcon writes a PATH hook; the launcher runs the lib/ console script with the Python that built it
    launcher = prefix / "bin" / "ov-panoptic"
    assert launcher.is_file() and os.access(launcher, os.X_OK), "not installed: bin/ov-panoptic"
    assert "PATH;bin" in (share / "hook" / "path.dsv").read_text()
    sourced = subprocess.run(
        ["sh", "-c", '. "$1/setup.sh" && command -v ov-panoptic && ov-panoptic --help', "sh",
         str(tmp_path / "install")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AMENT_PREFIX_PATH", "COLCON_PREFIX_PATH")})
    assert sourced.returncode == 0, sourced.stdout[-3000:] + sourced.stderr[-3000:]
    found, _, help_text = sourced.stdout.partition("\n")
    assert found == str(launcher), sourced.stdout[:500]
    assert "Usage" in help_text and "play" in help_text, help_text[:2000]
