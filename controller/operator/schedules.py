"""`Workflow.spec.schedule`: the operator starts WorkflowRuns on time, like a Kubernetes CronJob.

Every `schedule_tick` seconds the operator looks at the scheduled Workflows it saw on the watch
(`ScheduleBook`, no API reads) and decides with `decide()`, a pure function of the schedule, the
Workflow's `status.lastScheduleTime` (or creation time) and the clock (`Runtime.clock`, injected so
tests control time):

- the times the schedule fired in (lastScheduleTime, now] are the missed ones (normally one);
- none: nothing to do; suspended: nothing to do, and lastScheduleTime stays where it is;
- the most recent one is run, unless it is more than `startingDeadlineSeconds` old (skipped,
  Warning event `MissedSchedule`) or more than 100 times were missed (counted since
  now - startingDeadlineSeconds when that is set, as a CronJob counts): none is run, Warning event
  `TooManyMissedSchedules`; older missed times are never run;
- either way lastScheduleTime becomes that most recent time, so it is decided once.

A run is named after its Workflow and the minute it was scheduled for (as a CronJob names its
Jobs), so a second operator, a restart between the create and the status write, or a retried
round finds the run already there (409) and creates no second one. `runPolicy.concurrency` is
applied by the WorkflowRun reconciler as for any other run (Forbid: the new run ends Cancelled
with reason ConcurrencyForbidden; Replace: the running one is cancelled).
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from typing import Any

from controller import settings
from controller.api.conditions import MISSED_SCHEDULE, SCHEDULED, TOO_MANY_MISSED_SCHEDULES
from controller.api.meta import GROUP, WORKFLOW, object_stub
from controller.api.workflowrun import run_of_workflow
from controller.operator.events import post_event
from controller.operator.kube import ApiError
from controller.operator.periodic import every
from controller.operator.runtime import Runtime, sluice_path
from controller.operator.schedulebook import Scheduled, rfc3339
from controller.schedules import fire_times, last_fire_time, next_fire_time

logger = logging.getLogger("sluice.operator.schedules")

# More missed times than this and none is run (Kubernetes CronJob's rule).
MAX_MISSED = 100
SCHEDULED_AT_ANNOTATION = f"{GROUP}/scheduled-at"
_NAME_PREFIX = 52  # a CronJob's name limit: room for "-" and the minute number within 63


@dataclass(frozen=True)
class Decision:
    run_at: datetime.datetime | None = None  # start a run for this scheduled time
    record: datetime.datetime | None = None  # the new lastScheduleTime (None: unchanged)
    next_time: datetime.datetime | None = None
    skipped: tuple[str, str] | None = None  # (event reason, message) of times not run
    missed: int = 0  # how many times fired since lastScheduleTime


def decide(entry: Scheduled, now: datetime.datetime) -> Decision:
    """What to do about one scheduled Workflow at `now` (pure: no I/O, no clock)."""
    next_time = next_fire_time(entry.cron, entry.zone, now)
    if entry.suspend:
        return Decision(next_time=next_time)
    start = entry.last or entry.created
    times = fire_times(entry.cron, entry.zone, start, now, MAX_MISSED + 1)
    if not times:
        return Decision(next_time=next_time)
    latest = times[-1] if len(times) <= MAX_MISSED else last_fire_time(entry.cron, entry.zone, now)
    assert latest is not None  # times is not empty, so the schedule fired at or before now
    late = (now - latest).total_seconds()
    if entry.deadline is not None and late > entry.deadline:
        message = (
            f"the run scheduled for {rfc3339(latest)} was not started: {int(late)}s late, "
            f"startingDeadlineSeconds is {entry.deadline}"
        )
        return Decision(
            record=latest, next_time=next_time, skipped=(MISSED_SCHEDULE, message), missed=len(times)
        )
    counted = times
    if entry.deadline is not None:
        window = now - datetime.timedelta(seconds=entry.deadline)
        counted = fire_times(entry.cron, entry.zone, max(start, window), now, MAX_MISSED + 1)
    if len(counted) > MAX_MISSED:
        message = (
            f"more than {MAX_MISSED} scheduled times were missed since {rfc3339(start)}: none was run; "
            "the schedule continues from now (set startingDeadlineSeconds to bound the count)"
        )
        return Decision(
            record=latest,
            next_time=next_time,
            skipped=(TOO_MANY_MISSED_SCHEDULES, message),
            missed=len(times),
        )
    return Decision(run_at=latest, record=latest, next_time=next_time, missed=len(times))


def scheduled_run_name(workflow: str, moment: datetime.datetime) -> str:
    minutes = int(moment.timestamp()) // 60
    return f"{workflow[:_NAME_PREFIX].rstrip('-')}-{minutes}"


def _run_object(entry: Scheduled, name: str, moment: datetime.datetime) -> dict[str, Any]:
    from controller.compiler.naming import label_value

    return run_of_workflow(
        entry.namespace,
        name,
        entry.name,
        entry.uid,
        labels={settings.LABEL_WORKFLOW: label_value(entry.name), settings.LABEL_RUN: label_value(name)},
        annotations={SCHEDULED_AT_ANNOTATION: rfc3339(moment)},
        spec={"inputs": {}},
    )


async def act(rt: Runtime, entry: Scheduled, decision: Decision) -> None:
    """Create the run and post the events a decision calls for, then record it on the Workflow."""
    workflow = object_stub(WORKFLOW, entry.namespace, entry.name, entry.uid)
    if decision.run_at is not None:
        name = scheduled_run_name(entry.name, decision.run_at)
        try:
            await rt.client.create(
                sluice_path("workflowruns", entry.namespace), _run_object(entry, name, decision.run_at)
            )
        except ApiError as exc:
            if exc.status != 409:
                raise
            logger.info("scheduled run %s/%s already exists", entry.namespace, name)
        else:
            earlier = decision.missed - 1
            note = f" ({earlier} earlier missed time{'s' if earlier != 1 else ''} not run)" if earlier else ""
            await post_event(
                rt.client,
                workflow,
                type_="Normal",
                reason=SCHEDULED,
                message=f"WorkflowRun {name} created for {rfc3339(decision.run_at)}{note}",
            )
    if decision.skipped is not None:
        reason, message = decision.skipped
        await post_event(rt.client, workflow, type_="Warning", reason=reason, message=message)
    patch: dict[str, Any] = {}
    if decision.record is not None and decision.record != entry.last:
        patch["lastScheduleTime"] = rfc3339(decision.record)
    next_text = rfc3339(decision.next_time) if decision.next_time is not None else None
    if next_text != entry.next_written:
        patch["nextScheduleTime"] = next_text
    if patch:
        await rt.client.merge_patch(
            sluice_path("workflows", entry.namespace, entry.name) + "/status", {"status": patch}
        )
    # remembered now, not when the watch shows it: the next round must not decide this again
    if decision.record is not None:
        entry.last = decision.record
    entry.next_written = next_text
    entry.due = decision.next_time


async def schedule_round(rt: Runtime) -> int:
    """One look at every scheduled Workflow; returns how many runs were created or skipped."""
    now = rt.clock()
    acted = 0
    for entry in rt.schedules.entries():
        if not entry.valid or (entry.due is not None and now < entry.due):
            continue
        decision = decide(entry, now)
        if decision.record is None and (
            (rfc3339(decision.next_time) if decision.next_time else None) == entry.next_written
        ):
            entry.due = decision.next_time
            continue
        try:
            await act(rt, entry, decision)
        except ApiError as exc:  # tried again next round: lastScheduleTime did not move
            logger.warning("schedule of workflow %s/%s: %s", entry.namespace, entry.name, exc)
            continue
        acted += decision.record is not None
    return acted


async def schedule_periodically(rt: Runtime) -> None:
    """Every `schedule_tick` seconds, until cancelled."""
    await every(rt.config.schedule_tick, lambda: schedule_round(rt), logger, "schedule round")
