"""Operator settings in one place: timeouts, backoffs, worker limits, endpoints.

`OperatorConfig` holds Sluice's own knobs; `apply_to_kopf` copies the relevant ones onto kopf's
`OperatorSettings` so that kopf's own API calls and Sluice's client retry the same way.
Environment variables (`SLUICE_OPERATOR_*`) override the defaults for `sluice operator`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any

from controller.api.meta import GROUP
from controller.serving.store import ModelStore
from controller.serving.tracking import MlflowTracking

if TYPE_CHECKING:
    import kopf

TEKTON_GROUP = "tekton.dev"
TEKTON_VERSION = "v1"

# Finalizer that keeps a WorkflowRun until its PipelineRun is cancelled.
FINALIZER = f"{GROUP}/finalizer"
# kopf's record of the last configuration it handled (its diff base), on every object it took on.
HANDLED_ANNOTATION = f"operator.{GROUP}/last-handled-configuration"
# Set on a WorkflowRun kopf has not taken on, to give kopf a new event for it.
NUDGE_ANNOTATION = f"{GROUP}/nudged-at"
# Label on ConfigMaps that carry FuseML extension descriptions.
LABEL_EXTENSION = f"{GROUP}/extension"
# Component name reported on Kubernetes Events.
EVENT_COMPONENT = "sluice-operator"
# No retry of a failed reconcile waits longer than this.
MAX_RETRY_DELAY = 300.0


def retry_backoff(first: float, attempt: int) -> float:
    """Seconds before retry `attempt` (0 for the first) of a failed reconcile: `first`, doubling
    per attempt, at most MAX_RETRY_DELAY. The one backoff of the operator's own retries, kopf's
    handler retries included (`apply_to_kopf`)."""
    return min(first * 2 ** min(attempt, 16), MAX_RETRY_DELAY)  # min(): no float overflow


@dataclasses.dataclass(frozen=True)
class OperatorConfig:
    """Everything tunable about one operator process."""

    # Sluice's API client: retries of 429/5xx/timeouts/connection errors, seconds between attempts.
    api_backoffs: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)
    api_timeout: float = 30.0
    # kopf: how long to wait before re-running a handler that raised a temporary error.
    retry_delay: float = 5.0
    # kopf: concurrent per-object workers (one bad object never blocks the others; this bounds them all).
    worker_limit: int = 64
    # kopf: watch-stream reconnection and server-side watch timeout.
    watch_reconnect_backoff: float = 0.5
    watch_server_timeout: float = 300.0
    # After a status patch, kopf waits this long for the watch to show it (consistency).
    consistency_timeout: float = 5.0
    # A WorkflowRun kopf has not taken on (no finalizer: its first write failed) and that has been
    # quiet this long is nudged; runs are checked this often.
    untaken_run_seconds: float = 30.0
    # Scheduled Workflows (spec.schedule) are looked at this often: the most a run starts late.
    schedule_tick: float = 1.0
    # /metrics and /healthz; port 0 picks a free port (tests).
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 8080
    # The compiler's switches, read from the environment here (the operator's edge), never by
    # the compiler: the image built-in stages run in (None: the default), whether codesets may
    # use file:// and loopback Git URLs, and in-cluster Git hosts - which the clone steps of
    # compiled runs are then given too (SLUICE_STAGES_IMAGE, SLUICE_ALLOW_LOCAL_GIT,
    # SLUICE_ALLOW_CLUSTER_GIT_HOSTS: the chart's `operator.git.allowClusterHosts`).
    stages_image: str | None = None
    allow_local_git: bool = False
    allow_cluster_git_hosts: bool = False
    # Durable model storage deployed models are served from (the chart's `modelStorage`, as
    # SLUICE_MODEL_STORE* variables); None: the run's temporary volume, as before.
    model_store: ModelStore | None = None
    # MLflow tracking every built-in stage logs to (the chart's `mlflow`, as SLUICE_MLFLOW_*
    # variables); None: untracked.
    mlflow: MlflowTracking | None = None
    # Messages on conditions and events are cut to this many characters.
    message_limit: int = 512
    # The ServiceAccounts of compiled runs (the Helm chart creates both in every watched
    # namespace): every task runs as `step_service_account` (no API rights, no token); tasks that
    # manage serving resources run as `run_service_account`, the deployer. None: the compiler's
    # defaults (settings.DEFAULT_STEP_SERVICE_ACCOUNT, DEFAULT_DEPLOYER_SERVICE_ACCOUNT).
    run_service_account: str | None = None
    step_service_account: str | None = None

    def backoff(self, attempt: int) -> float:
        """The delay before retry `attempt` (0 for the first), from `retry_delay`."""
        return retry_backoff(self.retry_delay, attempt)

    @classmethod
    def from_env(cls) -> OperatorConfig:
        base = cls()
        port = os.environ.get("SLUICE_OPERATOR_METRICS_PORT")
        host = os.environ.get("SLUICE_OPERATOR_METRICS_HOST")
        workers = os.environ.get("SLUICE_OPERATOR_WORKERS")
        return dataclasses.replace(
            base,
            metrics_port=int(port) if port else base.metrics_port,
            metrics_host=host or base.metrics_host,
            run_service_account=os.environ.get("SLUICE_RUN_SERVICE_ACCOUNT") or base.run_service_account,
            step_service_account=os.environ.get("SLUICE_STEP_SERVICE_ACCOUNT") or base.step_service_account,
            worker_limit=int(workers) if workers else base.worker_limit,
            **_compiler_switches(),
        )

    @classmethod
    def for_tests(cls) -> OperatorConfig:
        """Short timings so a test never waits on a backoff meant for a real cluster."""
        return cls(
            api_backoffs=(0.02, 0.05, 0.1, 0.2, 0.4),
            api_timeout=5.0,
            retry_delay=0.2,
            worker_limit=16,
            watch_reconnect_backoff=0.05,
            watch_server_timeout=30.0,
            consistency_timeout=0.5,
            untaken_run_seconds=1.0,
            schedule_tick=0.05,
            metrics_host="127.0.0.1",
            metrics_port=0,
            **_compiler_switches(),  # tests set them as `sluice operator` is given them: by environment
        )


def _compiler_switches() -> dict[str, Any]:
    from controller import settings as sluice_settings

    return {
        "stages_image": sluice_settings.stages_image(),
        "allow_local_git": sluice_settings.allow_local_git(),
        "allow_cluster_git_hosts": sluice_settings.allow_cluster_git_hosts(),
        "model_store": ModelStore.from_env(os.environ),
        "mlflow": MlflowTracking.from_env(os.environ),
    }


def apply_to_kopf(settings: kopf.OperatorSettings, config: OperatorConfig) -> None:
    """Copy the operator's policy onto kopf's settings (called from the startup handler)."""
    settings.networking.error_backoffs = config.api_backoffs
    settings.networking.request_timeout = config.api_timeout
    settings.watching.reconnect_backoff = config.watch_reconnect_backoff
    settings.watching.server_timeout = config.watch_server_timeout
    settings.watching.client_timeout = config.watch_server_timeout + 10
    settings.queueing.worker_limit = config.worker_limit
    # An idle per-object worker holds its slot for 5 s by default: 200 new objects at once would
    # then start at ~13/s. Release slots quickly instead.
    settings.queueing.idle_timeout = 0.5
    settings.queueing.error_delays = tuple(config.backoff(attempt) for attempt in range(8))
    # Unexpected handler exceptions are retried after this long (kopf's default is a minute).
    settings.execution.default_backoff = config.retry_delay
    settings.persistence.consistency_timeout = config.consistency_timeout
    settings.persistence.finalizer = FINALIZER
    # kopf's own events ("Handler ... succeeded") are noise; Sluice posts its own, one per transition.
    settings.posting.enabled = False
    settings.execution.max_workers = 4  # sync handlers are not used; keep the thread pool small
    settings.peering.standalone = True
