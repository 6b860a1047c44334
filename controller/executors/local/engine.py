"""The local executor: runs a compiled Tekton v1 PipelineRun's tasks as processes on this machine.

One `LocalRun` is one PipelineRun: it checks what it can honour, lays out
`$SLUICE_HOME/runs/<run>/` (the PipelineRun as compiled, `run.json`, `logs/`, `tasks/`,
`workspaces/`), walks the task graph (`dag.Scheduler`), then the `finally` tasks, resolves the
pipeline results and keeps `run.json` current after every change. Starting a ready task is
`launch.TaskLaunches`'s part, deciding whether it runs `decisions.TaskDecisions`'.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from controller.executors.local import matrix, memoryvolumes, pods, podtemplate, readonly, runprocess
from controller.executors.local.cache import Cache
from controller.executors.local.dag import Scheduler, build_graph
from controller.executors.local.decisions import FAILURE_IGNORED, Listener
from controller.executors.local.engines import Engine
from controller.executors.local.launch import TaskLaunches
from controller.executors.local.objects import ClusterObjects
from controller.executors.local.params import pipeline_params
from controller.executors.local.pipeline_results import pipeline_results
from controller.executors.local.pipelinerun_check import check_pipelinerun
from controller.executors.local.refcheck import check_references
from controller.executors.local.resolve import RunContext, pipeline_name, run_context_of
from controller.executors.local.secrets import LocalSecrets, Redactor
from controller.executors.local.store import RunRecord, TaskRecord
from controller.executors.local.taskrun import TASKRUN_LABEL
from controller.executors.local.tekton import UnsupportedError, timeout_seconds
from controller.executors.local.tracking import RunLogger
from controller.executors.local.variables import Value
from controller.executors.local.volumes import remove_run_memory
from controller.executors.local.workspaces import bind_workspaces


class LocalRun(TaskLaunches):
    def __init__(
        self,
        pipelinerun: dict[str, Any],
        home: Path,
        *,
        parallel: int | None = None,
        use_cache: bool = True,
        listener: Listener | None = None,
        workflow: str | None = None,
        extra_roots: list[Path] | None = None,
        local_codesets: dict[str, Path] | None = None,
        engine: Engine | None = None,
        objects: ClusterObjects | None = None,
        taskrun_names: dict[str, str] | None = None,
    ):
        check_pipelinerun(pipelinerun, containers=engine is not None)
        self.pod_templates = podtemplate.by_task(
            pipelinerun, pipeline_params(pipelinerun, run_context_of(pipelinerun)), engine is not None
        )
        read_only = readonly.read_only_workspaces(pipelinerun) if engine is None else []
        if read_only and readonly.unavailable():
            raise UnsupportedError(
                f"{read_only[0]}: host processes cannot get a read-only workspace here"
                f" ({readonly.unavailable()}): run with --containers"
            )
        self.objects = objects or ClusterObjects()  # the input's ConfigMaps and Secrets
        self.taskrun_names = taskrun_names or {}  # a TaskRun's one task -> the TaskRun's name
        self.engine = engine  # steps run in their images with it; None: as host processes
        self.object = pipelinerun
        self.home = home
        self.parallel = parallel or os.cpu_count() or 1
        self.use_cache = use_cache
        self.listener = listener or (lambda task, event: None)
        meta = pipelinerun.get("metadata", {})
        self.name: str = meta.get("name") or ""
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", self.name):
            raise UnsupportedError("$.metadata.name: a local run needs a DNS-style name")
        labels = meta.get("labels") or {}
        self.workflow = workflow or labels.get("sluice.dev/workflow") or self.name
        self.run_dir = home / "runs" / self.name
        self.spec = pipelinerun["spec"]
        self.pipeline = self.spec["pipelineSpec"]
        self.tasks = {t["name"]: t for t in self.pipeline.get("tasks") or []}
        self.finally_ = {t["name"]: t for t in self.pipeline.get("finally") or []}
        self.task_run_specs = {t["pipelineTaskName"]: t for t in self.spec.get("taskRunSpecs") or []}
        self.graph = build_graph(list(self.tasks.values()), "tasks", set())
        self.final_graph = build_graph(list(self.finally_.values()), "finally", set(self.tasks))
        check_references(pipelinerun)  # every $(...) known before anything runs
        self.images = self._local_images() if engine is not None else {}
        self.secrets = LocalSecrets(home, self.objects.secrets)
        self.cache = Cache(home, holds_secret=lambda text: Redactor(self.secrets.used).found_in(text))
        self.extra_roots = extra_roots or []  # local codeset folders: read in place, digested as inputs
        self.local_codesets = local_codesets or {}  # clone URL -> folder used in place of a checkout
        self.record = RunRecord(self.name, self.workflow, meta.get("namespace") or "default", self.run_dir)
        for section, tasks in (("tasks", self.tasks), ("finally", self.finally_)):
            for name in tasks:
                self.record.tasks[name] = TaskRecord(name, section, log=f"logs/{name}.log")
        self.results: dict[str, dict[str, Value]] = {}
        self.combos: dict[str, list[matrix.Combination]] = {}  # a matrixed task's, once it is decided
        self.matrix_vars: dict[str, str] = {}  # $(tasks.t.matrix.length), $(tasks.t.matrix.r.length)
        self.announced: set[str] = set()  # tasks whose start event was sent (TaskLaunches._announce)
        self.cancelled = False
        self.run_finally = False  # cancelled as Tekton's CancelledRunFinally: finally tasks still run
        self.timed_out = False
        self._schedulers: list[Scheduler] = []
        self.tracker: RunLogger | None = None  # MLflow tracking's logger process (tracking.py)
        # a fixed name (the run name is unique) keeps a secret workspace's path out of cache keys
        self.secret_dir = Path(tempfile.gettempdir()) / f"sluice-secrets-{os.getuid()}-{self.name}"

    def _local_images(self) -> dict[str, str]:
        """Every step's image, found in the engine's storage (reference -> id): a missing one fails
        the run before anything runs; nothing is pulled."""
        assert self.engine is not None
        tasks = [*self.tasks.values(), *self.finally_.values()]
        pods.refuse_without_pods(self.engine, [(self._where(t["name"]), t) for t in tasks])
        refs = {
            str(step.get("image") or (t["taskSpec"].get("stepTemplate") or {}).get("image") or "")
            for t in tasks
            for step in t["taskSpec"].get("steps") or []
        }
        refs |= {str(car.get("image") or "") for t in tasks for car in t["taskSpec"].get("sidecars") or []}
        found = {}
        for ref in sorted(refs):
            image_id = self.engine.image_id(ref) if ref else None
            if image_id is None:
                raise UnsupportedError(
                    f"image {ref!r} is not in {Path(self.engine.command).name}'s storage: build it (bash"
                    " scripts/images.sh builds the stages image; SLUICE_STAGES_IMAGE names it) or pull it"
                )
            found[ref] = image_id
        return found

    # ---- the run ----------------------------------------------------------------------------

    def _prepare(self) -> RunContext:
        # a detached run's folder exists already (its console.log, pid file and first record)
        if (self.run_dir / "pipelinerun.yaml").exists():
            raise UnsupportedError(f"run folder {self.run_dir} already exists; a local run name is used once")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        runprocess.write_pid(self.run_dir, os.getpid())
        (self.run_dir / "pipelinerun.yaml").write_text(
            yaml.safe_dump(self.object, sort_keys=False), encoding="utf-8"
        )
        self.secret_dir.mkdir(mode=0o700)
        self._own_secret_dir = True
        params = pipeline_params(self.object, run_context_of(self.object))
        self.record.params = dict(params)
        workspaces = bind_workspaces(
            self.object, self.run_dir, self.home, self.secrets, self.secret_dir, self.objects
        )
        return RunContext(
            self.name,
            self.record.namespace,
            # $(context.pipeline.name): a referenced Pipeline's name (references.py labels it)
            pipeline_name(self.object),
            self.workflow,
            self.run_dir,
            self.home,
            params,
            workspaces,
            self.secrets,
            containers=self.engine is not None,
            objects=self.objects,
            taskrun_names=self.taskrun_names,
            pod=dict(
                ((self.spec.get("taskRunTemplate") or {}).get("podTemplate") or {}).get("securityContext")
                or {}
            ),
            pod_templates=self.pod_templates,
        )

    def cancel(self, run_finally: bool = False) -> None:
        """Ctrl-C, SIGTERM, `sluice cancel`: kill every running task's processes (SIGTERM, then
        SIGKILL after a grace); no task starts any more. `run_finally` (Tekton's
        CancelledRunFinally) lets the finally tasks run next; a later cancel without it stops them too."""
        self.run_finally = run_finally and (self.run_finally or not self.cancelled)
        self.cancelled = True
        for scheduler in self._schedulers:
            if run_finally and scheduler.graph is self.final_graph:
                continue
            scheduler.cancel_running()

    def cancel_as_requested(self) -> None:
        """SIGTERM: as `sluice cancel` asked in the run folder (finally tasks run by default), or, with
        no request (a plain `kill`), stop everything."""
        self.cancel(bool(runprocess.cancel_requested(self.run_dir)))

    async def run(self) -> RunRecord:
        record = self.record
        record.start = time.time()
        record.phase = "Running"
        try:
            self.ctx = self._prepare()
        except BaseException:
            record.phase, record.end = "Failed", time.time()
            if getattr(self, "_own_secret_dir", False):
                shutil.rmtree(self.secret_dir, ignore_errors=True)
            raise
        record.save()
        try:  # steps spool their MLflow records to the run's logger (containers: tracking.container_spool)
            self.tracker = RunLogger.prepare(
                self.home, self.name, self.workflow, record.namespace, containers=self.engine is not None
            )
        except OSError as exc:  # tracking observes the run: without it the run still goes on
            record.warnings.append(f"mlflow: warning: the logger did not start: {exc}")
        if runprocess.cancel_requested(self.run_dir) is not None:  # asked before the handlers existed
            self.cancel_as_requested()
        try:
            await self._run_sections()
        finally:
            shutil.rmtree(self.secret_dir, ignore_errors=True)
            remove_run_memory(self.name)  # `medium: Memory` volumes of attempts cut short
            if memoryvolumes.can_size(self.engine):
                assert self.engine is not None
                memoryvolumes.release_run(self.engine, self.name)
            if self.tracker is not None:
                if self.cancelled:
                    self.tracker.stop()
                else:
                    failed = self.timed_out or any(t.phase == "Failed" for t in record.tasks.values())
                    record.warnings.extend(await self.tracker.close(failed))
            record.end = time.time()
            for task in record.tasks.values():
                if task.phase in ("Pending", "Running"):
                    task.phase, task.reason = (
                        ("Cancelled", "Cancelled") if self.cancelled else ("Skipped", "PipelineStopping")
                    )
            self._finish()
            record.save()
        return record

    async def _run_sections(self) -> None:
        timeouts = self.spec.get("timeouts") or {}
        start = time.monotonic()
        total = timeout_seconds(timeouts["pipeline"], "timeouts.pipeline") if "pipeline" in timeouts else None
        tasks_limit = timeout_seconds(timeouts["tasks"], "timeouts.tasks") if "tasks" in timeouts else None
        finally_limit = (
            timeout_seconds(timeouts["finally"], "timeouts.finally") if "finally" in timeouts else None
        )
        if tasks_limit is None and total is not None and finally_limit is not None:
            tasks_limit = max(0.0, total - finally_limit)
        pipeline_deadline = start + total if total else None
        tasks_deadline = _earliest(pipeline_deadline, start + tasks_limit if tasks_limit else None)
        scheduler = Scheduler(self.graph, self.parallel, self._phase, self._decide, self._launch)
        self._schedulers.append(scheduler)
        in_time = self.cancelled or await scheduler.run(tasks_deadline)
        pipeline_over = pipeline_deadline is not None and time.monotonic() >= pipeline_deadline
        if not in_time:
            self.timed_out = True
            self.record.message = (
                f"PipelineRun {self.name} failed to finish within {timeouts['pipeline']}"
                if pipeline_over
                else f"PipelineRun {self.name}'s tasks failed to finish within {timeouts.get('tasks')}"
            )
        stopped = (
            "PipelineTimedOut" if pipeline_over else "TasksTimedOut" if not in_time else "PipelineStopping"
        )
        for name in self.tasks:
            task = self.record.tasks[name]
            if task.phase == "Pending":
                task.phase = "Skipped"
                task.reason = "Cancelled" if self.cancelled else stopped
        if (self.cancelled and not self.run_finally) or not self.finally_:
            return
        now = time.monotonic()
        if pipeline_over:  # Tekton starts no finally task once the PipelineRun's own timeout is reached
            for name in self.finally_:
                self._settle(name, "Skipped", "PipelineTimedOut", "PipelineRun timeout has been reached")
            return
        finally_deadline = _earliest(pipeline_deadline, now + finally_limit if finally_limit else None)
        final = Scheduler(self.final_graph, self.parallel, self._phase, self._decide, self._launch)
        self._schedulers.append(final)
        if not await final.run(finally_deadline):
            self.timed_out = True
            self.record.message = self.record.message or f"PipelineRun {self.name}'s finally tasks timed out"
            for name in self.finally_:
                if self.record.tasks[name].phase == "Pending":
                    self._settle(
                        name, "Skipped", "FinallyTimedOut", "PipelineRun Finally timeout has been reached"
                    )

    def _finish(self) -> None:
        record = self.record
        phases = [t.phase for t in record.tasks.values()]
        if self.cancelled:
            record.phase = record.reason = "Cancelled"
            ran_finally = self.run_finally and bool(self.finally_)
            record.message = record.message or (
                "cancelled; finally tasks ran" if ran_finally else "cancelled"
            )
        elif self.timed_out or any(
            t.phase == "Failed" and t.reason != FAILURE_IGNORED for t in record.tasks.values()
        ):
            record.phase = "Failed"
            record.reason = "PipelineRunTimeout" if self.timed_out else "Failed"
            failed = [t for t in record.tasks.values() if t.phase == "Failed"]
            if failed and not record.message:
                record.message = f"task {failed[0].name} failed: {failed[0].message}"
        else:
            record.phase = "Succeeded"
            record.reason = (
                "Completed" if "Skipped" in phases else "Succeeded"
            )  # Tekton's two success reasons
        record.outputs = self._pipeline_results()

    def _pipeline_results(self) -> dict[str, Any]:
        """Pipeline results whose references resolved; the others are omitted, as in Tekton, which
        also fails the run when a task that succeeded lacks a result a pipeline result names."""
        phases = {name: task.phase for name, task in self.record.tasks.items()}
        outputs, invalid = pipeline_results(self.pipeline.get("results") or [], self.results, phases)
        labels = self.object["metadata"].get("labels") or {}
        if invalid and self.record.phase == "Succeeded" and TASKRUN_LABEL not in labels:
            self.record.phase = "Failed"
            self.record.message = f"pipeline results {invalid}: the referenced results don't exist"
        return outputs


def _earliest(*deadlines: float | None) -> float | None:
    present = [d for d in deadlines if d is not None]
    return min(present) if present else None
