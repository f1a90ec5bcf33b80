"""`ov-panoptic param get|set|load|list` and `ov-panoptic vocab`: the node's parameters without the ros2 CLI."""
from __future__ import annotations

from pathlib import Path

import typer
import yaml

from ov_panoptic_ros.cli.app import app

param_app = typer.Typer(no_args_is_help=True, help="Get and set a running node's parameters (as `ros2 param`).")
app.add_typer(param_app, name="param")
NODE = typer.Argument("/ov_panoptic", help="The node's name.")


def _client(node: str):
    from ov_panoptic_ros.ros.param_client import ParamClient

    return ParamClient(node)


@param_app.command("get")
def get(node: str = NODE, name: str = typer.Argument(..., help="Parameter name, e.g. vocabulary.")) -> None:
    """Print a parameter's value (YAML)."""
    with _client(node) as client:
        typer.echo(yaml.safe_dump(client.get([name])[name], default_flow_style=True).strip())


@param_app.command("set")
def set_(node: str = NODE, name: str = typer.Argument(...),
         value: str = typer.Argument(..., help="A YAML value: 0.5, true, \"[car, 'pedestrian,person']\".")) -> None:
    """Set one parameter, as `ros2 param set NODE NAME VALUE`."""
    from ov_panoptic_ros.ros.param_client import value_from_text

    with _client(node) as client:
        client.set({name: value_from_text(value)})
    typer.echo("Set parameter successful")


@param_app.command("load")
def load(node: str = NODE, params_file: Path = typer.Argument(..., help="A ROS 2 params file.")) -> None:
    """Set every parameter the file gives this node in ONE request, as `ros2 param load NODE FILE`."""
    from ov_panoptic_ros.ros.params_file import node_parameters

    params = node_parameters(params_file, node)
    with _client(node) as client:
        client.set(params)
    typer.echo(f"Set {len(params)} parameter(s): {', '.join(params)}")


@param_app.command("list")
def list_(node: str = NODE) -> None:
    """The node's parameter names."""
    with _client(node) as client:
        typer.echo("\n".join(client.list()))


@app.command()
def vocab(classes: list[str] = typer.Argument(None, help="Classes; 'pedestrian,person' gives synonyms."),
          stuff: list[str] = typer.Option([], "--stuff", help="A class that is stuff (repeat); default: none."),
          node: str = typer.Option("/ov_panoptic", "--node", help="The node's name.")) -> None:
    """Show the node's vocabulary, or set classes and stuff classes together (one request: never rejected
    because the old stuff classes are not in the new vocabulary)."""
    with _client(node) as client:
        if classes:
            client.set({"vocabulary": list(classes), "stuff_classes": list(stuff)})
        current = client.get(["vocabulary", "stuff_classes"])
    typer.echo(f"vocabulary: {current['vocabulary']}\nstuff_classes: {current['stuff_classes']}")
