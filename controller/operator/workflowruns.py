"""The WorkflowRun reconciler: compile, create exactly one PipelineRun, cancel it on deletion.

Error classes: invalid user input (a Workflow that does not validate, inputs the compiler
refuses) is permanent: the run gets `Stalled` and kopf does not retry. A missing Workflow or
Codeset revision, or an API failure that outlived the client's retries, is temporary: kopf
retries the handler with a growing delay. Each object has its own kopf worker, so one bad run
never holds up another.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from controller import settings as sluice_settings
from controller.api.conditions import (
    CANCELLED,
    CODESET_NOT_FOUND,
    COMPILE_FAILED,
    CONCURRENCY_FORBIDDEN,
    CONFLICT,
    CREATE_REFUSED,
    CREATED,
    INVALID_SPEC,
    INVALID_WORKFLOW,
    NAME_CONFLICT,
    REPLACED,
    REVISION_UNKNOWN,
    WORKFLOW_NOT_FOUND,
)
from controller.api.meta import WORKFLOW_RUN, object_stub, owner_reference
from controller.api.workflow import parse_workflow
from controller.api.workflowrun import TERMINAL_PHASES, parse_workflowrun_spec
from controller.operator import conditions as cond
from controller.operator.cancel import cancel_pipelinerun, cancel_unstarted
from controller.operator.events import post_event
from controller.operator.kube import ApiError, resource_path
from controller.operator.mirror import STEPS_ANNOTATION, pipelinerun_phase
from controller.operator.runstatus import set_run_status, sync_run, update_workflow
from controller.operator.runtime import Runtime, sluice_path, tekton_path
from controller.operator.settings import LABEL_EXTENSION
from controller.operator.state import RunInfo
from controller.operator.workflows import diagnostic_message

logger = logging.getLogger("sluice.operator.runs")


class Waiting(Exception):
    """Something the run needs is not there yet (temporary): reason and message for the status."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        self.message = message
        super().__init__(message)


