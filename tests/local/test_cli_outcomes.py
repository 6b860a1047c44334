"""Outcomes said plainly by `sluice run`: why a condition skipped a step, `--fail-on-skip`, progress
lines and `--json` events without a terminal (real subprocesses, real runs of small workflows)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.local.helpers import FIXTURES
from tests.local.test_cli import sluice

GATED = str(FIXTURES / "gated.yaml")
WHY_DEPLOY = "when {{ steps.evaluate.outputs.mae }} <= {{ inputs.max-mae }} is false: 0.559 <= 0.5"
WHY_TAG = 'when {{ inputs.channel }} in ["release"] is false: "nightly" in ["release"]'


def test_a_gate_that_skips_deploy_says_which_condition_and_values(home: Path) -> None:
    done = sluice(home, "run", GATED)
    assert done.returncode == 0, done.stderr  # a skip is not a failure unless asked
    lines = done.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("run gated-") and ":" in line)
    summary = lines[start:]  # the summary printed when the run ended
    deploy = next(i for i, line in enumerate(summary) if line.strip().startswith("- deploy"))
    assert "skipped" in summary[deploy]
    assert summary[deploy + 1].strip() == WHY_DEPLOY  # the condition as written, then the numbers
    tag = next(i for i, line in enumerate(summary) if line.strip().startswith("- tag"))
    assert summary[tag + 1].strip() == WHY_TAG
    # the plain progress lines (no terminal here) say it as the skip happens, too
    assert f"- deploy skipped (WhenExpressionsFalse): {WHY_DEPLOY}" in lines


def test_json_steps_carry_the_skip_reason(home: Path) -> None:
    done = sluice(home, "run", GATED, "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)  # one JSON object on stdout, nothing else
    steps = {s["name"]: s for s in data["steps"]}
    assert steps["deploy"]["phase"] == "Skipped"
    assert steps["deploy"]["reason"] == "WhenExpressionsFalse"
    assert steps["deploy"]["message"] == WHY_DEPLOY
    assert steps["tag"]["message"] == WHY_TAG


def test_fail_on_skip_exits_1_with_one_line_naming_the_skipped_steps(home: Path) -> None:
    done = sluice(home, "run", GATED, "--fail-on-skip")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last == f"sluice run: --fail-on-skip: deploy skipped: {WHY_DEPLOY}; tag skipped: {WHY_TAG}"
    assert "Traceback" not in done.stderr

    passing = sluice(
        home, "run", GATED, "--fail-on-skip", "--input", "max-mae=0.6", "--input", "channel=release", "--json"
    )
    assert passing.returncode == 0, passing.stderr
    steps = {s["name"]: s for s in json.loads(passing.stdout)["steps"]}
    assert steps["deploy"]["phase"] == "Succeeded" and steps["tag"]["phase"] == "Succeeded"


COUNTING = str(FIXTURES / "counting.yaml")


def test_without_a_terminal_long_steps_print_progress_every_interval(home: Path) -> None:
    done = sluice(home, "run", COUNTING, env={"SLUICE_PROGRESS_INTERVAL": "0.5"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    epochs = [line for line in lines if line.startswith("▶ train epoch ")]
    simulations = [line for line in lines if line.startswith("▶ simulate simulation ")]
    assert epochs[0] == "▶ train epoch 1/20 loss=1"  # the first at once, with the latest metrics
    assert simulations[0] == "▶ simulate simulation 1/20"
    # twenty lines over about two seconds, one shown per half second: a handful, not all twenty
    assert 2 <= len(epochs) <= 12 and 2 <= len(simulations) <= 12, lines
    assert lines.index(epochs[-1]) < lines.index(next(x for x in lines if x.startswith("✓ train")))


def test_an_interval_of_0_shows_every_progress_line(home: Path) -> None:
    done = sluice(home, "run", COUNTING, env={"SLUICE_PROGRESS_INTERVAL": "0"})
    assert done.returncode == 0, done.stderr
    assert [x for x in done.stdout.splitlines() if x.startswith("▶ train epoch ")][-1].startswith(
        "▶ train epoch 20/20"
    )


def test_a_bad_progress_interval_is_one_clear_line(home: Path) -> None:
    done = sluice(home, "run", COUNTING, env={"SLUICE_PROGRESS_INTERVAL": "soon"})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "sluice run: SLUICE_PROGRESS_INTERVAL must be a number of seconds >= 0, not 'soon'"
    )


def test_json_streams_one_event_per_line_on_stderr(home: Path) -> None:
    done = sluice(home, "run", COUNTING, "--json", env={"SLUICE_PROGRESS_INTERVAL": "0.5"})
    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout)  # stdout: the one JSON object, unchanged
    assert set(final) >= {"run", "phase", "steps", "outputs"} and final["phase"] == "Succeeded"
    events = [json.loads(line) for line in done.stderr.splitlines()]  # every line is an event
    assert all(e["run"] == final["run"] and e["time"].endswith("Z") for e in events)
    kinds = [(e["event"], e.get("task")) for e in events]
    for task in ("train", "simulate"):
        assert kinds.index(("start", task)) < kinds.index(("progress", task)) < kinds.index(("end", task))
    progress = [e for e in events if e["event"] == "progress" and e["task"] == "train"]
    assert progress[0] == {**progress[0], "unit": "epoch", "done": 1, "total": 20, "metrics": {"loss": 1.0}}
    assert 2 <= len(progress) <= 12
    simulated = next(e for e in events if e["event"] == "progress" and e["task"] == "simulate")
    assert simulated["unit"] == "simulation" and simulated["total"] == 20
    end = next(e for e in events if e["event"] == "end" and e["task"] == "train")
    assert end["phase"] == "Succeeded" and end["duration"] >= 2.0
    assert events[0]["event"] == "notice" and "steps run on this machine" in events[0]["message"]


def test_json_events_say_why_a_step_was_skipped(home: Path) -> None:
    done = sluice(home, "run", GATED, "--json")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines()]
    (skip,) = [e for e in events if e["event"] == "skip" and e["task"] == "deploy"]
    assert skip["reason"] == "WhenExpressionsFalse" and skip["message"] == WHY_DEPLOY


def test_the_three_body_simulation_reports_its_progress(tmp_path: Path) -> None:
    import subprocess
    import sys

    from controller.protocol import parse_progress

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "stages.prepare",
            "--generator",
            "three-body",
            "--samples",
            "3",
            "--time-steps",
            "5",
            "--duration",
            "0.5",
            "--artifacts-dir",
            str(tmp_path / "dataset"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    found = [p for p in map(parse_progress, done.stdout.splitlines()) if p is not None]
    assert [(p.unit, p.epoch, p.epochs) for p in found] == [("simulation", n, 3) for n in (1, 2, 3)]


def test_the_report_says_why_a_step_was_skipped(home: Path) -> None:
    import html

    done = sluice(home, "run", GATED, "--json")
    assert done.returncode == 0, done.stderr
    report = sluice(home, "report", json.loads(done.stdout)["run"])
    assert report.returncode == 0, report.stderr
    page = Path(report.stdout.strip()).read_text(encoding="utf-8")
    assert html.escape(f"Skipped (WhenExpressionsFalse): {WHY_DEPLOY}", quote=False) in page


def test_json_events_include_retries(home: Path, tmp_path: Path) -> None:
    import yaml

    from tests.local.helpers import pipelinerun, script_task

    flaky = script_task("flaky", '[ "$(context.task.retry-count)" = "1" ] || exit 3', retries=1)
    path = tmp_path / "flaky.yaml"
    path.write_text(yaml.safe_dump(pipelinerun("flaky", [flaky])), encoding="utf-8")
    done = sluice(home, "run", str(path), "--json")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(e["event"], e.get("attempt")) for e in events if e.get("task") == "flaky"] == [
        ("start", None),
        ("retry", 2),
        ("end", None),
    ]


def test_a_rerun_answered_from_the_cache_starts_nothing_and_says_so(home: Path) -> None:
    first = sluice(home, "run", COUNTING, env={"SLUICE_PROGRESS_INTERVAL": "60"})
    assert first.returncode == 0, first.stderr
    assert "▶ train started" in first.stdout + first.stderr
    again = sluice(home, "run", COUNTING)
    assert again.returncode == 0, again.stderr
    lines = (again.stdout + again.stderr).splitlines()
    assert "✓ train cached" in "\n".join(lines)
    assert not [line for line in lines if line.endswith(" started")], lines  # nothing ran
    streamed = sluice(home, "run", COUNTING, "--json")
    events = [json.loads(line) for line in streamed.stderr.splitlines()]
    # the machine stream keeps one start and one end per task; the end says it was a cache hit
    train = [e for e in events if e.get("task") == "train"]
    assert [e["event"] for e in train] == ["start", "end"] and train[1]["cached"] is True
