"""Codeset metrics, registered on the operator's own registry (`OperatorMetrics.registry`).

Labels are bounded: `result`, an error `kind` (timeout, auth, unreachable, not_found, too_large,
other), a webhook `provider` (github, gitlab, gitea, none) and the namespace of an existing
Codeset. Never a URL, a SHA, a Codeset name or error text.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

_GIT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class CodesetMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.polls = Counter(
            "sluice_git_polls",
            "git ls-remote calls made for Codesets, by result (changed, unchanged, error).",
            ["result"],
            registry=registry,
        )
        self.poll_seconds = Histogram(
            "sluice_git_poll_duration_seconds",
            "Duration of one git ls-remote for Codesets.",
            ["result"],
            registry=registry,
            buckets=_GIT_BUCKETS,
        )
        self.fetches = Counter(
            "sluice_git_fetches",
            "Shallow git fetches of a new revision, by result.",
            ["result"],
            registry=registry,
        )
        self.fetch_seconds = Histogram(
            "sluice_git_fetch_duration_seconds",
            "Duration of one shallow git fetch.",
            ["result"],
            registry=registry,
            buckets=_GIT_BUCKETS,
        )
        self.git_errors = Counter(
            "sluice_git_errors",
            "Failed git calls by operation (ls-remote, fetch) and error kind.",
            ["operation", "kind"],
            registry=registry,
        )
        self.webhooks = Counter(
            "sluice_webhook_requests",
            "Webhook deliveries by namespace, provider and result.",
            ["namespace", "provider", "result"],
            registry=registry,
        )
        self.syncs = Counter(
            "sluice_codeset_syncs",
            "GitOps syncs of a Codeset's sync.path by namespace and result (success, partial, error).",
            ["namespace", "result"],
            registry=registry,
        )
        self.triggered_runs = Counter(
            "sluice_codeset_triggered_runs",
            "WorkflowRuns created because a Codeset got a new revision.",
            ["namespace"],
            registry=registry,
        )

    def poll(self, result: str, seconds: float, kind: str | None) -> None:
        self.polls.labels(result=result).inc()
        self.poll_seconds.labels(result=result).observe(seconds)
        if kind:
            self.git_errors.labels(operation="ls-remote", kind=kind).inc()

    def fetch(self, result: str, seconds: float) -> None:
        self.fetches.labels(result=result).inc()
        self.fetch_seconds.labels(result=result).observe(seconds)