class Invalid(Exception):
    """The run cannot ever start as specified (permanent)."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        self.message = message
        super().__init__(message)


async def start_run(rt: Runtime, body: Mapping[str, Any], retry: int) -> None:
    """kopf on.create/on.resume: make sure the run has its PipelineRun (or a reason why not)."""
    info = rt.runs.observe(body)
    if info.deleting or info.phase in TERMINAL_PHASES:
        return
    if (info.status.get("pipelineRunRef") or {}).get("name"):
        await sync_run(rt, info.namespace, info.name)  # after a restart: catch up with Tekton
        return
    cancel = parse_workflowrun_spec(body).cancel
    if cancel is not None:  # cancelled before it started: no PipelineRun, ever
        await cancel_unstarted(rt, info, cancel)
        return
    try:
        pipelinerun, policy = await _compile(rt, info, body)
        if policy == "Allow":
            created = await _create_or_adopt(rt, info, pipelinerun, retry)
        else:
            # One decision at a time per Workflow, from the API's list of its PipelineRuns (not
            # the watch-fed memory, which lags behind creates): Forbid and Replace hold however
            # many runs arrive together. `:` is in no object name, so no run's lock is this one.
            async with rt.locks.of(info.namespace, f"workflow:{info.workflow}"):
                if not await _concurrency_allows(rt, info, policy):
                    return  # skipped by the concurrency policy; status already says so
                created = await _create_or_adopt(rt, info, pipelinerun, retry)
    except Invalid as exc:
        await set_run_status(rt, info, "stalled", exc.reason, exc.message, phase="Failed")
        await post_event(rt.client, body, type_="Warning", reason=exc.reason, message=exc.message)
        raise kopf.PermanentError(exc.message) from None
    except Waiting as exc:
        await set_run_status(rt, info, "progressing", exc.reason, exc.message)
        raise kopf.TemporaryError(exc.message, delay=rt.config.backoff(retry)) from None
    except ApiError as exc:
        raise kopf.TemporaryError(f"API error: {exc}", delay=rt.config.backoff(retry)) from None
    rt.tekton.observe_pipelinerun(info.namespace, created)
    pr_name = created["metadata"]["name"]
    await post_event(
        rt.client, body, type_="Normal", reason=CREATED, message=f"PipelineRun {pr_name} created"
    )
    # The first status (pipelineRunRef, Pending) plus whatever Tekton already reports: one write.
    await sync_run(rt, info.namespace, info.name)
    await update_workflow(rt, info, rt.written.get((info.namespace, info.name), info.status))


async def _compile(rt: Runtime, info: RunInfo, body: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The run's PipelineRun and its Workflow's concurrency policy."""
    from controller.compiler import CodesetSource, CompileError, compile_run
    from controller.compiler.extensions import ExtensionError, ExtensionRegistry
    from controller.spec import SpecError

    spec = parse_workflowrun_spec(body)
    if not spec.workflow:
        raise Invalid(INVALID_SPEC, "$.spec.workflowRef.name: a WorkflowRun names its Workflow")
    workflow_body = await rt.client.get(sluice_path("workflows", info.namespace, spec.workflow))
    if workflow_body is None:
        raise Waiting(WORKFLOW_NOT_FOUND, f"Workflow {spec.workflow} does not exist (yet)")
    try:
        workflow = parse_workflow(workflow_body)
    except SpecError as exc:
        raise Invalid(INVALID_WORKFLOW, f"Workflow {spec.workflow}: {diagnostic_message(exc)}") from None

    inputs = dict(spec.inputs)
    revisions = dict(spec.codeset_revisions)
    codesets: dict[str, Any] = {}
    for item in workflow.codeset_inputs:
        codeset_name = inputs.get(item.name) or item.default
        if not isinstance(codeset_name, str) or not codeset_name:
            raise Invalid(INVALID_SPEC, f"$.spec.inputs.{item.name}: name a Codeset for this input")
        codeset = await rt.client.get(sluice_path("codesets", info.namespace, codeset_name))
        if codeset is None:
            raise Waiting(CODESET_NOT_FOUND, f"Codeset {codeset_name} does not exist (yet)")
        cs_spec = codeset.get("spec") or {}
        revision = revisions.get(item.name) or (codeset.get("status") or {}).get("revision")
        if not revision:
            raise Waiting(REVISION_UNKNOWN, f"Codeset {codeset_name} has no fetched revision yet")
        secret = (cs_spec.get("secretRef") or {}).get("name")
        codesets[item.name] = CodesetSource(url=cs_spec.get("url", ""), revision=revision, secret_name=secret)
        inputs.pop(item.name, None)
        revisions[item.name] = revision

    documents = await _extension_documents(rt, info.namespace)
    if rt.config.mlflow is not None:  # FuseML's mlflow extension, unless one is registered
        documents = rt.config.mlflow.extension_documents(documents)
    try:
        extensions = ExtensionRegistry.from_sources(documents) if documents else None
    except ExtensionError as exc:
        raise Invalid(COMPILE_FAILED, cond.one_line(str(exc))) from None
    try:
        pipelinerun = compile_run(
            workflow,
            inputs=inputs,
            codesets=codesets,
            extensions=extensions,
            namespace=info.namespace,
            run_name=info.name,
            stages_image=rt.config.stages_image,
            allow_local_git=rt.config.allow_local_git,
            allow_cluster_git_hosts=rt.config.allow_cluster_git_hosts,
            model_store=rt.config.model_store,
            mlflow=rt.config.mlflow,
            service_account=rt.config.step_service_account,
            deployer_service_account=rt.config.run_service_account,
        )
    except (CompileError, SpecError) as exc:
        diagnostics = getattr(exc, "diagnostics", None)
        text = diagnostic_message(exc) if diagnostics else cond.one_line(str(exc))
        raise Invalid(COMPILE_FAILED, text) from None
    # The compiler claims task names for steps first, so a step's task is named after the step.
    steps = ",".join(step.name for step in workflow.steps)
    return _owned(pipelinerun, info, revisions, steps), workflow.run_policy.concurrency


