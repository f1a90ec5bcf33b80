"""`ov-panoptic config`: a preset or YAML file, fully resolved."""
from __future__ import annotations

import typer
import yaml

from ov_panoptic_ros.cli.app import app, fail


@app.command("config")
def show_config(name: str = typer.Argument("tiny", help="Preset name or YAML file.")) -> None:
    """Print the fully resolved pipeline config as YAML."""
    from ov_panoptic_ros.core.config import ConfigError, load_config

    try:
        cfg = load_config(name)
    except ConfigError as e:
        fail(str(e))
    typer.echo(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
