"""Starting a ready task, the scheduler's `launch` callback, as the part of `LocalRun` (engine.py) it is.

A local folder codeset is used in place (never cloned), a cache hit is restored, else the task's
TaskRuns run (taskruns.py) and what they wrote is kept; whatever happens, the task's record says
how it ended (a cancel, the run's timeout, a step that cannot run, a full disk).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from controller.executors.local import artifacts
from controller.executors.local.cache import Cache
from controller.executors.local.codesets import checkout_in_place
from controller.executors.local.decisions import FAILURE_IGNORED, TaskDecisions
from controller.executors.local.resolve import resolve_task
from controller.executors.local.secrets import Redactor, SecretError
from controller.executors.local.store import TaskRecord
from controller.executors.local.taskruns import TaskRunFailure, read_results
from controller.executors.local.tekton import UnsupportedError
from controller.executors.local.tracking import RunLogger
from controller.executors.local.variables import VariableError


class TaskLaunches(TaskDecisions):
    """Mixed into LocalRun, which sets these attributes (and TaskDecisions')."""

    cancelled: bool
    announced: set[str]
    use_cache: bool
    cache: Cache
    images: dict[str, str]
    extra_roots: list[Path]
    local_codesets: dict[str, Path]
    secret_dir: Path
    tracker: RunLogger | None

    async def _launch(self, name: str) -> None:
        record = self.record.tasks[name]
        record.phase, record.start = "Running", time.time()
        record.display_name = self._display_name(name)
        self.record.save()
        try:
            await self._run_task(name, record)
        except asyncio.CancelledError:
            if self.cancelled:
                record.phase, record.reason, record.message = "Cancelled", "Cancelled", "cancelled"
            else:  # the PipelineRun's (or its tasks') timeout cancels the TaskRuns still running
                record.phase, record.reason = "Failed", "TaskRunCancelled"
                record.message = "TaskRun cancelled as the PipelineRun it belongs to has timed out"
        except (UnsupportedError, VariableError, SecretError) as exc:
            record.phase, record.reason, record.message = "Failed", "CannotRun", str(exc)
        except OSError as exc:  # a full disk, a vanished folder: the task fails, the run goes on to finally
            record.phase, record.reason = "Failed", "CannotRun"
            record.message = f"{type(exc).__name__}: {exc}"
        task = self.finally_.get(name) or self.tasks[name]
        if record.phase == "Failed" and task.get("onError") == "continue":  # Tekton's FailureIgnored
            record.reason = FAILURE_IGNORED
        self._announce(record)  # a cache hit, a folder used in place, or a task that could not start
        record.end = time.time()
        self.listener(record, "end")
        self.record.save()

    def _area(self) -> artifacts.RunArea:
        """What a task's cache plan needs of this run (artifacts never sees the run itself)."""
        return artifacts.RunArea(
            name=self.name,
            run_dir=self.run_dir,
            home=self.home,
            secret_dir=self.secret_dir,
            extra_roots=tuple(self.extra_roots),
            workspace_paths=tuple(w.path for w in self.ctx.workspaces.values() if w.path is not None),
            cache=self.cache,
            images=self.images,
        )

    def _announce(self, record: TaskRecord) -> None:
        """The task's start event, once, sent when it is known how the task runs: a cache hit is
        announced already marked cached, so progress need not say a step started that never runs."""
        if record.name not in self.announced:
            self.announced.add(record.name)
            self.listener(record, "start")

    async def _run_task(self, name: str, record: TaskRecord) -> None:
        is_final = name in self.finally_
        task = self.finally_[name] if is_final else self.tasks[name]
        where = self._where(name)
        task_dir = self.run_dir / "tasks" / name
        scope = self._scope(name, where)
        if name in self.combos:
            self._announce(record)
            await self._run_matrix(name, task, record, scope)
            return
        resolved = resolve_task(self.ctx, task, scope, task_dir, 0, where)
        for step in resolved.steps if self.local_codesets else []:
            in_place = checkout_in_place(step.argv, self.local_codesets)
            if in_place is not None:  # a local folder codeset: used as it is, never cloned
                self._succeed(name, record, in_place, cached=False)
                if self.tracker is not None:
                    self.tracker.answered(name, in_place, cached=False)
                url = step.argv[step.argv.index("--url") + 1]
                record.message = f"local folder {self.local_codesets[url]} used in place"
                return
        plan = artifacts.plan(self._area(), task, resolved)
        record.inputs = plan.inputs_record()
        record.cache_key = plan.key
        tracked = self.tracker is not None and self.tracker.task_starting([s.argv for s in resolved.steps])
        if self.use_cache and plan.cacheable:
            entry = self.cache.lookup(plan.key)
            if entry is not None:
                results = await asyncio.to_thread(self.cache.restore, entry, self.run_dir, self.name)
                self._succeed(name, record, results, cached=True)
                if self.tracker is not None:  # a cached step still shows up in the MLflow run
                    self.tracker.answered(name, results, cached=tracked)
                record.artifacts = artifacts.outputs_record(self.run_dir, entry, results, plan.mounts)
                return
        log_path = self.run_dir / record.log
        self._announce(record)
        outcome, resolved = await self._attempts(name, record, task, scope, resolved, log_path)
        if not outcome.ok:
            record.phase, record.reason, record.message = "Failed", outcome.reason, outcome.message
            if task.get("onError") == "continue":  # results written before the failure still count
                with contextlib.suppress(ValueError, OSError):
                    self.results[name] = dict(read_results(resolved, Redactor(self.secrets.used)))
                    record.results = dict(self.results[name])
            return
        try:
            results = await self._collect(resolved, log_path)
        except TaskRunFailure as exc:
            record.phase, record.reason, record.message = "Failed", exc.reason, str(exc)
            return
        self._succeed(name, record, results, cached=False)
        record.artifacts = await asyncio.to_thread(plan.finish, results)
        if plan.why_not:
            record.message = f"not cached: {plan.why_not}"
