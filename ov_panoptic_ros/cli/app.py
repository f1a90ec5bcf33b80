"""The `ov-panoptic` typer app and the exit codes every command shares.

Exit codes (scripts and CI rely on them):
  0  done (a replay: report written, every selected frame read)
  1  a replay's report was written but is partial (damaged bag tail), or no frame could be scored
  2  nothing run: a user error (missing or unreadable file, missing topics, bad config / mapping / arguments)
  130 interrupted (Ctrl-C); a replay's partial report is still written
"""
from __future__ import annotations

import typer

EXIT_PARTIAL, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="3D open-vocabulary panoptic segmentation: demo, replay, playback, benchmarks, configs.")


def fail(message: str) -> None:
    """End a command on a user error: one line on stderr, exit code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)
