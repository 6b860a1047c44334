"""The operator for real against the emulator and real Git servers: push -> sync -> runs."""

from __future__ import annotations

import asyncio
from typing import Any

from controller.operator import conditions as cond
from tests.codesets.conftest import CodesetOperator, start_codeset_operator
from tests.operator.conftest import NAMESPACE, Api, eventually, path
from testsupport.gitserver import GitDaemon, Repo, SmartHTTP

SLUICE = "sluice.dev/v1alpha1"
TEKTON = "tekton.dev/v1"


def workflow_yaml(name: str, codeset: str = "project", description: str = "trains", trigger: str = "") -> str:
    policy = f"\n  runPolicy: {{trigger: {trigger}}}" if trigger else ""
    return f"""apiVersion: sluice.dev/v1alpha1
kind: Workflow
metadata:
  name: {name}
spec:
  description: {description}{policy}
  inputs:
    - {{name: source, type: codeset, default: {codeset}}}
  steps:
    - name: train
      image: python:3.11-slim
      command: [python, "{{{{ inputs.source.path }}}}/train.py"]
"""


def codeset(url: str, name: str = "project", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": SLUICE,
        "kind": "Codeset",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"url": url, "ref": {"branch": "main"}, "interval": "1s", **spec},
    }


async def codeset_status(api: Api, name: str = "project") -> dict[str, Any]:
    return ((await api.get(path(SLUICE, "codesets", name))) or {}).get("status") or {}


async def wait_revision(api: Api, sha: str, name: str = "project", timeout: float = 15) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        status = await codeset_status(api, name)
        return status if status.get("revision") == sha else None

    return await eventually(check, timeout=timeout, what=f"codeset {name} at {sha[:8]}")


async def wait_reason(api: Api, reason: str, name: str = "project", timeout: float = 15) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        ready = cond.condition((await codeset_status(api, name)).get("conditions"), "Ready")
        return dict(ready) if ready and ready.get("reason") == reason else None

    return await eventually(check, timeout=timeout, what=f"codeset {name} {reason}")


def runs(api: Api) -> list[dict[str, Any]]:
    return api.server.objects_of(f"{SLUICE}/workflowruns", NAMESPACE)


def runs_pinned_to(api: Api, sha: str) -> list[dict[str, Any]]:
    return [r for r in runs(api) if sha in (r["spec"].get("codesetRevisions") or {}).values()]


async def pipelinerun(api: Api, name: str) -> dict[str, Any]:
    return await eventually(lambda: api.get(path(TEKTON, "pipelineruns", name)), what=f"PipelineRun {name}")


def pinned_revision(pipelinerun: dict[str, Any]) -> str:
    """The commit the PipelineRun's checkout task uses (`--revision SHA` of the clone step)."""
    for task in pipelinerun["spec"]["pipelineSpec"]["tasks"]:
        for step in task.get("taskSpec", {}).get("steps", []):
            args = step.get("args") or []
            if "--revision" in args:
                return str(args[args.index("--revision") + 1])
    raise AssertionError("no checkout step in the PipelineRun")


async def test_push_to_runs_pinned_to_each_commit(
    api: Api, operator: CodesetOperator, repo: Repo, http_server: SmartHTTP
) -> None:
    first = repo.commit({"workflows/train.yaml": workflow_yaml("train"), "src/train.py": "print(1)\n"})
    await api.apply(codeset(http_server.url(repo), sync={"path": "workflows"}, ignore=["*.md", "docs/"]))
    status = await wait_revision(api, first)
    assert cond.is_true(status["conditions"], "Ready"), status
    assert status["observedGeneration"] == 1 and status["lastFetchedAt"]

    workflow = await eventually(lambda: api.get(path(SLUICE, "workflows", "train")), what="synced Workflow")
    labels = workflow["metadata"]["labels"]
    assert labels["sluice.dev/codeset"] == "project" and labels["sluice.dev/revision"] == first
    assert labels["sluice.dev/workflow"] == "train"  # the documented uninstall's selector
    [owner] = workflow["metadata"]["ownerReferences"]
    assert owner["kind"] == "Codeset" and owner["name"] == "project"

    [run1] = await eventually(lambda: _async(runs_pinned_to(api, first)), what="run of the first commit")
    assert run1["spec"]["workflowRef"] == {"name": "train"}
    assert run1["metadata"]["labels"]["sluice.dev/revision"] == first
    run_labels = run1["metadata"]["labels"]
    assert (
        run_labels["sluice.dev/workflow"] == "train"
        and run_labels["sluice.dev/run"] == run1["metadata"]["name"]
    )
    assert pinned_revision(await pipelinerun(api, run1["metadata"]["name"])) == first

    second = repo.commit({"src/train.py": "print(2)\n"})
    await wait_revision(api, second)
    [run2] = await eventually(lambda: _async(runs_pinned_to(api, second)), what="run of the second commit")
    assert run2["metadata"]["name"] != run1["metadata"]["name"]
    assert pinned_revision(await pipelinerun(api, run2["metadata"]["name"])) == second

    # a commit touching only ignored paths moves the revision but starts nothing
    third = repo.commit({"README.md": "more docs\n", "docs/guide.txt": "x"})
    await wait_revision(api, third)
    await asyncio.sleep(0.5)
    assert len(runs(api)) == 2
    # unchanged polls fetch nothing: one fetch per revision seen
    assert operator.tracker.snapshots.fetches == 3


