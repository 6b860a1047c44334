"""Shared pieces of every stage program: argument parsing, results, errors.

The stage contract (docs/architecture.md): `--<param> VALUE` per `with:` key (numbers and
booleans as JSON, lists and objects as compact JSON), `--result NAME=PATH` per requested
output and `--artifacts-dir DIR`. Bad arguments exit 2 with one line; failures exit 1 with
one line; a user never sees a Python traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from controller import protocol

EXIT_FAILED = 1
EXIT_USAGE = 2


class StageError(Exception):
    """A failure the user can act on; printed as one line, exit status 1."""


class StageArgumentParser(argparse.ArgumentParser):
    """argparse that reports usage errors on one line (exit 2) instead of a usage dump."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ start-up chatter; must run before `import tensorflow`."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


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


class Results:
    """Where the stage writes its requested outputs."""

    def __init__(self, requested: Sequence[tuple[str, Path]], artifacts_dir: Path | None) -> None:
        self.requested = dict(requested)
        self.artifacts_dir = artifacts_dir.resolve() if artifacts_dir else None

    def wants(self, name: str) -> bool:
        return name in self.requested

    def artifact_dir(self, name: str) -> Path:
        """The directory for artifact output `name` (created empty if it is new)."""
        if self.artifacts_dir is None:
            raise StageError(f"--artifacts-dir is required to write the {name!r} output")
        path = self.artifacts_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def write(self, name: str, value: str | float | int | bool) -> None:
        """Write a requested result (no trailing newline); unrequested ones are skipped."""
        target = self.requested.get(name)
        if target is None:
            return
        try:
            text = protocol.result_text(value)
        except ValueError as exc:  # a non-finite number
            raise StageError(str(exc)) from None
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def format_number(value: float) -> str:
    """Numbers as a `when` gate reads them: plain decimal, no exponent, no NaN."""
    try:
        return protocol.format_number(value)
    except ValueError as exc:
        raise StageError(str(exc)) from None


def run_stage(prog: str, body: Callable[[], None]) -> NoReturn:
    """Run a stage's body; turn failures into one line on stderr and an exit status."""
    try:
        body()
    except StageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # last line of defence: one line, never a traceback
        print(f"{prog}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(EXIT_FAILED)
    sys.exit(0)


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StageError(f"{what}: {path} does not exist") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise StageError(f"{what}: cannot read {path}: {exc}") from None
