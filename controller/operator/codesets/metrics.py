"""Codeset metrics, registered on the operator's own registry (`OperatorMetrics.registry`).

Labels are bounded: `result`, an error `kind` (timeout, auth, unreachable, not_found, too_large,
other), a webhook `provider` (github, gitlab, gitea, none) and the namespace of an existing
Codeset. Never a URL, a SHA, a Codeset name or error text.
"""

from __future__ import annotations

import functools

from prometheus_client import CollectorRegistry, Counter, Histogram

_GIT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class CodesetMetrics:
    def __init__(self, registry: CollectorRegistry):
        counter = functools.partial(Counter, registry=registry)
        git_seconds = functools.partial(Histogram, registry=registry, buckets=_GIT_BUCKETS)
        self.polls = counter(
            "sluice_git_polls",
            "git ls-remote calls made for Codesets, by result (changed, unchanged, error).",
            ["result"],
        )
        self.poll_seconds = git_seconds(
            "sluice_git_poll_duration_seconds",
            "Duration of one git ls-remote for Codesets.",
            ["result"],
        )
        self.fetches = counter(
            "sluice_git_fetches",
            "Shallow git fetches of a new revision, by result.",
            ["result"],
        )
        self.fetch_seconds = git_seconds(
            "sluice_git_fetch_duration_seconds",
            "Duration of one shallow git fetch.",
            ["result"],
        )
        self.git_errors = counter(
            "sluice_git_errors",
            "Failed git calls by operation (ls-remote, fetch) and error kind.",
            ["operation", "kind"],
        )
        self.webhooks = counter(
            "sluice_webhook_requests",
            "Webhook deliveries by namespace, provider and result.",
            ["namespace", "provider", "result"],
        )
        self.syncs = counter(
            "sluice_codeset_syncs",
            "GitOps syncs of a Codeset's sync.path by namespace and result (success, partial, error).",
            ["namespace", "result"],
        )
        self.triggered_runs = counter(
            "sluice_codeset_triggered_runs",
            "WorkflowRuns created because a Codeset got a new revision.",
            ["namespace"],
        )

    def poll(self, result: str, seconds: float, kind: str | None) -> None:
        self.polls.labels(result=result).inc()
        self.poll_seconds.labels(result=result).observe(seconds)
        if kind:
            self.git_errors.labels(operation="ls-remote", kind=kind).inc()

    def fetch(self, result: str, seconds: float) -> None:
        self.fetches.labels(result=result).inc()
        self.fetch_seconds.labels(result=result).observe(seconds)
