"""Why a `when` skipped a task, said plainly: the condition as written and the values it compared.

A workflow's numeric condition (`{{ steps.evaluate.outputs.mae }} <= {{ inputs.max-mae }}`) is
compiled into a gate task (stages.gate) whose `pass` result the step's Tekton `when` checks; a
message about `"false" in ["true"]` would tell a user nothing. So for a gate the explanation is the
condition the gate's description holds plus the numbers the gate compared (its `--left`, `--op`,
`--right` arguments resolved); for any other `when` it is the expression with Tekton references
spelled as the workflow names them (`{{ steps.S.outputs.R }}`, `{{ inputs.P }}`) where the
compiled task says which step it is, and the values.
"""

from __future__ import annotations

import json
import re
from typing import Any

from controller.compiler.internal import gate_condition
from controller.compiler.tasks import LABEL_INTERNAL, LABEL_STEP
from controller.executors.local.variables import Scope, Value, substitute, substitute_list

# Skip reasons that come from a condition: the task's own `when`, or a task whose input a skipped
# task never produced (`--fail-on-skip` counts both).
CONDITION_REASONS = ("WhenExpressionsFalse", "ResultsMissing")

_TASK_RESULT = re.compile(r"\$\(tasks\.([^.()\s]+)\.results\.([^.()\s\[]+)\)")
_PARAM = re.compile(r"\$\(params\.([^.()\s\[]+)\)")


def _shown(value: Value) -> str:
    return json.dumps(value)


def _labels(task: dict[str, Any]) -> dict[str, str]:
    return ((task.get("taskSpec") or {}).get("metadata") or {}).get("labels") or {}


def _as_written(text: str, tasks: dict[str, dict[str, Any]]) -> str:
    """Tekton references in `text` as the workflow wrote them, when the compiled tasks say so."""

    def task_result(match: re.Match[str]) -> str:
        step = _labels(tasks.get(match.group(1)) or {}).get(LABEL_STEP)
        return f"{{{{ steps.{step}.outputs.{match.group(2)} }}}}" if step else match.group(0)

    compiled = any(LABEL_STEP in _labels(t) for t in tasks.values())
    text = _TASK_RESULT.sub(task_result, text)
    return _PARAM.sub(lambda m: f"{{{{ inputs.{m.group(1)} }}}}", text) if compiled else text


def _written_value(text: str, tasks: dict[str, dict[str, Any]]) -> str:
    """A literal quoted as the resolved values are, a reference as the workflow names it."""
    return _as_written(text, tasks) if "$(" in text else _shown(text)


def _gate(expression: dict[str, Any], tasks: dict[str, dict[str, Any]], scope: Scope) -> str | None:
    """`CONDITION is false: LEFT OP RIGHT` when the expression reads a gate task's verdict."""
    match = _TASK_RESULT.fullmatch(str(expression.get("input", "")))
    gate = tasks.get(match.group(1)) if match else None
    if gate is None or _labels(gate).get(LABEL_INTERNAL) != "gate":
        return None
    spec = gate.get("taskSpec") or {}
    condition = gate_condition(str(spec.get("description", "")))
    params: dict[str, Value] = {
        f"params.{p['name']}": substitute(p.get("value", ""), scope) for p in gate.get("params") or []
    }
    args = [str(a) for step in spec.get("steps") or [] for a in step.get("args") or []]
    operands = {flag: substitute(args[i + 1], Scope(params)) for i, flag in enumerate(args[:-1])}
    if condition is None or not {"--left", "--op", "--right"} <= operands.keys():
        return None
    return f"{condition} is false: {operands['--left']} {operands['--op']} {operands['--right']}"


def explain(task: dict[str, Any], tasks: dict[str, dict[str, Any]], scope: Scope) -> str:
    """Why `task`'s `when` expressions are false: the first false one, as written and resolved."""
    for expression in task.get("when") or []:
        value = substitute(expression.get("input", ""), scope)
        options = substitute_list(list(expression.get("values") or []), scope)
        operator = expression.get("operator", "in")
        if (value in options) == (operator == "in"):
            continue
        gate = _gate(expression, tasks, scope)
        if gate is not None:
            return f"when {gate}"
        written = " ".join(
            [
                _as_written(str(expression.get("input", "")), tasks),
                operator,
                "[" + ", ".join(_written_value(str(v), tasks) for v in expression.get("values") or []) + "]",
            ]
        )
        resolved = f"{_shown(value)} {operator} [{', '.join(_shown(v) for v in options)}]"
        return f"when {written} is false: {resolved}"
    return "when expressions are false"


def skipped_by_condition(steps: list[dict[str, Any]]) -> str:
    """`STEP skipped: WHY; ...` for every step a condition skipped (run.json steps); "" for none."""
    return "; ".join(
        f"{s['name']} skipped: {s.get('message') or s['reason']}"
        for s in steps
        if s.get("phase") == "Skipped" and s.get("reason") in CONDITION_REASONS
    )