def _owned(
    pipelinerun: dict[str, Any], info: RunInfo, revisions: Mapping[str, str], steps: str
) -> dict[str, Any]:
    """The PipelineRun named after the run, labelled, owned by it: one per WorkflowRun, ever."""
    from controller.compiler.naming import label_value

    meta = dict(pipelinerun.get("metadata") or {})
    meta.pop("generateName", None)
    meta["name"] = info.name
    meta["namespace"] = info.namespace
    labels = dict(meta.get("labels") or {})
    # label values are 63 characters at most: longer names take label_value's hashed form
    labels[sluice_settings.LABEL_RUN] = label_value(info.name)
    labels[sluice_settings.LABEL_WORKFLOW] = label_value(info.workflow)
    if revisions:
        first = sorted(revisions)[0]
        labels.setdefault(sluice_settings.LABEL_REVISION, label_value(str(revisions[first])))
    meta["labels"] = labels
    meta["annotations"] = {**(meta.get("annotations") or {}), STEPS_ANNOTATION: steps}
    # blockOwnerDeletion: a foreground deletion of the run waits until its PipelineRun is gone
    meta["ownerReferences"] = [
        owner_reference(WORKFLOW_RUN, info.name, info.uid, controller=True, block_owner_deletion=True)
    ]
    return {**pipelinerun, "metadata": meta}


async def _create_or_adopt(
    rt: Runtime, info: RunInfo, pipelinerun: dict[str, Any], retry: int
) -> dict[str, Any]:
    path = tekton_path("pipelineruns", info.namespace)
    try:
        return await rt.client.create(path, pipelinerun)
    except ApiError as exc:
        if refused_for_good(exc):
            raise Invalid(
                CREATE_REFUSED,
                cond.one_line(
                    f"the API server refused PipelineRun {info.name}: "
                    f"{exc.status} {exc.reason}: {exc.message}"
                ),
            ) from None
        if exc.status != 409:
            raise
    # AlreadyExists: ours from before a crash/restart -> adopt; anyone else's -> wait, then give up.
    existing = await rt.client.get(tekton_path("pipelineruns", info.namespace, info.name))
    if existing is None:
        raise Waiting(CONFLICT, "the API server reported a conflict creating the PipelineRun; retrying")
    owners = (existing.get("metadata") or {}).get("ownerReferences") or []
    if any(o.get("uid") == info.uid for o in owners):
        return existing
    message = f"PipelineRun {info.name} already exists and belongs to another object"
    if retry >= 5:
        raise Invalid(NAME_CONFLICT, message)
    raise Waiting(NAME_CONFLICT, message)


def refused_for_good(exc: ApiError) -> bool:
    """An answer that the same request will get again: a 4xx other than 409 (a conflict), 429
    (throttled) and 404 (Tekton's resource not served yet), and etcd's "request is too large",
    which kube-apiserver passes on as a 500 (kubernetes/kubernetes#112152)."""
    if 400 <= exc.status < 500:
        return exc.status not in (404, 409, 429)
    return "request is too large" in exc.message


