"""stages.summary: the `finally` task; records how every task of the run ended.

    python -m stages.summary --workflow W --run R --status $(tasks.status)
        --task NAME=STATUS ... --artifacts-dir DIR --result status=PATH

Writes DIR/summary.json ({workflow, run, status, tasks: {NAME: STATUS}}) and one
line per task to stdout. Tekton's statuses: Succeeded, Failed, None (skipped or
not run); the aggregate also Completed (some tasks skipped).
"""

from __future__ import annotations

import argparse
import sys

from stages import arguments
from stages.common import StageError, run_stage, write_json

OUTPUTS = ("status",)


def _task(text: str) -> tuple[str, str]:
    name, sep, status = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=STATUS, got {text!r}")
    return name, status


def build_parser():  # type: ignore[no-untyped-def]
    parser = arguments.stage_parser("stages.summary", "Record the run summary (the finally task).")
    parser.add_argument("--workflow", required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--status", required=True, help="aggregate status of the run's tasks")
    parser.add_argument("--task", action="append", default=[], type=_task, metavar="NAME=STATUS")
    arguments.add_contract_arguments(parser, OUTPUTS)
    return parser


def summarize(workflow: str, run: str, status: str, tasks: list[tuple[str, str]]) -> dict[str, object]:
    return {"workflow": workflow, "run": run, "status": status, "tasks": dict(tasks)}


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)

    def body() -> None:
        summary = summarize(args.workflow, args.run, args.status, args.task)
        if args.artifacts_dir is not None:
            try:
                args.artifacts_dir.mkdir(parents=True, exist_ok=True)
                write_json(args.artifacts_dir / "summary.json", summary)
            except OSError as exc:
                raise StageError(f"cannot write the summary: {exc.strerror or exc}") from None
        for name, path in args.result:
            if name == "status":
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(args.status, encoding="utf-8")
        print(f"run {args.run} of {args.workflow}: {args.status}")
        for name, status in args.task:
            print(f"  {name}: {status or 'None'}")

    run_stage("stages.summary", body)


if __name__ == "__main__":
    main(sys.argv[1:])
