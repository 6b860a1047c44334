"""A new revision of a Codeset starts the Workflows whose `codeset` input defaults to it.

Each run is a WorkflowRun pinned to the commit (`spec.codesetRevisions`), named by the compiler's
`run_name_for(workflow, inputs, revisions)`: the same (workflow generation, commits, inputs) always
gives the same name, so a second event, a webhook racing a poll or an operator restart gets 409
AlreadyExists instead of a second run. `runPolicy.trigger: manual` Workflows are left alone;
`runPolicy.concurrency` (Forbid/Replace) is applied by the WorkflowRun reconciler when the run starts,
the one place that policy lives.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from controller import settings
from controller.api.codeset import CodesetSpec
from controller.api.meta import GROUP, VERSION
from controller.api.workflow import parse_workflow
from controller.api.workflowrun import run_of_workflow
from controller.operator.kube import ApiError, KubeClient, resource_path

logger = logging.getLogger("sluice.operator.codesets.triggers")

TRIGGER_ANNOTATION = f"{GROUP}/triggered-by"


@dataclass
class TriggerOutcome:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)  # already there: same commit seen before
    waiting: list[str] = field(default_factory=list)  # another codeset input has no revision yet


async def trigger_runs(client: KubeClient, spec: CodesetSpec, revision: str) -> TriggerOutcome:
    from controller.compiler import run_name_for
    from controller.spec import SpecError

    outcome = TriggerOutcome()
    workflows = await client.list(resource_path(GROUP, VERSION, "workflows", spec.namespace))
    revisions_of: dict[str, str | None] = {spec.name: revision}
    for body in sorted(workflows, key=lambda b: (b.get("metadata") or {}).get("name") or ""):
        meta = body.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        try:
            workflow = parse_workflow(body)
        except SpecError:
            continue  # the Workflow reconciler reports it as Stalled
        if workflow.run_policy.trigger == "manual":
            continue
        inputs = workflow.codeset_inputs
        if not any(i.default == spec.name for i in inputs):
            continue
        revisions: dict[str, str] = {}
        for item in inputs:
            codeset = str(item.default or "")
            if codeset not in revisions_of:
                other = await client.get(resource_path(GROUP, VERSION, "codesets", spec.namespace, codeset))
                revisions_of[codeset] = ((other or {}).get("status") or {}).get("revision")
            known = revisions_of[codeset]
            if known:
                revisions[item.name] = known
        if len(revisions) != len(inputs):
            outcome.waiting.append(workflow.name)
            continue
        name = run_name_for(workflow, {}, revisions)
        run = run_of_workflow(
            spec.namespace,
            name,
            workflow.name,
            str(meta.get("uid") or ""),
            labels={
                settings.LABEL_WORKFLOW: workflow.name,
                settings.LABEL_RUN: name,
                settings.LABEL_CODESET: spec.name,
                settings.LABEL_REVISION: revision,
            },
            annotations={TRIGGER_ANNOTATION: f"Codeset/{spec.name}"},
            spec={"inputs": {}, "codesetRevisions": revisions},
        )
        try:
            await client.create(resource_path(GROUP, VERSION, "workflowruns", spec.namespace), run)
            outcome.created.append(name)
        except ApiError as exc:
            if exc.status != 409:
                raise
            outcome.existing.append(name)
    return outcome
