"""Workflow.spec.schedule: the operator starts runs on time, like a CronJob, by a clock the test moves.

The rule for missed times (`decide`) is checked on its own first, then through the real operator
(kopf) against the emulated API server: on-time runs, an operator restart after hours away, the
starting deadline, more than 100 missed times, suspend, concurrency Forbid and invalid schedules.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from controller.operator import conditions as cond
from controller.operator.schedulebook import Scheduled, parse_time
from controller.operator.schedules import decide, scheduled_run_name
from controller.schedules import fire_times, next_fire_time, time_zone
from tests.operator.conftest import NAMESPACE, Api, eventually, path
from tests.operator.test_workflowruns import SLUICE, pipelinerun_of, wait_phase
from tests.operator.test_workflows import sum_of_two, workflow_condition
from testsupport.clock import ManualClock
from testsupport.operators import RunningOperator
from testsupport.processes import run_captured

UTC = datetime.UTC
ROOT = Path(__file__).resolve().parents[2]
T0 = datetime.datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)  # 30 s after a whole hour


def entry(cron: str, *, last: datetime.datetime | None = None, zone: str = "UTC", **kw: Any) -> Scheduled:
    return Scheduled(
        namespace=NAMESPACE,
        name="nightly",
        uid="uid",
        created=T0 - datetime.timedelta(days=30),
        cron=cron,
        zone=time_zone(zone),
        deadline=kw.get("deadline"),
        suspend=kw.get("suspend", False),
        last=last,
        next_written=None,
        valid=True,
    )


# --- the rule, on its own -------------------------------------------------------------------------


def test_a_time_just_passed_is_run_and_the_next_one_is_known() -> None:
    decision = decide(entry("*/15 * * * *", last=T0 - datetime.timedelta(minutes=15)), T0)
    assert decision.run_at == datetime.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert decision.record == decision.run_at and decision.skipped is None and decision.missed == 1
    assert decision.next_time == datetime.datetime(2026, 3, 1, 12, 15, tzinfo=UTC)
    # decided once: with lastScheduleTime recorded, the same moment asks for nothing
    again = decide(entry("*/15 * * * *", last=decision.record), T0)
    assert again.run_at is None and again.record is None


def test_after_hours_away_only_the_most_recent_missed_time_is_run() -> None:
    decision = decide(entry("*/15 * * * *", last=T0 - datetime.timedelta(hours=3)), T0)
    assert decision.run_at == datetime.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert decision.missed == 12


def test_a_time_older_than_the_starting_deadline_is_skipped() -> None:
    late = T0 + datetime.timedelta(minutes=5)  # 12:00 is 5.5 minutes ago
    decision = decide(entry("0 * * * *", last=T0 - datetime.timedelta(hours=1), deadline=300), late)
    assert decision.run_at is None
    assert decision.record == datetime.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert decision.skipped is not None and decision.skipped[0] == "MissedSchedule"
    assert "330s late, startingDeadlineSeconds is 300" in decision.skipped[1]
    on_time = decide(entry("0 * * * *", last=T0 - datetime.timedelta(hours=1), deadline=600), late)
    assert on_time.run_at == datetime.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_more_than_100_missed_times_run_none_unless_the_deadline_bounds_the_count() -> None:
    away = entry("* * * * *", last=T0 - datetime.timedelta(hours=2))
    decision = decide(away, T0)
    assert decision.run_at is None and decision.skipped is not None
    assert decision.skipped[0] == "TooManyMissedSchedules"
    assert decision.record == datetime.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # continues from now
    bounded = entry("* * * * *", last=T0 - datetime.timedelta(hours=2), deadline=90)
    assert decide(bounded, T0).run_at == datetime.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_suspended_schedules_run_nothing_and_keep_their_last_time() -> None:
    decision = decide(entry("*/15 * * * *", last=T0 - datetime.timedelta(hours=1), suspend=True), T0)
    assert decision.run_at is None and decision.record is None
    assert decision.next_time == datetime.datetime(2026, 3, 1, 12, 15, tzinfo=UTC)


def test_the_time_zone_moves_the_schedule_and_a_skipped_hour_still_runs() -> None:
    berlin = entry("30 2 * * *", zone="Europe/Berlin", last=datetime.datetime(2026, 3, 28, 12, 0, tzinfo=UTC))
    # 02:30 does not exist in Berlin on 29 March 2026 (clocks go 02:00 -> 03:00): it runs at 03:00
    decision = decide(berlin, datetime.datetime(2026, 3, 29, 1, 0, 5, tzinfo=UTC))
    assert decision.run_at == datetime.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert decision.next_time == datetime.datetime(2026, 3, 30, 0, 30, tzinfo=UTC)  # 02:30 CEST


def test_run_names_are_the_workflow_and_the_scheduled_minute() -> None:
    moment = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert scheduled_run_name("nightly", moment) == f"nightly-{int(moment.timestamp()) // 60}"
    long = scheduled_run_name("w" * 63, moment)
    assert len(long) <= 63 and long.startswith("w" * 52 + "-")


# --- through the operator -------------------------------------------------------------------------


def scheduled(name: str, cron: str, **schedule: Any) -> dict[str, Any]:
    workflow = sum_of_two(name)
    workflow["spec"]["schedule"] = {"cron": cron, **schedule}
    return workflow


async def workflow_status(api: Api, name: str) -> dict[str, Any]:
    return ((await api.get(path(SLUICE, "workflows", name))) or {}).get("status") or {}


async def created_at(api: Api, name: str) -> datetime.datetime:
    body = await api.get(path(SLUICE, "workflows", name))
    assert body is not None
    moment = parse_time(body["metadata"]["creationTimestamp"])
    assert moment is not None
    return moment


def runs_of(api: Api, workflow: str) -> list[str]:
    return sorted(
        r["metadata"]["name"]
        for r in api.server.objects_of(f"{SLUICE}/workflowruns", NAMESPACE)
        if r["spec"]["workflowRef"]["name"] == workflow
    )


def events_of(api: Api, name: str, reason: str) -> list[dict[str, Any]]:
    return [
        e
        for e in api.server.objects_of("v1/events", NAMESPACE)
        if e["involvedObject"]["name"] == name and e["reason"] == reason
    ]


async def status_field(api: Api, name: str, field: str, value: str | None = None) -> str:
    async def check() -> str | None:
        found = (await workflow_status(api, name)).get(field)
        return found if found and (value is None or found == value) else None

    return await eventually(check, what=f"{name} status.{field} {value or ''}")


async def test_runs_start_on_time_and_status_says_when_last_and_next(api: Api) -> None:
    clock = ManualClock()
    async with RunningOperator(clock=clock.now):
        await api.apply(scheduled("every-5", "*/5 * * * *"))
        first = next_fire_time("*/5 * * * *", UTC, max(await created_at(api, "every-5"), clock.now()))
        assert first is not None
        await status_field(api, "every-5", "nextScheduleTime", first.strftime("%Y-%m-%dT%H:%M:%SZ"))
        assert runs_of(api, "every-5") == []  # not before its time

        clock.set(first + datetime.timedelta(seconds=2))
        name = scheduled_run_name("every-5", first)
        run = await eventually(lambda: api.get(path(SLUICE, "workflowruns", name)), what="the scheduled run")
        assert run["metadata"]["labels"]["sluice.dev/workflow"] == "every-5"
        assert run["metadata"]["ownerReferences"][0]["kind"] == "Workflow"
        assert run["metadata"]["annotations"]["sluice.dev/scheduled-at"] == first.strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        await pipelinerun_of(api, name)  # started like any other run
        second = first + datetime.timedelta(minutes=5)
        await status_field(api, "every-5", "nextScheduleTime", second.strftime("%Y-%m-%dT%H:%M:%SZ"))
        assert (await workflow_status(api, "every-5"))["lastScheduleTime"] == first.strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        assert "created for" in events_of(api, "every-5", "Scheduled")[0]["message"]

        clock.set(second + datetime.timedelta(seconds=1))
        await eventually(lambda: _value(len(runs_of(api, "every-5")) == 2), what="the second run")
        assert runs_of(api, "every-5") == sorted([name, scheduled_run_name("every-5", second)])


async def test_after_a_restart_only_the_most_recent_missed_time_runs(api: Api) -> None:
    clock = ManualClock()
    async with RunningOperator(clock=clock.now):
        await api.apply(scheduled("hourly", "0 * * * *"))
        await api.apply(scheduled("strict", "0 * * * *", startingDeadlineSeconds=60))
        await api.apply(scheduled("minutely", "* * * * *"))
        await api.apply(scheduled("paused", "0 * * * *", suspend=True))
        for name in ("hourly", "strict", "minutely", "paused"):
            await status_field(api, name, "nextScheduleTime")

    # Five hours and ten minutes pass with no operator.
    start = max(clock.now(), await created_at(api, "minutely"))
    clock.set(start + datetime.timedelta(hours=5, minutes=10))
    latest = clock.now().replace(minute=0, second=0)
    async with RunningOperator(clock=clock.now):
        # hourly: five or six times missed, the latest runs, the ones before it never do
        name = scheduled_run_name("hourly", latest)
        await eventually(lambda: _value(runs_of(api, "hourly") == [name]), what="one run of hourly")
        await status_field(api, "hourly", "lastScheduleTime", latest.strftime("%Y-%m-%dT%H:%M:%SZ"))
        earlier = len(fire_times("0 * * * *", UTC, await created_at(api, "hourly"), clock.now(), 99)) - 1
        assert earlier >= 4
        assert (
            f"({earlier} earlier missed times not run)" in events_of(api, "hourly", "Scheduled")[0]["message"]
        )
        # strict: the latest time is 600 s old, beyond its 60 s deadline
        missed = await eventually(lambda: _value(events_of(api, "strict", "MissedSchedule")), what="missed")
        assert "startingDeadlineSeconds is 60" in missed[0]["message"] and missed[0]["type"] == "Warning"
        await status_field(api, "strict", "lastScheduleTime", latest.strftime("%Y-%m-%dT%H:%M:%SZ"))
        # minutely: 310 missed times: none runs, and the schedule goes on from now
        too_many = await eventually(
            lambda: _value(events_of(api, "minutely", "TooManyMissedSchedules")), what="too many"
        )
        assert "more than 100" in too_many[0]["message"]
        # paused: nothing while suspended
        await status_field(api, "minutely", "lastScheduleTime")
        assert runs_of(api, "strict") == runs_of(api, "minutely") == runs_of(api, "paused") == []
        assert "lastScheduleTime" not in await workflow_status(api, "paused")

        # the next minute, minutely runs again as usual
        clock.advance(minutes=1)
        await eventually(lambda: _value(len(runs_of(api, "minutely")) == 1), what="minutely runs again")


async def test_forbid_applies_to_scheduled_runs(api: Api) -> None:
    clock = ManualClock()
    async with RunningOperator(clock=clock.now):
        busy = scheduled("busy", "* * * * *")
        busy["spec"]["runPolicy"] = {"concurrency": "Forbid"}
        await api.apply(busy)
        first = next_fire_time("* * * * *", UTC, max(await created_at(api, "busy"), clock.now()))
        assert first is not None
        clock.set(first + datetime.timedelta(seconds=1))
        await pipelinerun_of(api, scheduled_run_name("busy", first))  # still running (no Tekton here)
        clock.advance(minutes=1)
        second = scheduled_run_name("busy", first + datetime.timedelta(minutes=1))
        status = await wait_phase(api, second, "Cancelled")
        assert cond.condition(status["conditions"], "Ready")["reason"] == "ConcurrencyForbidden"


async def test_an_invalid_cron_or_time_zone_stalls_the_workflow_with_its_path(api: Api) -> None:
    clock = ManualClock()
    async with RunningOperator(clock=clock.now):
        await api.apply(scheduled("bad-cron", "61 * * * *"))
        await api.apply(scheduled("bad-zone", "0 * * * *", timeZone="Mars/Olympus_Mons"))
        for name, where in (("bad-cron", "$.spec.schedule.cron"), ("bad-zone", "$.spec.schedule.timeZone")):
            ready = await eventually(lambda n=name: workflow_condition(api, n, "Ready"), what=f"{name} Ready")
            assert ready["status"] == "False" and ready["reason"] == "InvalidSchedule"
            assert ready["message"].startswith(where)
        clock.advance(hours=2)
        await eventually(lambda: _value(events_of(api, "bad-zone", "InvalidSchedule")), what="event")
        assert runs_of(api, "bad-cron") == runs_of(api, "bad-zone") == []
        # The API schema refuses what it can check itself: a schedule without cron
        no_cron = scheduled("no-cron", "* * * * *")
        no_cron["spec"]["schedule"] = {"suspend": True}
        code, answer = await api.try_call("POST", path(SLUICE, "workflows"), no_cron)
        assert code == 422 and "cron" in answer["message"]


async def _value(value: Any) -> Any:
    return value


def test_sluice_run_and_compile_ignore_the_schedule(tmp_path: Path) -> None:
    """A schedule is the operator's: locally the workflow compiles to the same PipelineRun and runs
    once, now, when asked."""
    source = ROOT / "tests" / "local" / "fixtures" / "gated.yaml"
    doc = yaml.safe_load(source.read_text())
    doc["spec"]["schedule"] = {"cron": "* * * * *", "timeZone": "Europe/Berlin"}
    scheduled_file = tmp_path / "gated-scheduled.yaml"
    scheduled_file.write_text(yaml.safe_dump(doc))
    env = {**os.environ, "SLUICE_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}

    def sluice(*args: str) -> subprocess.CompletedProcess[str]:
        return run_captured([sys.executable, "-m", "controller.cli.main", *args], env=env, timeout=120)

    compiled = [sluice("compile", str(path)) for path in (source, scheduled_file)]
    assert compiled[0].returncode == compiled[1].returncode == 0, compiled[1].stderr
    assert compiled[0].stdout == compiled[1].stdout
    run = sluice("run", str(scheduled_file), "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["phase"] == "Succeeded"
