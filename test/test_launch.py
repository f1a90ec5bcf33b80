"""The launch file, checked without `launch` (not installable here): by its syntax tree.

Every executable of this package it starts is a console script in setup.py, every file it points
at exists in config/ (and is installed by setup.py's globs), every node parameter it sets is one the
node declares, and the params file it passes names only declared parameters (rclpy would silently
ignore a typo).
"""
import ast
import importlib
import re
from pathlib import Path

import pytest
import yaml

from ov_panoptic_ros.ros.launch_args import parse_bool, parse_log_level, parse_remaps
from ov_panoptic_ros.ros.params import PARAMETERS, parameter_names

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch" / "ov_panoptic.launch.py"
REQUIRED_ARGUMENTS = {"config", "calibration_file", "device", "lidar_topic", "camera_remaps", "namespace",
                      "use_sim_time", "log_level", "rviz", "fixed_frame"}
OPTIONAL_FOREIGN_PACKAGES = {"rviz2"}  # started only under a condition (rviz)
RCLPY_PARAMETERS = {"use_sim_time"}  # every rclpy node declares it


def _module_constants(tree: ast.Module) -> dict:
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


def _value(node, constants):
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    if isinstance(node, ast.JoinedStr):  # f"..." with module constants substituted
        return "".join(str(_value(v.value, constants)) if isinstance(v, ast.FormattedValue) else v.value
                       for v in node.values)
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def _calls(tree, name):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == name]


def console_scripts() -> dict[str, str]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    consts = _module_constants(tree)
    (setup,) = _calls(tree, "setup")
    entry = next(k.value for k in setup.keywords if k.arg == "entry_points")
    scripts = next(v for k, v in zip(entry.keys, entry.values) if _value(k, consts) == "console_scripts")
    out = {}
    for item in scripts.elts:
        name, target = (s.strip() for s in _value(item, consts).split("="))
        out[name] = target
    return out


def _launch():
    tree = ast.parse(LAUNCH.read_text())
    return tree, _module_constants(tree)


def test_launch_file_compiles():
    compile(LAUNCH.read_text(), str(LAUNCH), "exec")


def test_executables_are_console_scripts_that_resolve():
    tree, consts = _launch()
    scripts = console_scripts()
    nodes = _calls(tree, "Node")
    assert nodes
    ours = 0
    for call in nodes:
        kw = {k.arg: k.value for k in call.keywords}
        package, executable = _value(kw["package"], consts), _value(kw["executable"], consts)
        if package == "ov_panoptic_ros":
            ours += 1
            assert executable in scripts, f"{executable} is not a console script in setup.py"
            module, func = scripts[executable].split(":")
            assert callable(getattr(importlib.import_module(module), func))
        else:
            assert package in OPTIONAL_FOREIGN_PACKAGES and "condition" in kw, f"{package} must be optional"
    assert ours == 1


def test_launch_arguments_declared():
    tree, consts = _launch()
    declared = {_value(c.args[0], consts) for c in _calls(tree, "DeclareLaunchArgument")}
    assert REQUIRED_ARGUMENTS <= declared
    used = {_value(c.args[0], consts) for c in _calls(tree, "LaunchConfiguration") if c.args}
    used = (used - {None}) | set(consts["PARAMETER_ARGUMENTS"])  # None: the loop over PARAMETER_ARGUMENTS
    assert used <= declared, f"undeclared launch arguments: {used - declared}"


def test_referenced_files_exist_and_are_installed():
    tree, _ = _launch()
    joins = [c for c in ast.walk(tree) if isinstance(c, ast.Call) and getattr(c.func, "attr", None) == "join"]
    files = [c.args[-1].value for c in joins if isinstance(c.args[-1], ast.Constant)]
    assert {"ov_panoptic.yaml", "ov_panoptic.rviz"} <= set(files)
    for name in files:
        assert (ROOT / "config" / name).is_file(), f"launch references config/{name}, which does not exist"
        assert name.endswith((".yaml", ".rviz"))  # setup.py installs config/*.yaml and config/*.rviz


def test_parameters_set_by_launch_are_declared_by_the_node():
    tree, consts = _launch()
    declared = parameter_names()
    set_by_launch = set(consts["PARAMETER_ARGUMENTS"].values())
    for call in _calls(tree, "Node"):
        for kw in call.keywords:
            if kw.arg == "parameters":
                for d in (e for e in kw.value.elts if isinstance(e, ast.Dict)):
                    set_by_launch |= {_value(k, consts) for k in d.keys}
    assert set_by_launch and set_by_launch <= declared | RCLPY_PARAMETERS, set_by_launch - declared


def _flatten(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flatten(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def test_params_file_names_only_declared_parameters_with_matching_types():
    data = yaml.safe_load((ROOT / "config" / "ov_panoptic.yaml").read_text())
    assert list(data) == ["/**"]  # applies under any node name or namespace
    params = dict(_flatten(data["/**"]["ros__parameters"]))
    declared = parameter_names(params.get("cameras", []))
    assert set(params) <= declared, f"unknown parameters in config/ov_panoptic.yaml: {set(params) - declared}"
    py_types = {"string": str, "bool": bool, "int": int, "double": float, "string[]": list}
    from ov_panoptic_ros.ros.params import _TYPE_NAMES, SPECS

    for name, value in params.items():
        if name in SPECS:
            assert isinstance(value, py_types[_TYPE_NAMES[SPECS[name].type]]), (name, value)
    assert {p.name for p in PARAMETERS if p.default is not None} - set(params) <= {"prompt_templates"}


def test_both_nodes_get_the_namespace_and_sim_time_and_rviz_draws_the_node_outputs_relative():
    tree, _ = _launch()
    for call in _calls(tree, "Node"):
        kw = {k.arg for k in call.keywords}
        assert {"namespace", "parameters"} <= kw
    rviz = (ROOT / "config" / "ov_panoptic.rviz").read_text()
    topics = re.findall(r"Value: (\S*ov_panoptic/\S+)", rviz)
    assert topics and all(not t.startswith("/") for t in topics), topics  # resolved in RViz's namespace


def test_launch_argument_parsing_names_the_bad_value():
    assert parse_remaps("") == []
    assert parse_remaps("/cam_front/image_raw=/a/b, /lidar/points=/c") == [("/cam_front/image_raw", "/a/b"),
                                                                          ("/lidar/points", "/c")]
    for bad in ("/cam_front/image_raw", "=/x", "/a=", "/a=/b=/c"):
        with pytest.raises(ValueError, match=f"camera_remaps entry {re.escape(repr(bad))} is not FROM=TO"):
            parse_remaps(bad)
    assert parse_bool("use_sim_time", "True") and not parse_bool("use_sim_time", "0")
    with pytest.raises(ValueError, match="use_sim_time:='maybe' is not true or false"):
        parse_bool("use_sim_time", "maybe")
    assert parse_log_level("WARN") == "warn"
    with pytest.raises(ValueError, match="log_level:='loud' is not one of debug, info"):
        parse_log_level("loud")
