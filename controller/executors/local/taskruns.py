"""One pipeline task's TaskRuns: attempts, sidecars, matrix combinations and results.

`TaskRuns` is the part of `LocalRun` (engine.py) that runs a decided task: each attempt starts the
task's sidecars, waits for them to be ready, runs the steps with the TaskRun's timeout, and is
retried up to the task's `retries`; a matrixed task runs one TaskRun per combination and fans
their results in as arrays; a succeeded TaskRun's results are read back, checked and recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from controller.executors.local import matrix, memoryvolumes, serving
from controller.executors.local.containers import container_name, engine_step
from controller.executors.local.engines import Engine
from controller.executors.local.pods import Pod, PodError, needs_network, pod_containers
from controller.executors.local.process import Outcome, run_steps
from controller.executors.local.resolve import ResolvedTask, RunContext, resolve_task
from controller.executors.local.secrets import LocalSecrets, Redactor, SecretError
from controller.executors.local.sidecars import Sidecar, Sidecars
from controller.executors.local.store import TaskRecord
from controller.executors.local.tekton import UnsupportedError, timeout_seconds
from controller.executors.local.typed import ResultTypeError, check_results
from controller.executors.local.variables import Scope, Value, VariableError
from controller.executors.local.volumes import remove_volumes
from controller.protocol import MAX_RESULTS_BYTES, parse_progress


class TaskRuns:
    """Mixed into LocalRun, which sets these attributes."""

    ctx: RunContext
    engine: Engine | None
    secrets: LocalSecrets
    listener: Callable[[TaskRecord, str], None]
    parallel: int
    run_dir: Path
    home: Path
    name: str
    tasks: dict[str, dict[str, Any]]
    finally_: dict[str, dict[str, Any]]
    task_run_specs: dict[str, dict[str, Any]]
    results: dict[str, dict[str, Value]]
    combos: dict[str, list[matrix.Combination]]
    matrix_vars: dict[str, str]

    def _where(self, name: str) -> str:
        section = "finally" if name in self.finally_ else "tasks"
        names = list(self.finally_ if name in self.finally_ else self.tasks)
        return f"$.spec.pipelineSpec.{section}[{names.index(name)}]"

    async def _attempts(
        self,
        name: str,
        record: TaskRecord,
        task: dict[str, Any],
        scope: Scope,
        resolved: ResolvedTask,
        log_path: Path,
        label: str = "",
    ) -> tuple[Outcome, ResolvedTask]:
        """Run one TaskRun's steps, again on failure up to the task's `retries`; the last outcome.
        `label` prefixes its steps' exit codes in the record (a matrix combination's index)."""
        where = self._where(name)
        retries = int(task.get("retries") or 0)
        limit = self._task_timeout(name, where)
        task_dir = resolved.results_dir.parent
        outcome = None
        for attempt in range(retries + 1):
            record.attempts = max(record.attempts, attempt + 1)
            if attempt:  # phase stays Running between attempts: the scheduler must not stop the run
                resolved = resolve_task(
                    self.ctx, task, scope, task_dir, attempt, where, taskrun=resolved.taskrun
                )
                with log_path.open("a", encoding="utf-8") as log:
                    log.write(f"--- retry {attempt}/{retries} after: {outcome.message if outcome else ''}\n")
                record.metrics.clear()
                self.listener(record, "retry")
            shutil.rmtree(resolved.results_dir, ignore_errors=True)
            resolved.results_dir.mkdir(parents=True)
            deadline = time.monotonic() + limit if limit else None
            held = await self._hold_memory(resolved, attempt)  # before its user is given the folders
            try:
                outcome = await self._attempt(resolved, attempt, log_path, record, deadline)
            except PodError as exc:  # the engine could not make the pod: nothing of the task ran
                outcome = Outcome("Failed", str(exc))
            if not label:
                record.exit_codes = {}
            record.exit_codes.update({f"{label}{k}": v for k, v in outcome.exit_codes.items()})
            if outcome.reason == "TimedOut" and deadline is not None and time.monotonic() >= deadline:
                outcome.reason = "TaskRunTimeout"  # the TaskRun's timeout, not one step's
                outcome.message = f"TaskRun {resolved.taskrun} failed to finish within {_limit_text(limit)}"
            elif outcome.reason == "TimedOut":  # a step's own timeout fails the TaskRun (reason Failed)
                outcome.reason = "Failed"
            # the pod is gone, and its emptyDir volumes with it
            if held and self.engine is not None:
                await memoryvolumes.release(self.engine, held)
            remove_volumes(resolved.volumes_dir, resolved.memory_dir)
            if outcome.ok:
                break
        assert outcome is not None
        if not outcome.ok and retries:
            outcome.message = f"{outcome.message} (after {retries} retries)"
        return outcome, resolved

    async def _attempt(
        self, resolved: ResolvedTask, attempt: int, log_path: Path, record: TaskRecord, deadline: float | None
    ) -> Outcome:
        """One attempt: its sidecars started and ready, then its steps (in containers: in their images;
        with sidecars, all of them in one pod, pods.py)."""
        steps, cars = resolved.steps, _sidecars(resolved)
        pod: Pod | contextlib.nullcontext[None] = contextlib.nullcontext()
        if self.engine is not None:  # each step in its image, under its pod's restrictions
            engine = self.engine
            hidden = (self.secrets.path,)  # never shown to a container, whatever it mounts
            if cars:
                pod = Pod(
                    engine,
                    container_name(resolved.taskrun, "pod", attempt),
                    needs_network([*steps, *resolved.sidecars]),
                )
                steps, cars = pod_containers(engine, pod, resolved.taskrun, attempt, steps, cars, hidden)
            else:
                steps = [
                    engine_step(engine, s, container_name(resolved.taskrun, s.name, attempt), hidden)
                    for s in steps
                ]
        redact = sorted(self.secrets.used)
        async with pod, Sidecars(cars, log_path.parent, log_path.stem, redact) as running:
            if not await running.ready(deadline):  # the steps never start: a sidecar was not ready in time
                return Outcome("TimedOut", "sidecars were not ready before the timeout")
            return await run_steps(
                steps, log_path, lambda line: self._on_line(record, line), redact, deadline
            )

    async def _hold_memory(self, resolved: ResolvedTask, attempt: int) -> list[str]:
        """The attempt's `medium: Memory` volumes with a sizeLimit as tmpfs mounts of that size,
        where the engine can make them (memoryvolumes.py); the engine volumes to release."""
        if self.engine is None or not resolved.memory_limits or not memoryvolumes.can_size(self.engine):
            return []
        base = resolved.memory_dir or resolved.volumes_dir
        assert base is not None  # a task with volumes has a folder for them
        folders = {n: (base / n, size) for n, size in resolved.memory_limits.items() if (base / n).is_dir()}
        prefix = f"sluice-{resolved.taskrun}-{attempt}"
        return await memoryvolumes.hold(self.engine, self.ctx.run, prefix, folders)

    async def _collect(self, resolved: ResolvedTask, log_path: Path) -> dict[str, str]:
        """A succeeded TaskRun's results (and, in containers, the model server it asked for)."""
        if self.engine is not None:
            try:
                await serving.fulfil(self.engine, resolved, self.home, log_path)
            except serving.ServeError as exc:
                raise TaskRunFailure("ServeFailed", str(exc)) from None
        try:
            return read_results(resolved, Redactor(self.secrets.used))
        except ResultTypeError as exc:
            raise TaskRunFailure("FailedValidation", str(exc)) from None
        except ValueError as exc:
            raise TaskRunFailure("InvalidResults", str(exc)) from None

    async def _run_matrix(self, name: str, task: dict[str, Any], record: TaskRecord, scope: Scope) -> None:
        """One TaskRun per combination, up to --parallel at once, each with its own folder, log and
        retries; the task fails when one of them does, else its string results become arrays."""
        combos = self.combos[name]
        gate = asyncio.Semaphore(self.parallel)
        taskruns = [f"{self.name}-{name}-{i}" for i in range(len(combos))]

        async def one(i: int) -> dict[str, str]:
            async with gate:
                sub = matrix.combination_task(task, combos[i])
                task_dir = self.run_dir / "tasks" / name / str(i)
                log_path = self.run_dir / "logs" / f"{name}-{i}.log"
                resolved = resolve_task(
                    self.ctx, sub, scope, task_dir, 0, self._where(name), taskrun=taskruns[i]
                )
                outcome, resolved = await self._attempts(
                    name, record, sub, scope, resolved, log_path, f"{i}/"
                )
                if not outcome.ok:
                    raise TaskRunFailure(outcome.reason, outcome.message)
                return await self._collect(resolved, log_path)

        done = await asyncio.gather(*(one(i) for i in range(len(combos))), return_exceptions=True)
        with (self.run_dir / record.log).open("a", encoding="utf-8") as log:  # one log, in order
            for i, combo in enumerate(combos):
                part = self.run_dir / "logs" / f"{name}-{i}.log"
                shown = " ".join(f"{k}={v}" for k, v in combo.params.items())
                label = " ".join(
                    x for x in (taskruns[i], matrix.display_name(combo, task), f"({shown})") if x
                )
                log.write(f"=== taskrun {label}\n")
                log.write(part.read_text(encoding="utf-8", errors="replace") if part.exists() else "")
        for i, outcome in enumerate(done):
            if isinstance(outcome, BaseException):
                if not isinstance(
                    outcome, TaskRunFailure | UnsupportedError | VariableError | SecretError | OSError
                ):
                    raise outcome
                reason = outcome.reason if isinstance(outcome, TaskRunFailure) else "CannotRun"
                record.phase, record.reason, record.message = "Failed", reason, f"{taskruns[i]}: {outcome}"
                return
        names = [r["name"] for r in task["taskSpec"].get("results") or []]
        results = {r: [d[r] for d in done if isinstance(d, dict) and r in d] for r in names}
        self.matrix_vars.update(matrix.matrix_values(name, len(combos), results))
        self._succeed(name, record, dict(results), cached=False)
        record.message = f"{len(combos)} TaskRuns (matrix); not cached"

    def _task_timeout(self, name: str, where: str) -> float | None:
        """The TaskRun's timeout: taskRunSpecs[].timeout over the pipeline task's `timeout` (Tekton's
        precedence); None when neither is set (the run's deadlines still apply)."""
        override = self.task_run_specs.get(name, {})
        if "timeout" in override:
            index = list(self.task_run_specs).index(name)
            return timeout_seconds(override["timeout"], f"$.spec.taskRunSpecs[{index}].timeout")
        task = self.finally_.get(name) or self.tasks[name]
        return timeout_seconds(task["timeout"], f"{where}.timeout") if "timeout" in task else None

    def _succeed(self, name: str, record: TaskRecord, results: Mapping[str, Value], cached: bool) -> None:
        self.results[name] = dict(results)
        record.results = dict(results)
        record.phase = "Succeeded"
        record.reason = "Cached" if cached else "Succeeded"
        record.cached = cached

    def _on_line(self, record: TaskRecord, line: str) -> None:
        progress = parse_progress(line)
        if progress is not None:
            record.progress, record.progress_unit = (progress.epoch, progress.epochs), progress.unit
            for key, value in progress.metrics.items() if progress.unit == "epoch" else ():
                record.metrics.setdefault(key, []).append(value)
            self.listener(record, "line")


