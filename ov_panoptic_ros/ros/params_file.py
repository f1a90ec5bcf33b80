"""A ROS 2 params file read for one node, as rcl reads it at start-up: the `/**` section, then the node's own
(keyed by its fully qualified name, with or without the leading slash), nested keys joined with dots.

`ov-panoptic param load` sends these values; the node's unknown-parameter warning checks these names. Plain
YAML, not rclpy's parameter_dict_from_yaml_file: that one raises on Jazzy for a node without a section of its
own (the usual `/**`-only file) and skips it on Kilted.
"""
from __future__ import annotations

from pathlib import Path

import yaml


class ParamsFileError(ValueError):
    """The file cannot be read, or has no section for the node; the message names the file."""


def _flatten(params: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        out.update(_flatten(value, name + ".") if isinstance(value, dict) else {name: value})
    return out


def node_parameters(path: str | Path, node: str) -> dict:
    """Dotted name -> value for `node` (a name or fully qualified name); the node's own section wins."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ParamsFileError(f"params file {path}: {e}") from e
    fqn = "/" + node.strip("/")
    sections = [data[key]["ros__parameters"] for key in ("/**", fqn, fqn[1:])
                if isinstance(data, dict) and isinstance(data.get(key), dict)
                and isinstance(data[key].get("ros__parameters"), dict)]
    if not sections:
        raise ParamsFileError(f"params file {path} has no `{fqn}:` or `/**:` section with ros__parameters")
    merged: dict = {}
    for section in sections:
        merged.update(_flatten(section))
    return merged
