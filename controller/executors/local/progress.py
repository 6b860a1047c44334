"""Showing a local run as it happens: a live rich table on a terminal, plain lines otherwise,
JSON lines with `--json`.

All are listeners of `LocalRun` (`listener(task, event)`), called on the event loop thread.
Without a terminal a long step still shows it is alive: its progress (epochs, simulations) as a
line at most every `interval` seconds (`SLUICE_PROGRESS_INTERVAL`, default 5).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import IO, Any

from controller.executors.local.store import RunRecord, TaskRecord
from controller.settings import DEFAULT_PROGRESS_INTERVAL

ICONS = {
    "Pending": "·",
    "Running": "▶",
    "Succeeded": "✓",
    "Failed": "✗",
    "Skipped": "-",
    "Cancelled": "■",
}


def state_text(task: TaskRecord) -> str:
    if task.phase == "Succeeded" and task.cached:
        return "cached"
    if task.phase == "Skipped":
        return f"skipped ({task.reason})" if task.reason else "skipped"
    if task.phase == "Running" and task.attempts > 1:
        return f"running (attempt {task.attempts})"
    return task.phase.lower()


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def progress_text(task: TaskRecord) -> str:
    """`epoch 3/10 loss=0.25 val_loss=0.3`: the task's progress and its latest metrics."""
    if task.progress is None:
        return ""
    done, total = task.progress
    metrics = [f"{key}={values[-1]:.6g}" for key, values in task.metrics.items() if values]
    return " ".join([f"{task.progress_unit} {done}/{total}", *metrics])


class _Throttle:
    """Whether a task's progress is due: its first, then one per `interval` seconds."""

    def __init__(self, interval: float, clock: Callable[[], float]):
        self.interval, self.clock = interval, clock
        self.last: dict[str, float] = {}

    def due(self, task: str) -> bool:
        now = self.clock()
        if task in self.last and now - self.last[task] < self.interval:
            return False
        self.last[task] = now
        return True


class PlainProgress:
    """One line per task start and end (and per retry), and a progress line at most every
    `interval` seconds while a task counts epochs or simulations: readable in CI logs and pipes."""

    def __init__(
        self,
        out: IO[str],
        interval: float = DEFAULT_PROGRESS_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.out = out
        self.throttle = _Throttle(interval, clock)

    def __call__(self, task: TaskRecord, event: str) -> None:
        if event == "start":
            if task.cached:  # answered from the cache: its end line says so, nothing started
                return
            line = f"{ICONS['Running']} {task.name} started"
        elif event == "line":
            if task.progress is None or not self.throttle.due(task.name):
                return
            line = f"{ICONS['Running']} {task.name} {progress_text(task)}"
        elif event == "retry":
            line = f"↻ {task.name} retrying (attempt {task.attempts})"
        elif event == "end":
            line = f"{ICONS.get(task.phase, '?')} {task.name} {state_text(task)}"
            if task.end is not None and task.start is not None:
                line += f" {duration_text(task.end - task.start)}"
            if task.phase in ("Failed", "Skipped") and task.message:
                line += f": {task.message}"
        else:
            return
        print(line, file=self.out, flush=True)

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class JsonEvents:
    """`--json`: one JSON object per line for each start, progress (throttled like plain lines),
    retry, end and skip, with the run, the task and the time (ISO 8601, UTC)."""

    def __init__(
        self,
        out: IO[str],
        run: str,
        interval: float = DEFAULT_PROGRESS_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.out, self.run = out, run
        self.throttle = _Throttle(interval, clock)

    def __call__(self, task: TaskRecord, event: str) -> None:
        if event == "line" and (task.progress is None or not self.throttle.due(task.name)):
            return
        name = {"line": "progress", "end": "skip" if task.phase == "Skipped" else "end"}.get(event, event)
        data: dict[str, Any] = {"task": task.name}
        if name == "progress" and task.progress is not None:
            done, total = task.progress
            # NaN is not JSON: a metric that is not a finite number travels as null
            metrics = {k: v[-1] if math.isfinite(v[-1]) else None for k, v in task.metrics.items() if v}
            data.update(unit=task.progress_unit, done=done, total=total, metrics=metrics)
        elif name == "retry":
            data["attempt"] = task.attempts
        elif name in ("end", "skip"):
            data.update(phase=task.phase, reason=task.reason, message=task.message, cached=task.cached)
            if task.end is not None and task.start is not None:
                data["duration"] = round(task.end - task.start, 3)
        elif name != "start":
            return
        self._emit(name, data)

    def notice(self, message: str) -> None:
        """A message for people (how steps run), as an event of its own."""
        self._emit("notice", {"message": message})

    def _emit(self, event: str, fields: dict[str, Any]) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        print(json.dumps({"event": event, "run": self.run, "time": now, **fields}), file=self.out, flush=True)

    def __enter__(self) -> JsonEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class LiveProgress:
    """A rich table, one row per task: state, duration, and an epoch bar while a model trains."""

    def __init__(self, record: RunRecord, out: IO[str]):
        from rich.console import Console
        from rich.live import Live

        self.record = record
        self.console = Console(file=out)
        self.live = Live(
            console=self.console, refresh_per_second=8, get_renderable=self.render, transient=False
        )

    def render(self) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        table = Table.grid(padding=(0, 2))
        table.add_column(width=1)
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(justify="right", no_wrap=True)
        table.add_column(no_wrap=True)
        styles = {"Succeeded": "green", "Failed": "red", "Running": "cyan", "Cancelled": "yellow"}
        for task in self.record.tasks.values():
            style = (
                "dim" if task.cached or task.phase in ("Pending", "Skipped") else styles.get(task.phase, "")
            )
            bar: Any = ""
            if task.progress is not None and task.phase == "Running":
                done, total = task.progress
                bar = Table.grid(padding=(0, 1))
                bar.add_row(
                    ProgressBar(total=max(total, 1), completed=done, width=24),
                    Text(f"{task.progress_unit} {done}/{total}"),
                )
            elif task.progress is not None:
                bar = Text(f"{task.progress[0]}/{task.progress[1]} {task.progress_unit}s", style="dim")
            table.add_row(
                Text(ICONS.get(task.phase, "?"), style=style),
                Text(task.name, style=style),
                Text(state_text(task), style=style),
                Text(duration_text(task.duration) if task.start else ""),
                bar,
            )
        elapsed = time.time() - self.record.start if self.record.start else 0.0
        outer = Table.grid()
        outer.add_row(Text(f"run {self.record.run}  {duration_text(elapsed)}", style="bold"))
        outer.add_row(table)
        return outer

    def __call__(self, task: TaskRecord, event: str) -> None:
        return None  # the table is re-rendered from the record on every refresh

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.refresh()
        self.live.__exit__(None, None, None)
