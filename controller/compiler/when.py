"""Step conditions -> Tekton `when` expressions, with Tekton's default feature flags (no CEL).

String equality and membership map onto Tekton's own operators (`==` -> `in`,
`!=` -> `notin`); a numeric comparison (`<`, `<=`, `>`, `>=`) becomes a tiny
gate task running `stages.gate`, whose `pass` result the step's `when` checks.
"""

from __future__ import annotations

from typing import Any

from controller.compiler.errors import Problems
from controller.compiler.internal import GATE_RESULT, gate_task
from controller.compiler.references import RunScope
from controller.compiler.tasks import RunInfo, TaskPlan
from controller.spec.model import Step

_STRING_OPERATORS = {"==": "in", "in": "in", "!=": "notin", "notin": "notin"}


def compile_when(
    step: Step, gate_name: str | None, scope: RunScope, run: RunInfo, problems: Problems
) -> tuple[list[dict[str, Any]], TaskPlan | None]:
    """(Tekton when expressions for the step, the gate task to add or None).

    `gate_name` is the task name reserved for the gate when the condition is numeric.
    """
    when = step.when
    if when is None:
        return [], None
    path = problems.step_path(step.name, ".when")
    if when.numeric:
        if gate_name is None:
            raise ValueError("a numeric condition needs a gate task name")
        gate = gate_task(step, when, gate_name, scope, run, path)
        expression = {
            "input": f"$(tasks.{gate_name}.results.{GATE_RESULT})",
            "operator": "in",
            "values": ["true"],
        }
        return [expression], gate
    expression = {
        "input": scope.pipeline_text(when.left, step, path),
        "operator": _STRING_OPERATORS[when.op],
        "values": [scope.pipeline_text(value, step, path) for value in when.right],
    }
    return [expression], None
