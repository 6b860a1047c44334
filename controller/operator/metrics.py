"""Prometheus metrics of one operator process, on its own registry.

Labels are bounded: namespace, kind, phase, verb, result and an error class
(`409`, `429`, `5xx`, ...). Never URLs, object names, SHAs or error text.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter as Tally
from collections.abc import Iterator

import kopf
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from controller.api.workflowrun import PHASES
from controller.operator.kube import error_class


class RunPhases(Collector):
    """`sluice_workflowruns{namespace,phase}`: how many WorkflowRuns are in each phase right now."""

    def __init__(self) -> None:
        self._phases: dict[tuple[str, str], str] = {}

    def set(self, namespace: str, name: str, phase: str) -> None:
        self._phases[(namespace, name)] = phase if phase in PHASES else "Pending"

    def forget(self, namespace: str, name: str) -> None:
        self._phases.pop((namespace, name), None)

    def counts(self) -> Tally[tuple[str, str]]:
        return Tally((ns, phase) for (ns, _), phase in self._phases.items())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "sluice_workflowruns", "WorkflowRuns by namespace and phase.", labels=["namespace", "phase"]
        )
        counts = self.counts()
        for namespace in sorted({ns for ns, _ in counts}):
            for phase in PHASES:
                family.add_metric([namespace, phase], counts.get((namespace, phase), 0))
        yield family


class OperatorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.runs = RunPhases()
        self.registry.register(self.runs)
        self.reconcile_seconds = Histogram(
            "sluice_reconcile_duration_seconds",
            "Time spent reconciling one object.",
            ["kind", "result"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.api_errors = Counter(
            "sluice_api_errors",
            "Failed Kubernetes API calls made by Sluice (each attempt).",
            ["kind", "verb", "code"],
            registry=self.registry,
        )
        self.api_writes = Counter(
            "sluice_api_writes",
            "Kubernetes API writes made by Sluice (each attempt).",
            ["kind", "verb"],
            registry=self.registry,
        )
        self.transitions = Counter(
            "sluice_workflowrun_transitions",
            "WorkflowRun phase transitions seen by the operator.",
            ["namespace", "phase"],
            registry=self.registry,
        )

    @contextlib.contextmanager
    def time_reconcile(self, kind: str) -> Iterator[None]:
        """Observe how long the block takes in `sluice_reconcile_duration_seconds{kind,result}`.

        result: `success`; `permanent` / `temporary` for kopf's permanent and temporary errors (a
        stalled object, a wait); `error` for anything else raised.
        """
        started = time.monotonic()
        result = "success"
        try:
            yield
        except kopf.PermanentError:
            result = "permanent"
            raise
        except kopf.TemporaryError:
            result = "temporary"
            raise
        except Exception:
            result = "error"
            raise
        finally:
            self.reconcile_seconds.labels(kind=kind, result=result).observe(time.monotonic() - started)

    def api_error(self, kind: str, verb: str, status: int) -> None:
        self.api_errors.labels(kind=kind, verb=verb, code=error_class(status)).inc()

    def api_write(self, kind: str, verb: str) -> None:
        self.api_writes.labels(kind=kind, verb=verb).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