class TaskRunFailure(Exception):
    """A TaskRun that ran but failed after its steps (results, serving): its reason and message."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def read_results(resolved: ResolvedTask, redactor: Redactor | None = None) -> dict[str, str]:
    """The task's results; a result that holds a secret value (or an encoding of one) fails the
    task before it reaches run.json, the cache, a later task or the workflow's outputs."""
    results: dict[str, str] = {}
    for name in resolved.result_names:
        path = resolved.results_dir / name
        if path.is_file():
            results[name] = path.read_text(encoding="utf-8", errors="replace")
    if resolved.step_results is not None:  # `value: $(steps.s.results.r)`, each step's checked first
        results.update(resolved.step_results.task_results(resolved.spec_results))
    check_results(results, resolved.spec_results)
    size = sum(len(v.encode()) for v in results.values())
    if size > MAX_RESULTS_BYTES:
        raise ValueError(f"results total {size} bytes, over Tekton's {MAX_RESULTS_BYTES}-byte limit")
    leaking = sorted(name for name, value in results.items() if redactor and redactor.found_in(value))
    if leaking:
        raise ValueError(
            f"result {', '.join(leaking)} holds a secret value: not stored (write a reference instead)"
        )
    return results


def _sidecars(resolved: ResolvedTask) -> list[Sidecar]:
    """The attempt's sidecars as host processes, with their probes."""
    specs = resolved.spec.get("sidecars") or []
    return [
        Sidecar(car, spec.get("readinessProbe") or {}, spec.get("startupProbe") or {})
        for car, spec in zip(resolved.sidecars, specs, strict=True)
    ]


def _limit_text(seconds: float | None) -> str:
    return f"{seconds:g}s" if seconds is not None else "its timeout"
