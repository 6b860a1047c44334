"""Helpers for local-executor tests: hand-written tekton.dev/v1 PipelineRuns run for real."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml

from controller.executors.local.engine import LocalRun
from controller.executors.local.store import RunRecord

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((FIXTURES / name).read_text())
    return data


def script_task(name: str, script: str, **extra: Any) -> dict[str, Any]:
    """A pipeline task with one `script` step; `results`/`params`/`workspaces` go in the taskSpec."""
    spec: dict[str, Any] = {"steps": [{"name": "main", "image": "busybox", "script": script}]}
    for key in ("results", "params", "workspaces", "metadata"):
        if key in extra:
            spec[key] = extra.pop(key)
    return {"name": name, "taskSpec": spec, **extra}


def pipelinerun(name: str, tasks: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    pipeline: dict[str, Any] = {"tasks": tasks}
    for key in ("finally", "results", "workspaces", "params"):
        if key in spec:
            pipeline[key] = spec.pop(key)
    return {
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"name": name},
        "spec": {"pipelineSpec": pipeline, **spec},
    }


def artifacts_workspace() -> dict[str, Any]:
    return {"name": "artifacts", "volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}


def run_local(obj: dict[str, Any], home: Path, **kwargs: Any) -> RunRecord:
    return asyncio.run(LocalRun(obj, home, **kwargs).run())
