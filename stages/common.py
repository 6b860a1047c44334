"""Shared pieces of every stage program at run time: results, errors, exit statuses.

Failures exit 1 with one line; a user never sees a Python traceback. The command line a stage
reads is `stages.arguments`.
"""

from __future__ import annotations

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


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ start-up chatter; must run before `import tensorflow`."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


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