async def _concurrency_allows(rt: Runtime, info: RunInfo, policy: str) -> bool:
    """Forbid: start only when none of the Workflow's PipelineRuns is active. Replace: cancel the
    active ones, unless a newer run of the Workflow is waiting (it replaces this one too).
    Called under the Workflow's lock, so the list includes every PipelineRun decided before."""
    from controller.compiler.naming import label_value

    selector = f"{sluice_settings.LABEL_WORKFLOW}={label_value(info.workflow)}"
    active = [
        pr
        for pr in await rt.client.list(tekton_path("pipelineruns", info.namespace), selector)
        if (pr.get("metadata") or {}).get("name") != info.name
        and (pr.get("spec") or {}).get("status") != "Cancelled"
        and pipelinerun_phase(pr) not in TERMINAL_PHASES
    ]
    if policy == "Forbid":
        if not active:
            return True
        names = ", ".join(sorted(str(pr["metadata"]["name"]) for pr in active)[:3])
        await set_run_status(
            rt,
            info,
            "done",
            CONCURRENCY_FORBIDDEN,
            f"not started: {names} still running (runPolicy.concurrency: Forbid)",
            phase="Cancelled",
            completionTime=cond.now_rfc3339(),
        )
        return False
    newer = [
        r
        for r in rt.runs.of_workflow(info.namespace, info.workflow)
        if r.active and r.name != info.name and (r.created, r.name) > (info.created, info.name)
    ]
    if newer:  # Replace, and a newer run is already there: this one would be cancelled at once
        await set_run_status(
            rt,
            info,
            "done",
            REPLACED,
            f"not started: replaced by {newer[-1].name} (runPolicy.concurrency: Replace)",
            phase="Cancelled",
            completionTime=cond.now_rfc3339(),
        )
        return False
    for pr in active:  # Replace
        meta = pr.get("metadata") or {}
        owner = next(
            (o for o in meta.get("ownerReferences") or [] if o.get("kind") == WORKFLOW_RUN and o.get("uid")),
            None,
        )
        if owner is None or not await cancel_pipelinerun(rt, info.namespace, str(meta["name"]), owner["uid"]):
            continue
        await post_event(
            rt.client,
            object_stub(WORKFLOW_RUN, info.namespace, str(owner.get("name") or meta["name"]), owner["uid"]),
            type_="Normal",
            reason=REPLACED,
            message=f"cancelled: replaced by {info.name} (runPolicy.concurrency: Replace)",
        )
    return True


async def _extension_documents(rt: Runtime, namespace: str) -> list[tuple[str, Any]]:
    """FuseML extension descriptions from ConfigMaps labelled `sluice.dev/extension`, as (source,
    document): every value is parsed like an `--extensions` file (the hardened YAML parser of
    `controller.spec.extension_files`), so a hostile value (an alias bomb, deep nesting) is refused
    with the ConfigMap, key, line and column: Invalid, on the run's status."""
    from controller.spec.extension_files import ExtensionFileError, parse_extension_data

    configmaps = await rt.client.list(resource_path("", "v1", "configmaps", namespace), LABEL_EXTENSION)
    documents: list[tuple[str, Any]] = []
    for configmap in sorted(configmaps, key=lambda c: (c.get("metadata") or {}).get("name", "")):
        name = (configmap.get("metadata") or {}).get("name", "")
        for key in sorted(configmap.get("data") or {}):
            try:
                parsed = parse_extension_data(str(configmap["data"][key]).encode(), f"ConfigMap {name}/{key}")
            except ExtensionFileError as exc:
                raise Invalid(COMPILE_FAILED, cond.one_line(f"extension {exc}")) from None
            documents.extend((source, doc) for source, doc in parsed if isinstance(doc, dict))
    return documents


async def delete_run(rt: Runtime, body: Mapping[str, Any]) -> None:
    """kopf on.delete: cancel a running PipelineRun before the finalizer is released."""
    meta = body.get("metadata") or {}
    namespace, name, uid = meta.get("namespace") or "default", meta.get("name") or "", meta.get("uid") or ""
    pr_name = str(((body.get("status") or {}).get("pipelineRunRef") or {}).get("name") or name)
    try:
        async with rt.locks.of(namespace, name):
            if await cancel_pipelinerun(rt, namespace, pr_name, uid):
                await post_event(
                    rt.client,
                    body,
                    type_="Normal",
                    reason=CANCELLED,
                    message=f"PipelineRun {pr_name} cancelled: the run was deleted",
                )
    except ApiError as exc:
        raise kopf.TemporaryError(
            f"could not cancel PipelineRun {pr_name}: {exc}", delay=rt.config.retry_delay
        ) from None
    rt.written.pop((namespace, name), None)
    rt.locks.drop(namespace, name)
