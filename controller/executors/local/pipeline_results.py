"""A finished run's pipeline results, with Tekton's omission rules.

As Tekton's `ApplyTaskResultsToPipelineResults` (pkg/reconciler/pipelinerun/resources/apply.go):
a pipeline result refers to `$(tasks.T.results.R...)` or `$(finally.F.results.R...)`; one whose
task did not succeed (failed, skipped, never ran) is omitted and the run is not failed for it;
one whose task succeeded without the result (or with an index or key the value does not have) is
omitted too, and the run fails ("the referenced results don't exist"). A result value may be a
string, an array or an object, each element substituted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controller.executors.local.typed import parse_result
from controller.executors.local.variables import Scope, Value, VariableError, references, substitute_value

WHERE = "$.spec.pipelineSpec.results"


def pipeline_results(
    declared: list[dict[str, Any]], results: Mapping[str, Mapping[str, Value]], phases: dict[str, str]
) -> tuple[dict[str, Any], list[str]]:
    """(the results that resolved, the names of those that refer to results that do not exist)."""
    values: dict[str, Value] = {}
    for task, task_results in results.items():
        for name, text in task_results.items():
            value = parse_result(text)
            values[f"tasks.{task}.results.{name}"] = value
            values[f"finally.{task}.results.{name}"] = value
    outputs: dict[str, Any] = {}
    invalid: list[str] = []
    for i, result in enumerate(declared):
        refs = references(result.get("value"))
        if any(phases.get(ref.split(".")[1]) != "Succeeded" for ref in refs):
            continue  # a task that did not succeed: omitted, as in Tekton
        scope = Scope(values, ("tasks", "finally"), (), f"{WHERE}[{i}].value")
        try:
            outputs[result["name"]] = substitute_value(result.get("value"), scope)
        except VariableError:
            invalid.append(result["name"])
    return outputs, invalid
