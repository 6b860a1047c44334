"""Cron schedules: checking an expression and a time zone, and the times a schedule fires.

A Workflow's `spec.schedule.cron` is read like a Kubernetes CronJob's `schedule`: five fields
(minute, hour, day of month, month, day of week) or one of the macros below, in the IANA time
zone `spec.schedule.timeZone` (UTC by default). Parsing and iteration are cronsim's; this module
adds the five-field rule, the macros and time zones. It reads no clock: callers pass the times.
A time zone is looked up in the IANA database (zoneinfo), read-only reference data.
"""

from __future__ import annotations

import datetime
import zoneinfo

from cronsim import CronSim, CronSimError

# The macros Kubernetes CronJobs (robfig/cron) accept, as the five fields they stand for.
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
DEFAULT_TIME_ZONE = "UTC"
_ANY_TIME = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)


class ScheduleError(ValueError):
    """An expression or time zone that cannot be used; the message says why, in one line."""


def cron_fields(expression: str) -> str:
    """The five fields of a cron expression (macros expanded); ScheduleError if it is not one."""
    text = " ".join(str(expression).split())
    if text.lower() in MACROS:
        return MACROS[text.lower()]
    if text.startswith(("TZ=", "CRON_TZ=")):
        raise ScheduleError("a time zone in the expression is not supported: set timeZone instead")
    if len(text.split()) != 5:
        raise ScheduleError(
            f"{text!r} has {len(text.split())} fields; a cron expression has 5 "
            "(minute hour day-of-month month day-of-week) or is one of " + ", ".join(sorted(MACROS))
        )
    try:
        CronSim(text, _ANY_TIME)
    except (CronSimError, ValueError, IndexError) as exc:
        raise ScheduleError(f"{text!r} is not a valid cron expression: {exc}") from None
    return text


def time_zone(name: str | None) -> datetime.tzinfo:
    """The IANA time zone of that name (UTC when None); ScheduleError if there is none."""
    if name is None or name == DEFAULT_TIME_ZONE:
        return datetime.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"{name!r} is not an IANA time zone (e.g. Europe/Berlin, America/New_York)"
        ) from None


def fire_times(
    expression: str,
    zone: datetime.tzinfo,
    after: datetime.datetime,
    until: datetime.datetime,
    limit: int,
) -> list[datetime.datetime]:
    """The times the schedule fires in (`after`, `until`], in UTC, oldest first; at most `limit`
    of them (a caller that gets `limit` asks for one more than it accepts to see an overflow)."""
    times: list[datetime.datetime] = []
    start = after.astimezone(zone).replace(microsecond=0)
    for fired in CronSim(cron_fields(expression), start):
        moment = fired.astimezone(datetime.UTC)
        if moment <= after:
            continue
        if moment > until or len(times) >= limit:
            break
        times.append(moment)
    return times


def next_fire_time(
    expression: str, zone: datetime.tzinfo, after: datetime.datetime
) -> datetime.datetime | None:
    """The first time the schedule fires after `after`, in UTC (None if it never does)."""
    start = after.astimezone(zone).replace(microsecond=0)
    for fired in CronSim(cron_fields(expression), start):
        moment = fired.astimezone(datetime.UTC)
        if moment > after:
            return moment
    return None


def last_fire_time(expression: str, zone: datetime.tzinfo, at: datetime.datetime) -> datetime.datetime | None:
    """The latest time the schedule fired at or before `at`, in UTC (None if it never did)."""
    # cronsim's reverse iteration starts one second before its start: start one second after `at`
    start = (at + datetime.timedelta(seconds=1)).astimezone(zone).replace(microsecond=0)
    for fired in CronSim(cron_fields(expression), start, reverse=True):
        moment = fired.astimezone(datetime.UTC)
        if moment <= at:
            return moment
    return None
