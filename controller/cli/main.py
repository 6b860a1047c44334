"""Entry point of `sluice`: builds the typer app from the subcommand modules.

Exit status: 0 success, 1 invalid input or failed run, 2 usage error. No Python
traceback reaches a user: unexpected errors are reported on one line.
Subcommand modules must stay cheap to import (no TensorFlow, no kubernetes
client at import time) so `sluice --help` and `sluice validate` start fast.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from controller import __version__
from controller.cli import (
    commands_compare,
    commands_compile,
    commands_logs,
    commands_operator,
    commands_predict,
    commands_run,
    commands_runs,
    commands_spec,
    commands_submit,
)

app = typer.Typer(
    name="sluice",
    help="GitOps for machine-learning workflows: validate, compile and run workflows; operate on clusters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: see controller/cli/helptext.py
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
)

# Each module adds its commands; keep this list the only place that knows them all.
for module in (
    commands_spec,
    commands_run,
    commands_runs,
    commands_logs,
    commands_compare,
    commands_compile,
    commands_operator,
    commands_predict,
    commands_submit,
):
    module.register(app)


def command() -> Any:
    """The click command tree of `app`, its help in words (`TEXT`, `PATH`, `NAME=VALUE`)."""
    from typer.main import get_command

    from controller.cli.helptext import readable

    return readable(get_command(app))


def _version(value: bool) -> None:
    if value:
        print(f"sluice {__version__}")
        raise typer.Exit(0)


@app.callback()
def _options(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version,
        is_eager=True,
        help="Print the version (sluice VERSION) and exit.",
    ),
) -> None:
    """GitOps for machine-learning workflows: validate, compile and run workflows; operate on clusters."""


def main() -> None:
    try:
        command()(prog_name="sluice")
    except KeyboardInterrupt:
        print("sluice: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # the last line of defence: one line, never a traceback
        print(f"sluice: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
