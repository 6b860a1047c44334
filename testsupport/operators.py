"""The operator in its own thread and event loop, as in its own process, against the emulator."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import logging
import threading
from collections.abc import Callable, Iterable

import aiohttp
import kopf

from controller.operator.codesets.handlers import register, tracker_of
from controller.operator.codesets.tracker import CodesetTracker
from controller.operator.main import build_registry, operate
from controller.operator.runtime import Runtime
from controller.operator.settings import OperatorConfig
from testsupport.emulator import ApiServer
from testsupport.kubeapi import eventually


class RunningOperator:
    """The operator in its own thread and event loop, as in its own process.

    kopf treats every task created in its loop after startup as its own and waits for them on
    exit; in a separate loop the emulator's open watch connections are not mistaken for those.
    """

    def __init__(
        self, config: OperatorConfig | None = None, clock: Callable[[], datetime.datetime] | None = None
    ):
        self.runtime = Runtime(config=config or OperatorConfig.for_tests())
        if clock is not None:
            self.runtime.clock = clock
        self.stop_flag = threading.Event()
        self.ready_flag = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="operator", daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(operate(self.runtime, stop_flag=self.stop_flag, ready_flag=self.ready_flag))
        except BaseException as exc:  # reported to the test by start()/stop()
            self.error = exc

    async def start(self) -> None:
        self.thread.start()
        await eventually(
            lambda: _value(self.runtime.health.ready or not self.thread.is_alive()), what="operator readiness"
        )
        if self.error is not None:
            raise self.error

    async def stop(self) -> None:
        self.stop_flag.set()
        await asyncio.get_running_loop().run_in_executor(None, self.thread.join, 20)
        assert not self.thread.is_alive(), "the operator did not stop"

    async def __aenter__(self) -> RunningOperator:
        """`async with RunningOperator(...)`: started for the block, stopped however it ends."""
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    @property
    def metrics_url(self) -> str:
        assert self.runtime.endpoint is not None
        return f"http://127.0.0.1:{self.runtime.endpoint.port}"

    async def metrics(self) -> str:
        """The operator's Prometheus page, `/metrics`."""
        async with aiohttp.ClientSession() as session, session.get(self.metrics_url + "/metrics") as response:
            assert response.status == 200
            return await response.text()


async def start_operator(
    config: OperatorConfig | None = None, clock: Callable[[], datetime.datetime] | None = None
) -> RunningOperator:
    running = RunningOperator(config, clock)
    await running.start()
    return running


class CodesetOperator(RunningOperator):
    """The whole operator (issue 6's handlers plus the Codeset handlers) in its own thread and loop.

    kopf keeps an idle per-object worker for `idle_timeout` (5 s), so with `worker_limit` workers
    at most that many new objects start every 5 s: 200 Codesets at once need more workers than the
    operator tests' 16.
    """

    def __init__(self) -> None:
        super().__init__(dataclasses.replace(OperatorConfig.for_tests(), worker_limit=512))

    def _main(self) -> None:
        try:
            asyncio.run(self._operate())
        except BaseException as exc:
            self.error = exc

    async def _operate(self) -> None:
        registry = build_registry(self.runtime)
        register(registry, self.runtime)  # a no-op if build_registry already registered them
        await kopf.operator(
            registry=registry,
            clusterwide=True,
            standalone=True,
            stop_flag=self.stop_flag,
            ready_flag=self.ready_flag,
            memories=None,
        )

    @property
    def tracker(self) -> CodesetTracker:
        tracker = tracker_of(self.runtime)
        assert tracker is not None
        return tracker

    async def webhook_url(self, path: str) -> str:
        port = await eventually(lambda: _value(self.tracker.webhooks.port), what="webhook receiver")
        return f"http://127.0.0.1:{port}{path}"


async def start_codeset_operator() -> CodesetOperator:
    running = CodesetOperator()
    await running.start()
    return running


def exposed(server: ApiServer, metrics: str, logs: Iterable[logging.LogRecord]) -> str:
    """Everything the operator exposed, as one JSON text to search for a secret: every object in the
    API server but the Secrets themselves, its metrics page and its log messages."""
    everything = {
        "objects": [
            obj
            for (resource, _ns, _name), obj in list(server.objects.items())
            if getattr(resource, "plural", "") != "secrets"
        ],
        "metrics": metrics,
        "logs": [record.getMessage() for record in logs],
    }
    return json.dumps(everything, default=str)


async def _value(value: object) -> object:
    return value
