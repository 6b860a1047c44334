"""The Codeset metrics as /metrics shows them: names, help and labels that dashboards and alerts
(docs/gitops.md) rely on."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from controller.operator.codesets.metrics import CodesetMetrics

POLLS_HELP = "git ls-remote calls made for Codesets, by result (changed, unchanged, error)."


def test_git_calls_are_counted_and_timed_by_result() -> None:
    registry = CollectorRegistry()
    metrics = CodesetMetrics(registry)
    metrics.poll("changed", 0.2, None)
    metrics.poll("error", 3.0, "timeout")
    metrics.fetch("success", 1.5)
    text = generate_latest(registry).decode()
    for line in (
        f"# HELP sluice_git_polls_total {POLLS_HELP}",
        'sluice_git_polls_total{result="changed"} 1.0',
        'sluice_git_polls_total{result="error"} 1.0',
        "# HELP sluice_git_poll_duration_seconds Duration of one git ls-remote for Codesets.",
        'sluice_git_poll_duration_seconds_bucket{le="0.25",result="changed"} 1.0',
        'sluice_git_poll_duration_seconds_sum{result="error"} 3.0',
        'sluice_git_errors_total{kind="timeout",operation="ls-remote"} 1.0',
        "# HELP sluice_git_fetches_total Shallow git fetches of a new revision, by result.",
        'sluice_git_fetches_total{result="success"} 1.0',
        "# HELP sluice_git_fetch_duration_seconds Duration of one shallow git fetch.",
        'sluice_git_fetch_duration_seconds_bucket{le="1.0",result="success"} 0.0',
        'sluice_git_fetch_duration_seconds_bucket{le="2.5",result="success"} 1.0',
    ):
        assert line in text.splitlines(), line
    assert 'sluice_git_errors_total{kind="timeout",operation="fetch"}' not in text
