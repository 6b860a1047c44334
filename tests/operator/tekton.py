"""Playing Tekton's part: the status a Tekton controller would write, over the same HTTP API."""

from __future__ import annotations

from typing import Any

from tests.operator.conftest import Api, path

TEKTON = "tekton.dev/v1"


def condition(status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {
        "type": "Succeeded",
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-01-01T00:01:00Z",
    }


def status(state: str, reason: str, message: str = "", **fields: Any) -> dict[str, Any]:
    """A Tekton run status: its `Succeeded` condition plus other fields (`startTime`, ...)."""
    return {"conditions": [condition(state, reason, message)], **fields}


async def create_taskrun(api: Api, pipelinerun: dict[str, Any], task: str) -> str:
    """A TaskRun as Tekton makes it: the PipelineRun's labels plus Tekton's own, owned by it."""
    meta = pipelinerun["metadata"]
    name = f"{meta['name']}-{task}"
    labels = {
        **meta.get("labels", {}),
        "tekton.dev/pipelineRun": meta["name"],
        "tekton.dev/pipelineTask": task,
    }
    await api.call(
        "POST",
        path(TEKTON, "taskruns", namespace=meta["namespace"]),
        {
            "apiVersion": TEKTON,
            "kind": "TaskRun",
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "labels": labels,
                "ownerReferences": [
                    {"apiVersion": TEKTON, "kind": "PipelineRun", "name": meta["name"], "uid": meta["uid"]}
                ],
            },
            "spec": {},
        },
    )
    return name


async def set_taskrun(api: Api, namespace: str, name: str, status: dict[str, Any]) -> None:
    await api.call(
        "PATCH", path(TEKTON, "taskruns", name, namespace=namespace) + "/status", {"status": status}
    )


async def set_pipelinerun(api: Api, namespace: str, name: str, status: dict[str, Any]) -> None:
    await api.call(
        "PATCH", path(TEKTON, "pipelineruns", name, namespace=namespace) + "/status", {"status": status}
    )


def child(pipelinerun: str, task: str) -> dict[str, Any]:
    return {
        "apiVersion": TEKTON,
        "kind": "TaskRun",
        "name": f"{pipelinerun}-{task}",
        "pipelineTaskName": task,
    }


async def create_pod(
    api: Api,
    namespace: str,
    taskrun: str,
    task: str,
    steps: list[str],
    env: list[dict[str, Any]] | None = None,
) -> str:
    """The pod Tekton makes for a TaskRun (containers `step-<name>`, Tekton's labels, owned by the
    TaskRun), and the TaskRun's `status.podName` pointing at it; its name."""
    name = f"{taskrun}-pod"
    pipelinerun = taskrun.removesuffix(f"-{task}")
    await api.call(
        "POST",
        path("v1", "pods", namespace=namespace),
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {
                    "tekton.dev/taskRun": taskrun,
                    "tekton.dev/pipelineRun": pipelinerun,
                    "tekton.dev/pipelineTask": task,
                },
            },
            "spec": {
                "initContainers": [{"name": "prepare", "image": "tekton/entrypoint"}],
                "containers": [{"name": f"step-{s}", "image": "stages", "env": env or []} for s in steps],
            },
        },
    )
    current = await api.get(path(TEKTON, "taskruns", taskrun, namespace=namespace)) or {}
    await set_taskrun(api, namespace, taskrun, {**(current.get("status") or {}), "podName": name})
    return name
