"""The `ov-panoptic` typer app, its global options, and how every command ends.

Exit codes (scripts and CI rely on them):
  0  done (a replay: report written, every selected frame read)
  1  a replay's report was written but is partial (damaged bag tail), or no frame could be scored;
     or an internal error (a bug: rerun with --debug and report the traceback)
  2  nothing run: a user error (missing or unreadable file, missing topics, bad config / mapping / arguments),
     said in one line: what, why, what to do
  130 interrupted (Ctrl-C); a replay's partial report is still written
"""
from __future__ import annotations

import sys
import traceback

import typer

EXIT_PARTIAL, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
GLOBAL_FLAGS = ("--debug", "--verbose")

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="3D open-vocabulary panoptic segmentation: demo, replay, playback, benchmarks, configs.")
options = {"debug": False, "verbose": False}


@app.callback()
def global_options(
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an error (any position)."),
    verbose: bool = typer.Option(False, "--verbose", help="Show dependencies' warnings and INFO logs (any position)."),
) -> None:
    options.update(debug=debug, verbose=verbose)
    if verbose:
        from ov_panoptic_ros.quiet import verbose as show_everything

        show_everything()


def fail(message: str) -> None:
    """End a command on a user error: one line on stderr, exit code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def yaml_assignments(items: list[str], usage: str) -> dict:
    """`NAME=VALUE` arguments to {name: YAML value}; a malformed one ends the command with `usage`."""
    import yaml

    values = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            fail(f"{usage}, got {item!r}")
        values[name.strip()] = yaml.safe_load(value)
    return values


def global_flags_first(argv: list[str]) -> list[str]:
    """--debug / --verbose may be typed anywhere; typer reads them only before the command."""
    flags = [a for a in argv if a in GLOBAL_FLAGS]
    return flags + [a for a in argv if a not in GLOBAL_FLAGS]


def is_user_error(error: BaseException) -> bool:
    """The package's own exceptions carry messages for the user; so do file errors and bad values."""
    return type(error).__module__.startswith("ov_panoptic_ros.") or isinstance(error, (OSError, ValueError))


def run(argv: list[str]) -> int:
    """Run one command; an exception becomes one line and an exit code (the traceback only with --debug)."""
    try:
        app(args=global_flags_first(argv), prog_name="ov-panoptic")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - the one place every command's errors end
        if options["debug"] or "--debug" in argv:
            traceback.print_exc()
        if is_user_error(e):
            typer.echo(f"error: {e}", err=True)
            return EXIT_USAGE
        typer.echo(f"internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback, and please "
                   "report it)", err=True)
        return 1
    return 0


def main_exit(argv: list[str] | None = None) -> None:
    sys.exit(run(list(sys.argv[1:] if argv is None else argv)))
