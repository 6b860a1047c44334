"""Helpers for local-executor tests: hand-written tekton.dev/v1 PipelineRuns run for real."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import yaml

from controller.executors.local.engine import LocalRun
from controller.executors.local.store import RunRecord

FIXTURES = Path(__file__).parent / "fixtures"


def alive(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie is dead for our purposes)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


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
