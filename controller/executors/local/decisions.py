"""Which ready task runs, as Tekton decides it, and how a decided task's phase is settled.

`TaskDecisions` is the part of `LocalRun` (engine.py) the scheduler calls back before it starts a
task: results it needs missing, `when` false, an empty matrix skip it; a reference to a result that
was never written or an invalid `when` or matrix fail it. It also builds the pipeline-phase scope
a task's params, `when` and displayName see.
"""

from __future__ import annotations

from collections.abc import Callable

from controller.executors.local import matrix, skips
from controller.executors.local.resolve import pipeline_scope, when_passes
from controller.executors.local.store import RunRecord, TaskRecord
from controller.executors.local.taskruns import TaskRuns
from controller.executors.local.variables import Scope, VariableError, substitute, task_result_refs

FAILURE_IGNORED = "FailureIgnored"  # a failed task with `onError: continue`: the run goes on
Listener = Callable[[TaskRecord, str], None]  # (task, event): start | line | end | retry


class TaskDecisions(TaskRuns):
    """Mixed into LocalRun, which sets these attributes (and TaskRuns')."""

    record: RunRecord

    def _phase(self, name: str) -> str:
        """A task's phase as the scheduler sees it: an ignored failure (`onError: continue`) stops
        nothing, so the tasks after it run."""
        task = self.record.tasks[name]
        return "Succeeded" if task.reason == FAILURE_IGNORED else task.phase

    def _settle(self, name: str, phase: str, reason: str, message: str = "") -> bool:
        task = self.record.tasks[name]
        task.phase, task.reason, task.message = phase, reason, message
        self.listener(task, "end")
        self.record.save()
        return False

    def _statuses(self) -> dict[str, str]:
        tekton = {"Succeeded": "Succeeded", "Failed": "Failed"}
        return {n: tekton.get(self.record.tasks[n].phase, "None") for n in self.tasks}

    def _decide(self, name: str) -> bool:
        """Run, skip or fail a ready task, as Tekton decides it."""
        is_final = name in self.finally_
        task = self.finally_[name] if is_final else self.tasks[name]
        for parent, result in task_result_refs(task):
            if self._phase(parent) != "Succeeded":
                return self._settle(
                    name, "Skipped", "ResultsMissing", f"task {parent} did not succeed, no result {result}"
                )
            if result not in self.results.get(parent, {}):
                if is_final or task.get("onError") == "continue":
                    return self._settle(
                        name, "Skipped", "ResultsMissing", f"task {parent} produced no result {result}"
                    )
                return self._settle(
                    name, "Failed", "InvalidTaskResultReference", f"task {parent} produced no result {result}"
                )
        scope = self._scope(name, self._where(name))
        try:
            passes, _ = when_passes(task, scope)
            why = "" if passes else skips.explain(task, {**self.tasks, **self.finally_}, scope)
        except VariableError as exc:
            return self._settle(name, "Failed", "InvalidWhen", str(exc))
        if not passes:
            return self._settle(name, "Skipped", "WhenExpressionsFalse", why)
        if "matrix" in task:  # fanned out now: its values may come from the results of earlier tasks
            if matrix.has_empty_array(task["matrix"], scope):
                return self._settle(name, "Skipped", "EmptyArrayInMatrixParams", "a matrix param is empty")
            try:
                self.combos[name] = matrix.fan_out(task["matrix"], scope, self._where(name))
            except (matrix.MatrixError, VariableError) as exc:
                return self._settle(name, "Failed", "InvalidMatrixParameters", str(exc))
        return True

    def _scope(self, name: str | None, where: str) -> Scope:
        """What a pipeline task's params, `when` and displayName see (finally: task statuses too)."""
        statuses = self._statuses() if name in self.finally_ else None
        task = (self.finally_.get(name) or self.tasks.get(name)) if name else None
        scope = pipeline_scope(self.ctx, self.results, statuses, where, task)
        scope.values.update(self.matrix_vars)
        if name in self.finally_:  # $(tasks.X.reason): Tekton's TaskRun reason, empty for a skipped task
            tekton = {"Cached": "Succeeded", "CannotRun": "Failed"}
            for other in self.tasks:
                record = self.record.tasks[other]
                reason = record.reason if record.phase in ("Succeeded", "Failed") else ""
                scope.values[f"tasks.{other}.reason"] = tekton.get(reason, reason)
        return scope

    def _display_name(self, name: str) -> str:
        """The pipeline task's `displayName`, its params and results substituted (shown in the summary)."""
        task = self.finally_.get(name) or self.tasks[name]
        if not isinstance(task.get("displayName"), str):
            return ""
        try:
            return str(substitute(task["displayName"], self._scope(name, self._where(name))))
        except VariableError:
            return str(task["displayName"])
