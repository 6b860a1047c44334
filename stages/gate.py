"""stages.gate: a numeric `when` comparison whose result feeds a Tekton `when` (no CEL needed).

    python -m stages.gate --left 0.42 --op '<=' --right 1.0 --result pass=PATH

Writes `true` or `false` to the `pass` result. A side that is not a number is an
error (exit 1), so a broken metric never deploys a model silently; NaN compares false.
"""

from __future__ import annotations

import math
import operator
import sys
from collections.abc import Callable

from stages import arguments
from stages.common import StageError, run_stage

OUTPUTS = ("pass",)
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def build_parser():  # type: ignore[no-untyped-def]
    parser = arguments.stage_parser("stages.gate", "Compare two numbers; write `pass` = true|false.")
    parser.add_argument("--left", required=True, help="left operand (a number)")
    parser.add_argument("--op", required=True, choices=sorted(OPERATORS), help="comparison")
    parser.add_argument("--right", required=True, help="right operand (a number)")
    arguments.add_contract_arguments(parser, OUTPUTS)
    return parser


def number(text: str, side: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        shown = text if len(text) <= 40 else text[:39] + "…"
        raise StageError(f"{side} operand {shown!r} is not a number") from None
    if math.isinf(value) and text.strip().lower().lstrip("+-") not in ("inf", "infinity"):
        raise StageError(f"{side} operand {text!r} is out of range")
    return value


def evaluate(left: str, op: str, right: str) -> bool:
    a, b = number(left, "left"), number(right, "right")
    if math.isnan(a) or math.isnan(b):
        return False
    return OPERATORS[op](a, b)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)

    def body() -> None:
        passed = evaluate(args.left, args.op, args.right)
        for name, path in args.result:
            if name == "pass":
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("true" if passed else "false", encoding="utf-8")
        print(f"gate: {args.left} {args.op} {args.right} -> {'true' if passed else 'false'}")

    run_stage("stages.gate", body)


if __name__ == "__main__":
    main(sys.argv[1:])
