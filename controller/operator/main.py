"""kopf wiring: which handler reacts to what, and how the operator process starts and stops.

`build_registry(runtime)` registers every handler on a fresh kopf registry (no global state, so
tests can run one operator after another in one process); `run()` is what `sluice operator` calls.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import kopf

from controller import settings as sluice_settings
from controller.api.meta import GROUP, VERSION, WORKFLOW_RUN
from controller.operator import memory, schedules, untaken
from controller.operator.cancel import honour_cancel
from controller.operator.health import Endpoint
from controller.operator.kube import ApiError, KubeClient
from controller.operator.runstatus import sync_run
from controller.operator.runtime import Runtime
from controller.operator.settings import TEKTON_GROUP, TEKTON_VERSION, OperatorConfig, apply_to_kopf
from controller.operator.workflowruns import delete_run, start_run
from controller.operator.workflows import reconcile_workflow

logger = logging.getLogger("sluice.operator")

RUN_LABEL = {sluice_settings.LABEL_RUN: kopf.PRESENT}
RETRY_ATTEMPTS = 8


class OperatorError(Exception):
    """The operator cannot start (one line for the user)."""


def _login(settings: kopf.OperatorSettings, **kwargs: Any) -> kopf.ConnectionInfo | None:
    info = kopf.login_with_service_account(settings=settings, **kwargs)
    return info or kopf.login_with_kubeconfig(settings=settings, **kwargs)


class Retrier:
    """Re-runs a failed event reaction later: watch-event handlers are not retried by kopf itself."""

    def __init__(self, runtime: Runtime):
        self._runtime = runtime
        self._tasks: set[asyncio.Task[None]] = set()

    def schedule(self, attempt: int, action: Callable[[], Awaitable[None]], what: str) -> None:
        if attempt >= RETRY_ATTEMPTS:
            logger.error("giving up on %s after %d attempts", what, attempt)
            return
        delay = self._runtime.config.backoff(attempt)

        async def later() -> None:
            await asyncio.sleep(delay)
            await self.run(attempt + 1, action, what)

        task = asyncio.get_running_loop().create_task(later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self, attempt: int, action: Callable[[], Awaitable[None]], what: str) -> None:
        try:
            await action()
        except ApiError as exc:
            logger.warning("%s failed (%s); will retry", what, exc)
            self.schedule(attempt, action, what)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def build_registry(rt: Runtime) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    retrier = Retrier(rt)
    background: list[asyncio.Task[None]] = []

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Load the loader and the compiler now, not on the first event: the first run is not
        # slower than the others, and the idle process is the whole operator.
        import controller.compiler
        import controller.spec  # noqa: F401

        apply_to_kopf(settings, rt.config)
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=f"operator.{GROUP}")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=f"operator.{GROUP}", key="last-handled-configuration"
        )
        info = _login(settings=settings)
        if info is None:
            raise kopf.PermanentError("no Kubernetes credentials: set KUBECONFIG or run in a cluster")
        rt.client = KubeClient(
            info,
            backoffs=rt.config.api_backoffs,
            timeout=rt.config.api_timeout,
            on_error=rt.metrics.api_error,
            on_write=rt.metrics.api_write,
        )
        rt.endpoint = Endpoint(rt.metrics, rt.health, rt.config.metrics_host, rt.config.metrics_port)
        await rt.endpoint.start()
        rt.health.ready = True
        background.append(asyncio.get_running_loop().create_task(memory.trim_periodically()))
        background.append(asyncio.get_running_loop().create_task(untaken.sweep_periodically(rt)))
        background.append(asyncio.get_running_loop().create_task(schedules.schedule_periodically(rt)))
        logger.info("sluice operator started; metrics on port %s", rt.endpoint.port)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        rt.health.ready = False
        for task in background:
            task.cancel()
        await retrier.stop()
        if rt.endpoint is not None:
            await rt.endpoint.stop()
        if rt._client is not None:
            await rt._client.close()

    @kopf.on.login(registry=registry)
    def login(settings: kopf.OperatorSettings, **kwargs: Any) -> kopf.ConnectionInfo | None:
        return _login(settings=settings, **kwargs)

    # --- Workflows ------------------------------------------------------------------------------

    @kopf.on.event(GROUP, VERSION, "workflows", registry=registry)
    async def workflow_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        snapshot = dict(body)
        meta = snapshot.get("metadata") or {}
        namespace, name = meta.get("namespace") or "default", meta.get("name") or ""

        async def again() -> None:
            fresh = await rt.client.get(f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/workflows/{name}")
            if fresh is not None:
                await reconcile_workflow(rt, "MODIFIED", fresh)

        rt.schedules.observe(type, snapshot)
        try:
            await reconcile_workflow(rt, type, snapshot)
        except ApiError as exc:
            logger.warning("workflow %s/%s: %s; will retry", namespace, name, exc)
            retrier.schedule(0, again, f"workflow {namespace}/{name}")

    # --- WorkflowRuns ---------------------------------------------------------------------------

    @kopf.on.event(GROUP, VERSION, "workflowruns", registry=registry)
    async def run_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        meta = body.get("metadata") or {}
        namespace, name = meta.get("namespace") or "default", meta.get("name") or ""
        if type == "DELETED":
            rt.runs.forget(namespace, name)
            rt.metrics.runs.forget(namespace, name)
            rt.written.pop((namespace, name), None)
            return
        info = rt.runs.observe(body)
        written = rt.written.get((namespace, name))
        rt.metrics.runs.set(namespace, name, str((written or info.status).get("phase") or "Pending"))
        snapshot = dict(body)
        await retrier.run(0, lambda: honour_cancel(rt, snapshot), f"cancel of run {namespace}/{name}")

    @kopf.on.resume(GROUP, VERSION, "workflowruns", registry=registry)
    @kopf.on.create(GROUP, VERSION, "workflowruns", registry=registry)
    async def run_started(body: kopf.Body, retry: int, **_: Any) -> None:
        with rt.metrics.time_reconcile(WORKFLOW_RUN):
            await start_run(rt, body, retry)

    @kopf.on.delete(GROUP, VERSION, "workflowruns", registry=registry)
    async def run_deleted(body: kopf.Body, **_: Any) -> None:
        await delete_run(rt, body)

    # --- Tekton ---------------------------------------------------------------------------------

    @kopf.on.event(TEKTON_GROUP, TEKTON_VERSION, "pipelineruns", labels=RUN_LABEL, registry=registry)
    async def pipelinerun_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        meta = body.get("metadata") or {}
        namespace, name = meta.get("namespace") or "default", meta.get("name") or ""
        # named after its run (its label may be the hashed form of a long name: not a name)
        run = name
        if type == "DELETED":
            rt.tekton.forget_pipelinerun(namespace, name)
            return
        rt.tekton.observe_pipelinerun(namespace, body)
        await _mirror(namespace, run)

    @kopf.on.event(TEKTON_GROUP, TEKTON_VERSION, "taskruns", labels=RUN_LABEL, registry=registry)
    async def taskrun_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        meta = body.get("metadata") or {}
        labels = meta.get("labels") or {}
        namespace, name = meta.get("namespace") or "default", meta.get("name") or ""
        pipelinerun = labels.get("tekton.dev/pipelineRun")
        if not pipelinerun or not labels.get(sluice_settings.LABEL_RUN):
            return
        run = str(pipelinerun)  # a Sluice PipelineRun is named after its run
        if type == "DELETED":
            rt.tekton.forget_taskrun(namespace, pipelinerun, name)
            return
        rt.tekton.observe_taskrun(namespace, pipelinerun, body)
        await _mirror(namespace, run)

    async def _mirror(namespace: str, run: str) -> None:
        with rt.metrics.time_reconcile("PipelineRun"):
            await retrier.run(0, lambda: sync_run(rt, namespace, run), f"status of run {namespace}/{run}")

    # Codesets (Git polling, webhooks, GitOps sync, triggers) share this runtime and registry.
    from controller.operator.codesets import handlers as codeset_handlers

    codeset_handlers.register(registry, rt)
    return registry


async def operate(
    rt: Runtime,
    *,
    namespaces: Collection[str] = (),
    standalone: bool = True,
    peering_name: str | None = None,
    priority: int = 0,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
) -> None:
    """Run the operator in the current event loop until `stop_flag` is set (tests, embedding)."""
    settings = kopf.OperatorSettings()
    # Watching listed namespaces needs no cluster-wide discovery of CRDs or namespaces, and the
    # namespaced RBAC of the chart does not grant it: don't ask (and don't log 403s).
    settings.scanning.disabled = bool(namespaces)
    await kopf.operator(
        registry=build_registry(rt),
        settings=settings,
        clusterwide=not namespaces,
        namespaces=list(namespaces),
        standalone=standalone,
        peering_name=peering_name,
        priority=priority,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
        memories=None,
    )


def run(
    *,
    config: OperatorConfig | None = None,
    namespaces: Collection[str] = (),
    peering_name: str | None = None,
    priority: int = 0,
    verbose: bool = False,
    debug: bool = False,
) -> None:
    """`sluice operator`: configure logging like `kopf run`, then run until SIGINT/SIGTERM."""
    try:
        found = _login(settings=kopf.OperatorSettings())
    except (OSError, ValueError, KeyError, kopf.LoginError) as exc:
        raise OperatorError(f"cannot read Kubernetes credentials: {exc}") from None
    if found is None:
        raise OperatorError("no Kubernetes credentials: set KUBECONFIG or run in a cluster")
    kopf.configure(verbose=verbose, debug=debug)
    memory.limit_arenas()
    rt = Runtime(config=config or OperatorConfig.from_env())
    asyncio.run(
        operate(
            rt,
            namespaces=namespaces,
            standalone=peering_name is None,
            peering_name=peering_name,
            priority=priority,
        )
    )