async def test_changed_workflow_updated_and_removed_one_pruned(
    api: Api, operator: CodesetOperator, repo: Repo, daemon: GitDaemon
) -> None:
    first = repo.commit(
        {
            "workflows/a.yaml": workflow_yaml("a", description="first"),
            "workflows/nested/b.yml": workflow_yaml("b"),
            "other/c.yaml": workflow_yaml("c"),
        }
    )
    await api.apply(codeset(daemon.url(repo), sync={"path": "workflows"}))
    status = await wait_revision(api, first)
    assert sorted(status["syncedWorkflows"]) == ["a", "b"]
    assert await api.get(path(SLUICE, "workflows", "c")) is None  # outside sync.path

    second = repo.commit(
        {"workflows/a.yaml": workflow_yaml("a", description="second"), "workflows/nested": None}
    )
    await wait_revision(api, second)

    async def updated() -> dict[str, Any] | None:
        obj = await api.get(path(SLUICE, "workflows", "a"))
        return obj if obj and obj["spec"]["description"] == "second" else None

    a = await eventually(updated, what="updated Workflow a")
    assert a["metadata"]["labels"]["sluice.dev/revision"] == second
    assert a["metadata"]["generation"] == 2

    async def pruned() -> bool:
        return await api.get(path(SLUICE, "workflows", "b")) is None

    await eventually(pruned, what="Workflow b pruned")
    # a's new generation makes a new run pinned to the second commit
    await eventually(lambda: _async(runs_pinned_to(api, second)), what="run for the changed workflow")


async def test_invalid_file_named_with_line_and_path_while_others_sync(
    api: Api, operator: CodesetOperator, repo: Repo, http_server: SmartHTTP
) -> None:
    bad = workflow_yaml("bad").replace("image: python:3.11-slim", "uses: sluice/no-such-stage")
    repo.commit({"workflows/good.yaml": workflow_yaml("good"), "workflows/bad.yaml": bad})
    sha = repo.symlink("workflows/evil.yaml", "../../../../etc/passwd")
    await api.apply(codeset(http_server.url(repo), sync={"path": "workflows"}))
    ready = await wait_reason(api, "InvalidWorkflow")
    assert ready["status"] == "False"
    message = ready["message"]
    assert "workflows/bad.yaml:" in message and "$.spec.steps[0]" in message, message
    assert "workflows/evil.yaml: refused: symlink leads outside the repository" in message
    status = await codeset_status(api)
    assert status["revision"] == sha
    assert cond.is_true(status["conditions"], "Stalled")
    assert await api.get(path(SLUICE, "workflows", "good")) is not None
    assert await api.get(path(SLUICE, "workflows", "bad")) is None
    assert await api.get(path(SLUICE, "workflows", "evil")) is None

    fixed = repo.commit({"workflows/bad.yaml": workflow_yaml("bad"), "workflows/evil.yaml": None})
    await wait_revision(api, fixed)
    await wait_reason(api, "Succeeded")
    assert await api.get(path(SLUICE, "workflows", "bad")) is not None


async def test_restart_makes_no_duplicate_run(
    api: Api, operator: CodesetOperator, repo: Repo, daemon: GitDaemon
) -> None:
    sha = repo.commit({"workflows/train.yaml": workflow_yaml("train")})
    await api.apply(codeset(daemon.url(repo), sync={"path": "workflows"}))
    await wait_revision(api, sha)
    await eventually(lambda: _async(runs_pinned_to(api, sha)), what="first run")
    await operator.stop()

    # lose the status too: the restarted operator must fetch and trigger again, and still not duplicate
    await api.call("PATCH", path(SLUICE, "codesets", "project") + "/status", {"status": {"revision": None}})
    again = await start_codeset_operator()
    try:
        await wait_revision(api, sha)
        # a forced refresh is handled once and makes no run either
        await api.call(
            "PATCH",
            path(SLUICE, "codesets", "project"),
            {"metadata": {"annotations": {"sluice.dev/reconcile-requested-at": "2026-01-01T00:00:00Z"}}},
        )

        async def handled() -> bool:
            return (await codeset_status(api)).get("lastHandledReconcileAt") == "2026-01-01T00:00:00Z"

        await eventually(handled, what="forced refresh handled")
        await asyncio.sleep(0.3)
        assert len(runs(api)) == 1
        assert len(api.server.objects_of(f"{TEKTON}/pipelineruns", NAMESPACE)) == 1
    finally:
        await again.stop()
    operator.thread = again.thread  # the fixture's stop() joins a thread that has already ended


async def test_manual_trigger_workflow_is_synced_but_not_run(
    api: Api, operator: CodesetOperator, repo: Repo, daemon: GitDaemon
) -> None:
    sha = repo.commit({"workflows/m.yaml": workflow_yaml("m", trigger="manual")})
    await api.apply(codeset(daemon.url(repo), sync={"path": "workflows"}))
    await wait_revision(api, sha)
    assert await api.get(path(SLUICE, "workflows", "m")) is not None
    await asyncio.sleep(0.3)
    assert runs(api) == []


async def _async(value: Any) -> Any:
    return value
