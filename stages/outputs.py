"""stages.outputs: the steps the compiler puts around a native container step that declares outputs.

    python -m stages.outputs prepare --directory model=DIR ...
    python -m stages.outputs check --step train --result model=PATH --directory model=DIR \
        --result score=PATH ...

A container step writes its declared output NAME to `{{ outputs.NAME.path }}`: a scalar output's
Tekton result file, or a dataset/model output's directory in the run's artifact store
(`<artifacts>/<step>/<output>`, as the built-in stages lay theirs out).

- `prepare` (before the user's program) creates each directory, emptied of anything a failed
  earlier attempt left, so the program can write into it at once.
- `check` (after it) fails with one line naming the output when a directory is missing or empty or
  a scalar result was not written; it writes each directory's path into its result (what other
  steps' `{{ steps.S.outputs.O }}` read, as for a built-in stage's output) and drops one trailing
  newline from a scalar result (`echo 0.9 > ...` gives `0.9`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from stages import arguments
from stages.common import StageError, run_stage


def _pair(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, Path(path)


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.stage_parser(
        "stages.outputs", "Prepare and check a container step's declared outputs."
    )
    parser.add_argument("action", choices=("prepare", "check"))
    parser.add_argument("--step", default="", help="the step's name, for messages")
    parser.add_argument(
        "--directory",
        action="append",
        default=[],
        type=_pair,
        metavar="NAME=DIR",
        help="a dataset/model output and its directory",
    )
    parser.add_argument(
        "--result",
        action="append",
        default=[],
        type=_pair,
        metavar="NAME=PATH",
        help="an output and its Tekton result file",
    )
    return parser


def prepare(directories: list[tuple[str, Path]]) -> None:
    for name, path in directories:
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        print(f"outputs: {name} -> {path}")


def check(step: str, directories: list[tuple[str, Path]], results: list[tuple[str, Path]]) -> None:
    where = {name: path for name, path in directories}
    who = f"step {step!r}" if step else "the step"
    problems = []
    for name, result in results:
        directory = where.get(name)
        if directory is not None:
            if not directory.is_dir() or not any(directory.iterdir()):
                problems.append(
                    f"{who} wrote nothing to output {name!r}: write its files into "
                    f"{{{{ outputs.{name}.path }}}} ({directory})"
                )
                continue
            result.parent.mkdir(parents=True, exist_ok=True)
            result.write_text(str(directory), encoding="utf-8")
        elif not result.is_file():
            problems.append(f"{who} did not write output {name!r}: write it to {{{{ outputs.{name}.path }}}}")
        else:
            text = result.read_text(encoding="utf-8", errors="replace")
            if text.endswith("\n"):
                result.write_text(text.removesuffix("\n").removesuffix("\r"), encoding="utf-8")
    if problems:
        raise StageError("; ".join(problems))
    print(f"outputs: {', '.join(name for name, _ in results)} written")


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)

    def body() -> None:
        if args.action == "prepare":
            prepare(args.directory)
        else:
            check(args.step, args.directory, args.result)

    run_stage("stages.outputs", body)


if __name__ == "__main__":
    main(sys.argv[1:])
