"""What the operator knows of scheduled Workflows: their `spec.schedule` and schedule status,
from watch events only (no API reads), for `controller.operator.schedules`."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller.schedules import ScheduleError, next_fire_time, time_zone


def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: Any) -> datetime.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


@dataclass
class Scheduled:
    """A Workflow with a schedule, as last seen on the watch (plus what this operator decided)."""

    namespace: str
    name: str
    uid: str
    created: datetime.datetime
    cron: str
    zone: datetime.tzinfo
    deadline: int | None
    suspend: bool
    last: datetime.datetime | None  # status.lastScheduleTime
    next_written: str | None  # status.nextScheduleTime
    valid: bool
    # The next time anything can change (the schedule fires): until then a round skips this
    # Workflow without evaluating the cron expression. None: decide at the next round.
    due: datetime.datetime | None = None


class ScheduleBook:
    """Scheduled Workflows by (namespace, name), filled from Workflow watch events."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], Scheduled] = {}

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        key = (meta.get("namespace") or "default", meta.get("name") or "")
        schedule = (body.get("spec") or {}).get("schedule")
        if event_type == "DELETED" or meta.get("deletionTimestamp") or not isinstance(schedule, Mapping):
            self._entries.pop(key, None)
            return
        status = body.get("status") or {}
        valid = True
        zone: datetime.tzinfo = datetime.UTC
        cron = str(schedule.get("cron") or "")
        try:
            zone = time_zone(schedule.get("timeZone"))
            next_fire_time(cron, zone, datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC))
        except ScheduleError:
            valid = False  # the Workflow reconciler reports it (InvalidSchedule)
        deadline = schedule.get("startingDeadlineSeconds")
        last = parse_time(status.get("lastScheduleTime"))
        known = self._entries.get(key)
        if (
            known is not None
            and known.uid == meta.get("uid")
            and known.last
            and (not last or known.last > last)
        ):
            last = known.last  # an event from before this operator's own status write
        self._entries[key] = Scheduled(
            namespace=key[0],
            name=key[1],
            uid=str(meta.get("uid") or ""),
            created=parse_time(meta.get("creationTimestamp")) or datetime.datetime.now(datetime.UTC),
            cron=cron,
            zone=zone,
            deadline=deadline if isinstance(deadline, int) and not isinstance(deadline, bool) else None,
            suspend=schedule.get("suspend") is True,
            last=last,
            next_written=status.get("nextScheduleTime"),
            valid=valid,
        )

    def entries(self) -> list[Scheduled]:
        return sorted(self._entries.values(), key=lambda e: (e.namespace, e.name))

    def __len__(self) -> int:
        return len(self._entries)
