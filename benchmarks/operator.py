"""The operator against the emulated API server: reaction latency, memory, API writes.

`sluice operator` runs as its own process (so its RSS is its own) against the kmock-based API
emulator of the test suite, served over HTTP on 127.0.0.1 by this process, which also plays the
user (creating Workflows and WorkflowRuns) and Tekton (writing PipelineRun status).

- latency: WorkflowRun created -> its PipelineRun created, as timed by the API server;
- memory: the operator's RSS with N Workflows + N WorkflowRuns (each with its PipelineRun)
  against its RSS idle (same process, before any object existed);
- writes: API writes the operator makes per Tekton state change it mirrors.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import kmock
import yaml

from benchmarks.common import row
from testsupport.kubeapi import until

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "bench"
DRIVER = "sluice-benchmark"


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _workflow(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "workflows" / "sum-of-two.yaml").read_text())
    doc["metadata"] = {"name": name, "namespace": NAMESPACE}
    return doc


def _run(name: str, workflow: str) -> dict[str, Any]:
    return {
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "WorkflowRun",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"workflowRef": {"name": workflow}, "inputs": {"samples": 100}},
    }


class Driver:
    def __init__(self, base: str):
        self.base = base
        self.session = aiohttp.ClientSession(headers={"User-Agent": DRIVER})

    async def call(self, method: str, path: str, body: Any = None, content_type: str | None = None) -> Any:
        headers = {"Content-Type": content_type} if content_type else {}
        async with self.session.request(method, self.base + path, json=body, headers=headers) as response:
            data = await response.json(content_type=None)
            if response.status >= 400:
                raise RuntimeError(f"{method} {path}: {response.status} {data}")
            return data

    async def create(self, plural: str, obj: dict[str, Any], group: str = "sluice.dev/v1alpha1") -> None:
        await self.call("POST", f"/apis/{group}/namespaces/{NAMESPACE}/{plural}", obj)

    async def tekton_status(self, name: str, status: dict[str, Any]) -> None:
        path = f"/apis/tekton.dev/v1/namespaces/{NAMESPACE}/pipelineruns/{name}/status"
        await self.call("PATCH", path, {"status": status}, "application/merge-patch+json")


def _operator_writes(server: Any, plurals: set[str]) -> int:
    return sum(
        1
        for r in list(server._requests)
        if str(r.method.value).upper() in ("POST", "PATCH", "DELETE", "PUT")
        and r.resource is not None
        and r.resource.plural in plurals
        and r.headers.get("User-Agent") != DRIVER
    )


def _status_writes(server: Any) -> int:
    """WorkflowRun status patches by the operator (pruning old runs is counted elsewhere)."""
    return sum(
        1
        for r in list(server._requests)
        if r.resource is not None
        and r.resource.plural == "workflowruns"
        and r.subresource == "status"
        and r.headers.get("User-Agent") != DRIVER
    )


_RUNS = kmock.resource("sluice.dev/v1alpha1/workflowruns")


def _phase(server: Any, name: str) -> str | None:
    obj = server.objects._objects.get((_RUNS, NAMESPACE, name))  # O(1), kmock's `in` scans
    if obj is None or obj.deleted:
        return None
    return ((obj.raw.get("status") or {}).get("phase")) or None


async def _measure(quick: bool) -> list[dict[str, Any]]:
    from controller.api.crds import all_crds
    from testsupport.apihttp import write_kubeconfig
    from testsupport.emulator import ApiServer
    from testsupport.gitserver import free_port
    from testsupport.processes import start_operator_process

    latency_runs = 20 if quick else 100
    population = 50 if quick else 1000
    rows: list[dict[str, Any]] = []
    async with ApiServer() as server, kmock.Server(server) as http:
        base = str(http.url).rstrip("/")
        driver = Driver(base)
        for crd in all_crds().values():
            await driver.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        with tempfile.TemporaryDirectory() as tmp:
            kubeconfig = write_kubeconfig(Path(tmp) / "kubeconfig", base)
            port = free_port()
            process = start_operator_process(kubeconfig, port)
            try:
                rows += await _scenario(server, driver, process, port, latency_runs, population)
            finally:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                await driver.session.close()
    return rows


async def _scenario(
    server: Any,
    driver: Driver,
    process: subprocess.Popen[bytes],
    port: int,
    latency_runs: int,
    population: int,
) -> list[dict[str, Any]]:
    async def ready() -> bool:
        with contextlib.suppress(aiohttp.ClientError):
            async with driver.session.get(f"http://127.0.0.1:{port}/readyz") as response:
                return response.status == 200
        return False

    deadline = time.monotonic() + 60
    while not await ready():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the operator did not start")
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # let the watches settle before calling it idle
    idle_rss = _rss_bytes(process.pid)

    # 1. Latency: one run at a time, WorkflowRun POST -> PipelineRun POST as the API server saw them.
    await driver.create("workflows", _workflow("latency"))
    latencies: list[float] = []
    for i in range(latency_runs):
        name = f"lat-{i}"
        await driver.create("workflowruns", _run(name, "latency"))
        key = ("pipelineruns", NAMESPACE, name)
        await until(lambda key=key: key in server.created_at, 30, f"PipelineRun {name}")
        latencies.append(server.created_at[key] - server.created_at[("workflowruns", NAMESPACE, name)])
    await until(lambda: all(_phase(server, f"lat-{i}") for i in range(latency_runs)), 60, "statuses")
    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]

    # 2. Writes per state change: Tekton moves every run Pending -> Running -> Succeeded.
    plurals = {"workflowruns", "workflows", "pipelineruns"}
    before_all = _operator_writes(server, plurals)
    before_runs = _status_writes(server)
    changes = 0
    for i in range(latency_runs):
        name = f"lat-{i}"
        cond = {"type": "Succeeded", "status": "Unknown", "reason": "Running", "message": ""}
        await driver.tekton_status(name, {"conditions": [cond], "startTime": "2026-01-01T00:00:00Z"})
        await until(lambda name=name: _phase(server, name) == "Running", 30, f"{name} Running")
        done = {"type": "Succeeded", "status": "True", "reason": "Succeeded", "message": ""}
        await driver.tekton_status(
            name,
            {
                "conditions": [done],
                "completionTime": "2026-01-01T00:01:00Z",
                "results": [{"name": "prediction-url", "value": "http://m.example/v2/models/m/infer"}],
            },
        )
        await until(lambda name=name: _phase(server, name) == "Succeeded", 30, f"{name} Succeeded")
        changes += 2
    await asyncio.sleep(0.5)  # anything late would show up in the counts
    run_writes = (_status_writes(server) - before_runs) / changes
    all_writes = (_operator_writes(server, plurals) - before_all) / changes

    # 3. Memory with a population of Workflows and WorkflowRuns (each run gets its PipelineRun).
    for i in range(population):
        await driver.create("workflows", _workflow(f"wf-{i}"))
        await driver.create("workflowruns", _run(f"run-{i}", f"wf-{i}"))
    await until(
        lambda: all(("pipelineruns", NAMESPACE, f"run-{i}") in server.created_at for i in range(population)),
        600,
        "all PipelineRuns",
    )
    await until(lambda: all(_phase(server, f"run-{i}") for i in range(population)), 600, "all statuses")
    await asyncio.sleep(1.0)
    loaded_rss = _rss_bytes(process.pid)

    name = "operator"
    return [
        row(name, "workflowrun_to_pipelinerun_p50", p50, "s", "goal", 1.0, "p95 <= 1 s", p50 <= 1.0),
        row(name, "workflowrun_to_pipelinerun_p95", p95, "s", "goal", 1.0, "p95 <= 1 s", p95 <= 1.0),
        row(
            name,
            f"rss_with_{population}_workflows_and_runs",
            loaded_rss / 2**20,
            "MiB",
            "rss_idle",
            idle_rss / 2**20,
            "<= 1.3x idle",
            loaded_rss <= 1.3 * idle_rss,
        ),
        row(
            name,
            "workflowrun_status_writes_per_state_change",
            run_writes,
            "writes",
            "goal",
            1.0,
            "<= 1",
            run_writes <= 1,
        ),
        row(
            name,
            "all_writes_per_state_change",
            all_writes,
            "writes",
            "goal",
            1.0,
            "informational: also Workflow.status.lastRun and historyLimit pruning (deletes)",
            all_writes <= 1,
        ),
    ]


def run(quick: bool) -> list[dict[str, Any]]:
    return asyncio.run(_measure(quick))
