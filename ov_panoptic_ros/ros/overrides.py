"""The parameter names a node was given on its command line, for the typo warning.

rclpy silently ignores overrides that nobody declares, and it has no public way to list them, so the node
reads them where they come from: `-p NAME:=VALUE` and `--params-file FILE` in the `--ros-args` sections of
its arguments (what `ros2 run` and `ros2 launch` pass), and the `parameter_overrides` given to its
constructor.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from ov_panoptic_ros.ros.params_file import ParamsFileError, node_parameters


def _ros_args(argv: Sequence[str]) -> list[str]:
    """The tokens of every `--ros-args ... [--]` section."""
    out, inside = [], False
    for token in argv:
        if token == "--ros-args":
            inside = True
        elif token == "--":
            inside = False
        elif inside:
            out.append(token)
    return out


def _node_param(spec: str, node_name: str) -> str | None:
    """`name:=value` or `node:name:=value` -> name, when it applies to this node."""
    name = spec.split(":=", 1)[0]
    if ":" in name:
        target, name = name.rsplit(":", 1)
        if target.strip("/").split("/")[-1] != node_name:
            return None
    return name


def _file_params(path: str, fqn: str) -> set[str]:
    """Names in the file's sections for this node; an unreadable file gives none (rcl reports it)."""
    try:
        return set(node_parameters(path, fqn))
    except ParamsFileError:
        return set()


def override_names(argv: Sequence[str], fqn: str, given: Iterable = ()) -> set[str]:
    """Names of the parameters `argv` and the constructor's `parameter_overrides` set for node `fqn`."""
    node_name = fqn.rsplit("/", 1)[-1]
    names = {p.name for p in given}
    tokens = _ros_args(argv)
    for flag, value in zip(tokens, tokens[1:]):
        if flag in ("-p", "--param"):
            name = _node_param(value, node_name)
            if name:
                names.add(name)
        elif flag == "--params-file":
            names |= _file_params(value, fqn)
    return names
