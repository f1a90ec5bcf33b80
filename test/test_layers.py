"""The package's floors, checked from the code's own imports (every import, also those inside functions).

    core (1) <- bridge, data (2) <- ros (3) <- eval, train (4) <- bench, cli (5);   testing: rigs for tests/bench

A package may import its own floor's modules only where listed below, and the floors below it; nothing
imports upwards, and no two modules import each other in a cycle. Modules at the package root (the
package's __init__, quiet.py) are the ground every floor stands on. rclpy and ROS message packages are
imported only under ros/, testing/ and bench/: everything else runs without a ROS runtime.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "ov_panoptic_ros"
ALLOWED = {  # package -> packages it may import (besides itself)
    "core": set(),
    "bridge": {"core"},
    "data": {"core", "bridge"},
    "ros": {"core", "bridge", "data"},
    "eval": {"core", "bridge", "data", "ros"},
    "train": {"core", "bridge", "data", "eval"},
    "bench": {"core", "bridge", "data", "ros", "eval", "train", "testing"},
    "cli": {"core", "bridge", "data", "ros", "eval", "train", "bench"},
    "testing": {"core", "bridge", "data", "ros"},
}
RCLPY_PACKAGES = {"ros", "testing", "bench"}  # bench/ros.py measures the node in-process


def _is_ros_runtime(top: str) -> bool:
    return top == "rclpy" or top.endswith("_msgs") or top.endswith("_interfaces")


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        yield ".".join(parts), path


def _imports(name: str, path: Path) -> set[str]:
    """Absolute names of every module this one imports (relative imports resolved)."""
    out = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import module`
    return out


MODULES = dict(_modules())
GRAPH = {name: {m for m in _imports(name, path) if m in MODULES and m != name} for name, path in MODULES.items()}


def _package(module: str) -> str | None:
    """The floor package of a module; None for the package root's own modules."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (ROOT / parts[1]).is_dir()) else None


def test_every_module_is_on_a_known_floor():
    unknown = {_package(m) for m in MODULES} - set(ALLOWED) - {None}
    assert not unknown, f"packages without a floor in test_layers.ALLOWED: {unknown}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    own = _package(module)
    if own is None:
        return
    upward = sorted(m for m in GRAPH[module] if _package(m) not in (None, own) and _package(m) not in ALLOWED[own])
    assert not upward, f"{module} imports {upward}, which are not below the {own!r} floor"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_ros_testing_and_bench_import_rclpy(module):
    if _package(module) in RCLPY_PACKAGES:
        return
    ros = sorted(m for m in _imports(module, MODULES[module]) if _is_ros_runtime(m.split(".")[0]))
    assert not ros, f"{module} imports {ros}: rclpy and message packages belong under ros/, testing/ or bench/"


def test_no_import_cycles():
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    def visit(m, path):
        state[m] = 1
        for n in sorted(GRAPH[m]):
            if state.get(n) == 1:
                cycle = path[path.index(n):] + [n]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n, path + [n])
        state[m] = 2
    for m in sorted(GRAPH):
        if m not in state:
            visit(m, [m])


def test_the_scan_sees_imports_inside_functions():
    """The rules would be toothless if lazy imports were missed: the node imports torch lazily, and
    eval/live.py imports the ROS player at module level."""
    assert "ov_panoptic_ros.core.pipeline" in _imports("ov_panoptic_ros.ros.node", MODULES["ov_panoptic_ros.ros.node"])
    assert "ov_panoptic_ros.ros.player" in GRAPH["ov_panoptic_ros.eval.live"]
