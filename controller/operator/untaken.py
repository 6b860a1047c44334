"""A safety net for WorkflowRuns kopf never took on.

kopf's first write on a new object is its finalizer. If that write fails with an error kopf does
not retry (409, 422, 403 from an admission webhook), kopf drops the event and sees the run again
only when it changes or when the watch is relisted, minutes later. Nothing else changes a new
run, so it would sit there unstarted. This sweep finds active runs that carry neither the
finalizer nor kopf's last-handled-configuration and have been quiet for a while, and sets an
annotation on each: the change is a new watch event, and kopf processes the run as new.
Everything it reads comes from the watch (`RunBook`); it costs one PATCH per stuck run per period.
"""

from __future__ import annotations

import logging
import time

from controller.operator.conditions import now_rfc3339
from controller.operator.kube import ApiError
from controller.operator.periodic import every
from controller.operator.runtime import Runtime, sluice_path
from controller.operator.settings import NUDGE_ANNOTATION

logger = logging.getLogger(__name__)


async def nudge_untaken_runs(rt: Runtime) -> int:
    """One sweep; returns how many runs were nudged."""
    nudged = 0
    for info in rt.runs.untaken(quiet_for=rt.config.untaken_run_seconds):
        try:
            await rt.client.merge_patch(
                sluice_path("workflowruns", info.namespace, info.name),
                {"metadata": {"annotations": {NUDGE_ANNOTATION: now_rfc3339()}}},
            )
        except ApiError as exc:
            logger.warning("run %s/%s not taken on by kopf; nudge failed: %s", info.namespace, info.name, exc)
            continue
        info.seen = time.monotonic()  # not again before the next quiet period
        logger.info("run %s/%s: kopf has not taken it on; nudged", info.namespace, info.name)
        nudged += 1
    return nudged


async def sweep_periodically(rt: Runtime) -> None:
    """Every `untaken_run_seconds`, until cancelled."""
    await every(
        rt.config.untaken_run_seconds, lambda: nudge_untaken_runs(rt), logger, "sweep of untaken runs"
    )
