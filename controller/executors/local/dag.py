"""The task graph of a pipeline and the scheduler that walks it, up to N tasks at a time.

Edges come from `runAfter` and from `$(tasks.X.results.Y)` references, as in Tekton. The
scheduler knows nothing of processes: it asks `decide(name)` whether a ready task should run
(the engine skips it, fails it or lets it run) and awaits `launch(name)` for those that run.
After the first failure no new task starts; running ones finish (Tekton's graceful stop).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from controller.executors.local.matrix import matrix_refs
from controller.executors.local.tekton import UnsupportedError
from controller.executors.local.variables import task_result_refs

TERMINAL = frozenset({"Succeeded", "Failed", "Skipped", "Cancelled"})


@dataclass
class Graph:
    names: list[str]  # in declaration order
    parents: dict[str, set[str]]  # runAfter + result references
    result_parents: dict[str, set[str]]  # only tasks whose results are consumed


def build_graph(tasks: list[dict[str, Any]], section: str, known_results_from: set[str]) -> Graph:
    """The graph of one section; `known_results_from` are tasks outside it whose results may be used."""
    names = [t["name"] for t in tasks]
    parents: dict[str, set[str]] = {}
    result_parents: dict[str, set[str]] = {}
    for i, task in enumerate(tasks):
        where = f"$.spec.pipelineSpec.{section}[{i}]"
        after = set(task.get("runAfter") or [])
        if after and section == "finally":
            raise UnsupportedError(f"{where}.runAfter: finally tasks cannot use runAfter")
        for name in after:
            if name not in names:
                raise UnsupportedError(f"{where}.runAfter: no task named {name!r}")
        used = {t for t, _ in task_result_refs(task)} | matrix_refs(task)
        for name in used:
            if name not in names and name not in known_results_from:
                raise UnsupportedError(f"{where}: $(tasks.{name}.results...) names no earlier task")
        own = {n for n in used if n in names}
        if section == "finally" and own:
            raise UnsupportedError(f"{where}: a finally task cannot use another finally task's results")
        parents[task["name"]] = after | own
        result_parents[task["name"]] = own
    _check_acyclic(names, parents)
    return Graph(names, parents, result_parents)


def _check_acyclic(names: list[str], parents: dict[str, set[str]]) -> None:
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name) :], name]
            raise UnsupportedError(f"$.spec.pipelineSpec.tasks: dependency cycle {' -> '.join(cycle)}")
        state[name] = 1
        for parent in sorted(parents[name]):
            visit(parent, [*path, name])
        state[name] = 2

    for name in names:
        visit(name, [])


class Scheduler:
    """Runs one section of the graph. `phase(name)` reads a task's phase from the engine."""

    def __init__(
        self,
        graph: Graph,
        parallel: int,
        phase: Callable[[str], str],
        decide: Callable[[str], bool],
        launch: Callable[[str], Awaitable[None]],
    ):
        self.graph = graph
        self.parallel = max(1, parallel)
        self.phase = phase
        self.decide = decide
        self.launch = launch
        self.running: dict[asyncio.Future[None], str] = {}
        self.stopping = False
        self.started: set[str] = set()

    def _ready(self, name: str) -> bool:
        return self.phase(name) == "Pending" and all(
            self.phase(p) in TERMINAL for p in self.graph.parents[name]
        )

    def _start_ready(self) -> None:
        """Settle or launch every ready task; a skip can make others ready, so repeat until stable."""
        changed = True
        while changed and not self._stop_on_failure():
            changed = False
            for name in self.graph.names:
                if len(self.running) >= self.parallel:
                    return
                if name in self.started or not self._ready(name):
                    continue
                self.started.add(name)
                changed = True
                if self.decide(name):
                    self.running[asyncio.ensure_future(self.launch(name))] = name

    def _stop_on_failure(self) -> bool:
        if any(self.phase(n) == "Failed" for n in self.graph.names):
            self.stopping = True
        return self.stopping

    def cancel_running(self) -> None:
        self.stopping = True
        for future in self.running:
            future.cancel()

    async def run(self, deadline: float | None) -> bool:
        """Walk the graph; False when `deadline` (monotonic) passed and running tasks were cancelled."""
        while True:
            self._start_ready()
            if not self.running:
                return True
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = await asyncio.wait(
                list(self.running), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if not done and deadline is not None and time.monotonic() >= deadline:
                self.cancel_running()
                await asyncio.wait(list(self.running))
                self.running.clear()
                return False
            for future in done:
                self.running.pop(future)
                if not future.cancelled() and future.exception() is not None:
                    self.cancel_running()
                    await asyncio.gather(*self.running, return_exceptions=True)
                    raise future.exception()  # type: ignore[misc]
