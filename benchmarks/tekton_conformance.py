"""Tekton's own examples through `sluice run` (issue 15): how many a new user sees succeed.

`python -m benchmarks tekton-conformance --examples DIR` runs every `*.yaml` of DIR as
`sluice run --json FILE`, each in a throwaway folder (its own SLUICE_HOME and working directory)
with at most `PER_FILE_SECONDS`, one at a time, steps as host processes. Each file's outcome:

- `succeeded`: exit status 0 (every run of the file reached Succeeded);
- `refused`: exit status 1 and no run on stdout: the input was refused before any step ran
  (an unsupported field, a reference the input cannot satisfy), with a one-line reason;
- `failed`: a run was started and did not succeed (its JSON phase is Failed), or the file ran
  out of time, or the command died otherwise.

A Python traceback on stderr is counted in `tracebacks` too (the goal is none). The row carries
each file's outcome and the reason line of each refusal or failure. Without `--examples` the
benchmark is skipped with a message: the examples are Tekton's, not part of this repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import row

REPO = Path(__file__).resolve().parent.parent
PER_FILE_SECONDS = 120
GOAL_SHARE = 34 / 40  # the goal: 34 of Tekton's 40 stable example PipelineRuns succeed
TRACEBACK = "Traceback (most recent call last)"


def classify(code: int | None, stdout: str, stderr: str) -> tuple[str, str]:
    """(outcome, reason line) of one `sluice run --json` (code None: it ran out of time)."""
    if code is None:
        return "failed", f"timed out after {PER_FILE_SECONDS} s"
    if code == 0:
        return "succeeded", ""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    ran = _runs(stdout)
    if ran:
        failures = [line for line in lines if line.startswith("sluice run: task ")]
        failed = [r for r in ran if r.get("phase") != "Succeeded"]
        reason = (
            failures[0]
            if failures
            else f"{failed[0].get('run')}: {failed[0].get('message')}"
            if failed
            else ""
        )
        return "failed", reason
    if code == 1 and lines and TRACEBACK not in stderr:
        return "refused", lines[-1]
    return "failed", lines[-1] if lines else f"exit status {code}"


def _runs(stdout: str) -> list[dict[str, Any]]:
    """The runs `--json` printed: one object, or a list for several runs; none when refused."""
    try:
        data = json.loads(stdout)
    except ValueError:
        return []
    items = data if isinstance(data, list) else [data]
    return [item for item in items if isinstance(item, dict) and "phase" in item]


def run_file(path: Path) -> dict[str, Any]:
    """One example in a throwaway folder: its outcome, reason, seconds and whether it raised."""
    with tempfile.TemporaryDirectory(prefix="sluice-conformance-") as scratch:
        env = {**os.environ, "SLUICE_HOME": str(Path(scratch) / "home"), "SLUICE_MLFLOW": "off"}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        started = time.perf_counter()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "controller.cli.main", "run", "--json", str(path.resolve())],
                cwd=scratch,
                env=env,
                capture_output=True,
                text=True,
                timeout=PER_FILE_SECONDS,
            )
            code, stdout, stderr = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired as exc:
            code, stdout, stderr = None, "", str(exc.stderr or "")
        seconds = time.perf_counter() - started
    outcome, reason = classify(code, stdout, stderr)
    return {
        "file": path.name,
        "outcome": outcome,
        "reason": reason,
        "seconds": round(seconds, 2),
        "traceback": TRACEBACK in stderr,
    }


def measure(examples: Path) -> dict[str, Any]:
    files = sorted(examples.glob("*.yaml"))
    outcomes = [run_file(path) for path in files]
    count = {k: sum(1 for o in outcomes if o["outcome"] == k) for k in ("succeeded", "refused", "failed")}
    total = len(outcomes)
    result = row(
        "tekton-conformance",
        "succeeded",
        count["succeeded"],
        "examples",
        "total examples",
        total,
        f">= {GOAL_SHARE:.0%} succeed (34 of Tekton's 40), 0 tracebacks",
        bool(total)
        and count["succeeded"] >= GOAL_SHARE * total
        and not any(o["traceback"] for o in outcomes),
    )
    result.update(count)
    result["tracebacks"] = sum(1 for o in outcomes if o["traceback"])
    result["total"] = total
    result["files"] = outcomes
    return result


def run(quick: bool = False, examples: Path | None = None) -> list[dict[str, Any]]:
    if examples is None:
        print(
            "tekton-conformance: skipped (give --examples DIR, a folder of Tekton examples)", file=sys.stderr
        )
        return []
    if not examples.is_dir():
        raise ValueError(f"--examples {examples}: not a folder")
    return [measure(examples)]
