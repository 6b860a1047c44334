"""Everything one operator process shares between its handlers."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller.api.meta import GROUP, VERSION
from controller.operator.health import Endpoint, Health
from controller.operator.kube import KubeClient, resource_path
from controller.operator.metrics import OperatorMetrics
from controller.operator.schedulebook import ScheduleBook
from controller.operator.settings import (
    FINALIZER,
    HANDLED_ANNOTATION,
    TEKTON_GROUP,
    TEKTON_VERSION,
    OperatorConfig,
)
from controller.operator.state import Key, Locks, RunBook, TektonBook


@dataclass
class Runtime:
    config: OperatorConfig
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    health: Health = field(default_factory=Health)
    runs: RunBook = field(default_factory=lambda: RunBook(FINALIZER, HANDLED_ANNOTATION))
    tekton: TektonBook = field(default_factory=TektonBook)
    locks: Locks = field(default_factory=Locks)
    # The status Sluice last wrote on each WorkflowRun: the baseline for "did anything change?".
    written: dict[Key, dict[str, Any]] = field(default_factory=dict)
    # The same for Workflows (conditions and observedGeneration only).
    workflows_written: dict[Key, dict[str, Any]] = field(default_factory=dict)
    # Workflows with a spec.schedule, and the clock schedules are read by (tests set their own).
    schedules: ScheduleBook = field(default_factory=ScheduleBook)
    clock: Callable[[], datetime.datetime] = field(default=lambda: datetime.datetime.now(datetime.UTC))
    _client: KubeClient | None = None
    endpoint: Endpoint | None = None

    @property
    def client(self) -> KubeClient:
        if self._client is None:
            raise RuntimeError("the operator has not logged in yet")
        return self._client

    @client.setter
    def client(self, value: KubeClient) -> None:
        self._client = value


def sluice_path(plural: str, namespace: str, name: str | None = None) -> str:
    return resource_path(GROUP, VERSION, plural, namespace, name)


def tekton_path(plural: str, namespace: str, name: str | None = None) -> str:
    return resource_path(TEKTON_GROUP, TEKTON_VERSION, plural, namespace, name)
