"""A local run's record printed for people: `sluice run`'s summary and failure (the last lines of
a failed task's log), `sluice runs show`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from controller.executors.local.progress import ICONS, duration_text

TAIL_LINES = 25  # of a failed task's log, printed under its failure
RESULT_WIDTH = 100  # a result or output longer than this is cut


def print_failure(data: dict[str, Any], err: IO[str]) -> None:
    """Why a run failed, on stderr: each failed task's message and the last lines of its log."""
    failed = [s for s in data["steps"] if s["phase"] == "Failed"]
    if not failed:
        print(f"sluice run: run {data['run']} failed: {data['message']}", file=err)
        return
    for step in failed:
        print(f"sluice run: task {step['name']} failed: {step['message']}", file=err)
        log = Path(data["folder"]) / step["log"]
        if log.is_file():
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines()[-TAIL_LINES:]
            print(f"--- last {len(lines)} lines of {log}", file=err)
            for line in lines:
                print(f"    {line}", file=err)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= RESULT_WIDTH else text[: RESULT_WIDTH - 1] + "…"


def print_run(data: dict[str, Any], out: IO[str], detail: bool) -> None:
    """A run record for people: phase, each step with its results, the workflow outputs."""
    duration = data.get("duration")
    took = f" in {duration_text(duration)}" if isinstance(duration, int | float) else ""
    print(f"run {data['run']} ({data.get('workflow', '')}): {data['phase']}{took}", file=out)
    if data.get("message") and data["phase"] != "Succeeded":
        print(f"  {data['message']}", file=out)
    width = max((len(s["name"]) for s in data["steps"]), default=4)
    for step in data["steps"]:
        state = "cached" if step.get("cached") else step["phase"].lower()
        if (step["phase"] == "Skipped" and step.get("reason")) or step.get("reason") == "FailureIgnored":
            state += f" ({step['reason']})"
        took = duration_text(step["duration"]) if isinstance(step.get("duration"), int | float) else ""
        shown = f"  {step['displayName']}" if step.get("displayName") else ""  # Tekton's displayName
        print(
            f"  {ICONS.get(step['phase'], '?')} {step['name']:<{width}}  {state:<12} {took:>7}{shown}",
            file=out,
        )
        for key, value in (step.get("results") or {}).items():
            print(f"      {key} = {_short(value)}", file=out)
        if step["phase"] == "Skipped" and step.get("message"):
            print(f"      {step['message']}", file=out)  # why: the condition and its values
        if detail:
            if step.get("startTime"):
                print(f"      started {step['startTime']}, attempts {step.get('attempts', 0)}", file=out)
            for item in step.get("inputs") or []:
                print(f"      in  {item['path']}  sha256:{item['sha256'][:16]}", file=out)
            for item in step.get("artifacts") or []:
                label = f" ({item['result']})" if item.get("result") else ""
                print(f"      out {item['path']}{label}  sha256:{item['sha256'][:16]}", file=out)
            metrics = step.get("metrics") or {}
            for key, values in metrics.items():
                if values:
                    print(f"      {key}: last {values[-1]:.6g} over {len(values)} epochs", file=out)
            if step.get("message") and step["phase"] != "Skipped":
                print(f"      {step['message']}", file=out)
            if step.get("startTime"):
                print(f"      log {Path(data['folder']) / step['log']}", file=out)
    if data.get("outputs"):
        print("outputs:", file=out)
        for key, value in data["outputs"].items():
            print(f"  {key} = {_short(value)}", file=out)
    for warning in data.get("warnings") or []:
        print(warning, file=out)
    print(f"folder: {data['folder']}", file=out)
