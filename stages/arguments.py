"""The command line of every stage program (the stage contract, docs/architecture.md).

`--<param> VALUE` per `with:` key (numbers and booleans as JSON, lists and objects as compact
JSON), `--result NAME=PATH` per requested output and `--artifacts-dir DIR`. Bad arguments exit 2
with one line, never a usage dump.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from stages.common import EXIT_USAGE


class StageArgumentParser(argparse.ArgumentParser):
    """argparse that reports usage errors on one line (exit 2) instead of a usage dump."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


# ---- value parsers (argparse `type=`); a ValueError/ArgumentTypeError becomes exit 2 ----


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {text!r} ({exc.msg})") from None


def json_int(text: str) -> int:
    value = _json(text)
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
    return int(value)


def json_number(text: str) -> float:
    value = _json(text)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
    return float(value)


def json_bool(text: str) -> bool:
    value = _json(text)
    if not isinstance(value, bool):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return value


def json_list(text: str) -> list[Any]:
    value = _json(text)
    if not isinstance(value, list):
        raise argparse.ArgumentTypeError(f"expected a JSON list, got {text!r}")
    return value


def json_object(text: str) -> dict[str, Any]:
    value = _json(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def positive_int(text: str) -> int:
    value = json_int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    value = json_int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


# ---- parser construction and the result/artifact contract ----


def stage_parser(prog: str, description: str) -> StageArgumentParser:
    parser = StageArgumentParser(prog=prog, description=description, allow_abbrev=False)
    return parser


def add_contract_arguments(parser: argparse.ArgumentParser, outputs: Sequence[str]) -> None:
    """`--result NAME=PATH` (repeatable) and `--artifacts-dir DIR`."""
    parser.add_argument(
        "--result",
        action="append",
        default=[],
        metavar="NAME=PATH",
        type=_result_type(outputs),
        help=f"write output NAME to PATH (outputs: {', '.join(outputs)})",
    )
    parser.add_argument(
        "--artifacts-dir",
        type=Path,
        default=None,
        help="directory for artifact outputs (written to DIR/NAME/)",
    )


def _result_type(outputs: Sequence[str]) -> Callable[[str], tuple[str, Path]]:
    def parse(text: str) -> tuple[str, Path]:
        name, sep, path = text.partition("=")
        if not sep or not name or not path:
            raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
        if name not in outputs:
            raise argparse.ArgumentTypeError(
                f"this stage has no output {name!r} (outputs: {', '.join(outputs)})"
            )
        return name, Path(path)

    return parse


def param_names(parser: argparse.ArgumentParser) -> set[str]:
    """The `with:` parameter names a parser accepts (everything but the contract options)."""
    names = set()
    for action in parser._actions:
        for option in action.option_strings:
            if option.startswith("--") and option not in {"--help", "--result", "--artifacts-dir"}:
                names.add(option[2:])
    return names
