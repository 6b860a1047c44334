"""The one Go-duration parser (`controller.units`) and what each of its callers accepts."""

from __future__ import annotations

from typing import Any

import pytest

from controller.executors.local.tekton import UnsupportedError, timeout_seconds
from controller.spec import SpecError, load_workflow_text
from controller.units import format_duration, parse_duration, parse_quantity
from stages.common import StageError
from stages.deploy import parse_duration as deploy_timeout

# text, seconds (Go's time.ParseDuration agrees on each)
VALID = [
    ("0", 0.0),
    ("+0", 0.0),
    ("-0", 0.0),
    ("0s", 0.0),
    ("90s", 90.0),
    ("10m", 600.0),
    ("1h", 3600.0),
    ("1h30m", 5400.0),
    ("1h0m0s", 3600.0),
    ("1m30s", 90.0),
    ("2h45m30s", 9930.0),
    ("1.5h", 5400.0),
    ("1.5m", 90.0),
    (".5s", 0.5),
    ("1.s", 1.0),
    ("500ms", 0.5),
    ("250ms", 0.25),
    ("1s500ms", 1.5),
    ("1500us", 0.0015),
    ("1500µs", 0.0015),  # micro sign
    ("1500μs", 0.0015),  # Greek mu
    ("1000000000ns", 1.0),
    ("1ns", 1e-9),
    ("0.0000000001s", 0.0),  # below a nanosecond: dropped, as Go does
    ("+5m", 300.0),
    ("30s1h", 3630.0),  # Go takes the parts in any order
    ("2562047h", 2562047 * 3600.0),
]
INVALID = [
    "",
    "1",  # a number needs a unit (but `0`)
    "1.5",
    "10 m",
    " 10m",
    "1h 30m",
    "1d",
    "1H",
    "1hm",
    "h",
    ".",
    ".s",
    "-",
    "+",
    "1e3s",
    "1h-30m",
    "--1s",
    "soon",
    "١s",  # not an ASCII digit
    "2562048h",  # longer than Go's int64 of nanoseconds
]


@pytest.mark.parametrize(("text", "seconds"), VALID)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, minimum=None) == pytest.approx(seconds, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("text", INVALID)
def test_not_go_durations(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a duration|longer than a Go duration"):
        parse_duration(text, minimum=None)


@pytest.mark.parametrize(
    ("text", "range_", "seconds"),
    [
        ("-1h30m", {"minimum": None}, -5400.0),
        ("-1.5s", {"minimum": None}, -1.5),
        ("1s", {"minimum": 1}, 1.0),
        ("1500ms", {"minimum": 1}, 1.5),
        ("0", {}, 0.0),
        ("1ns", {"positive": True}, 1e-9),
        ("90", {"bare_unit": "s"}, 90.0),
        ("1.5", {"bare_unit": "m"}, 90.0),
        (" 10m\n", {"bare_unit": "s"}, 600.0),
    ],
)
def test_ranges_accepted(text: str, range_: dict[str, Any], seconds: float) -> None:
    assert parse_duration(text, **range_) == seconds


@pytest.mark.parametrize(
    ("text", "range_", "message"),
    [
        ("-1s", {}, "'-1s' is negative"),
        ("999ms", {"minimum": 1}, "'999ms' is shorter than one second"),
        ("0", {"minimum": 1}, "shorter than one second"),
        ("0s", {"positive": True}, "not longer than zero"),
        ("0", {"bare_unit": "s", "positive": True}, "not longer than zero"),
        ("90", {}, "is not a duration"),
        ("1 m", {"bare_unit": "s"}, "is not a duration"),
        (12, {}, "is not a duration"),
        (None, {}, "is not a duration"),
    ],
)
def test_ranges_refused(text: Any, range_: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text, **range_)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("0.5", 0.5), ("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400), (" 2m ", 120)],
)
def test_the_deploy_stage_timeout(text: str, seconds: float) -> None:
    assert deploy_timeout(text, 1) == seconds


@pytest.mark.parametrize("text", ["soon", "0", "0s", "-5", "-1m", "10 minutes", ""])
def test_the_deploy_stage_refuses(text: str) -> None:
    with pytest.raises(StageError, match="timeout"):
        deploy_timeout(text, 1)


def test_the_deploy_stage_default() -> None:
    assert deploy_timeout(None, 7) == 7


@pytest.mark.parametrize(
    ("text", "seconds"), [("1h0m0s", 3600), ("1.5m", 90), ("250ms", 0.25), ("0", None), ("0s", None)]
)
def test_tekton_timeouts(text: str, seconds: float | None) -> None:
    assert timeout_seconds(text, "t") == seconds


@pytest.mark.parametrize("text", ["10 minutes", "-1h", 0, "", None])
def test_tekton_timeouts_refused(text: Any) -> None:
    with pytest.raises(UnsupportedError, match=r"^t: "):
        timeout_seconds(text, "t")


STEP = """apiVersion: sluice.dev/v1alpha1
kind: Workflow
metadata: {{name: w}}
spec:
  steps:
    - {{name: s, image: busybox, command: ["true"], timeout: "{}"}}
"""


@pytest.mark.parametrize(("text", "seconds"), [("1h30m", 5400), ("90s", 90), ("1.5s", 1), ("1s500ms", 1)])
def test_step_timeouts_are_whole_seconds(text: str, seconds: int) -> None:
    assert load_workflow_text(STEP.format(text), "w.yaml").steps[0].timeout_seconds == seconds


@pytest.mark.parametrize("text", ["500ms", "0s"])
def test_step_timeouts_under_a_second_are_refused(text: str) -> None:
    with pytest.raises(SpecError, match="shorter than one second"):
        load_workflow_text(STEP.format(text), "w.yaml")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59, "59s"), (300, "5m0s"), (3600, "1h0m0s"), (5400, "1h30m0s"), (90.9, "1m30s")],
)
def test_format_duration_round_trips(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == int(seconds)


def test_quantities() -> None:
    assert parse_quantity("500m") == parse_quantity("0.5") and parse_quantity("2Gi") == 2**31
    with pytest.raises(ValueError, match="Kubernetes quantity"):
        parse_quantity("2 GB")
