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
