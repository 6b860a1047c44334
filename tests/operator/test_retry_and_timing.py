"""One backoff formula for every retry the operator schedules, one timer for every reconcile."""

from __future__ import annotations

import kopf
import pytest

from controller.operator.metrics import OperatorMetrics
from controller.operator.settings import MAX_RETRY_DELAY, OperatorConfig, apply_to_kopf, retry_backoff


def test_backoff_doubles_from_the_first_delay_up_to_the_cap() -> None:
    assert [retry_backoff(5.0, n) for n in range(8)] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert retry_backoff(0.2, 10_000) == MAX_RETRY_DELAY  # no overflow for a very late attempt
    assert OperatorConfig().backoff(2) == retry_backoff(OperatorConfig().retry_delay, 2)


def test_kopf_retries_handlers_with_the_same_backoff() -> None:
    config = OperatorConfig.for_tests()
    settings = kopf.OperatorSettings()
    apply_to_kopf(settings, config)
    delays = settings.queueing.error_delays
    assert list(delays) == [config.backoff(n) for n in range(len(delays))]


def _observed(metrics: OperatorMetrics, kind: str, result: str) -> float:
    value = metrics.registry.get_sample_value(
        "sluice_reconcile_duration_seconds_count", {"kind": kind, "result": result}
    )
    return value or 0.0


@pytest.mark.parametrize(
    ("raised", "result"),
    [
        (None, "success"),
        (kopf.PermanentError("bad"), "permanent"),
        (kopf.TemporaryError("later"), "temporary"),
        (RuntimeError("bug"), "error"),
    ],
)
def test_reconcile_timer_labels_the_outcome(raised: Exception | None, result: str) -> None:
    metrics = OperatorMetrics()
    try:
        with metrics.time_reconcile("Workflow"):
            if raised is not None:
                raise raised
    except Exception as exc:
        assert exc is raised  # the timer never swallows
    assert _observed(metrics, "Workflow", result) == 1
