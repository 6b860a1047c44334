"""Codeset metrics, registered on the operator's own registry (`OperatorMetrics.registry`).

Labels are bounded: `result`, an error `kind` (timeout, auth, unreachable, not_found, too_large,
other), a webhook `provider` (github, gitlab, gitea, none) and the namespace of an existing
Codeset. Never a URL, a SHA, a Codeset name or error text.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

_GIT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# What /metrics says of each metric of this module (docs/gitops.md lists them for users).
HELP = {
    "sluice_git_polls": "git ls-remote calls made for Codesets, by result (changed, unchanged, error).",
    "sluice_git_poll_duration_seconds": "Duration of one git ls-remote for Codesets.",
    "sluice_git_fetches": "Shallow git fetches of a new revision, by result.",
    "sluice_git_fetch_duration_seconds": "Duration of one shallow git fetch.",
    "sluice_git_errors": "Failed git calls by operation (ls-remote, fetch) and error kind.",
    "sluice_webhook_requests": "Webhook deliveries by namespace, provider and result.",
    "sluice_codeset_syncs": (
        "GitOps syncs of a Codeset's sync.path by namespace and result (success, partial, error)."
    ),
    "sluice_codeset_triggered_runs": "WorkflowRuns created because a Codeset got a new revision.",
}


class GitCalls:
    """One kind of git call: how many were made and how long each took, by result."""

    def __init__(self, registry: CollectorRegistry, count: str, seconds: str):
        self.count = Counter(count, HELP[count], ["result"], registry=registry)
        self.seconds = Histogram(seconds, HELP[seconds], ["result"], registry=registry, buckets=_GIT_BUCKETS)

    def observe(self, result: str, seconds: float) -> None:
        self.count.labels(result=result).inc()
        self.seconds.labels(result=result).observe(seconds)


class CodesetMetrics:
    def __init__(self, registry: CollectorRegistry):
        def counter(name: str, *labels: str) -> Counter:
            return Counter(name, HELP[name], labels, registry=registry)

        self.polls = GitCalls(registry, "sluice_git_polls", "sluice_git_poll_duration_seconds")
        self.fetches = GitCalls(registry, "sluice_git_fetches", "sluice_git_fetch_duration_seconds")
        self.git_errors = counter("sluice_git_errors", "operation", "kind")
        self.webhooks = counter("sluice_webhook_requests", "namespace", "provider", "result")
        self.syncs = counter("sluice_codeset_syncs", "namespace", "result")
        self.triggered_runs = counter("sluice_codeset_triggered_runs", "namespace")

    def poll(self, result: str, seconds: float, kind: str | None) -> None:
        self.polls.observe(result, seconds)
        if kind:
            self.git_errors.labels(operation="ls-remote", kind=kind).inc()

    def fetch(self, result: str, seconds: float) -> None:
        self.fetches.observe(result, seconds)
