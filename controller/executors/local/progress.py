"""Showing a local run as it happens: a live rich table on a terminal, plain lines otherwise.

Both are listeners of `LocalRun` (`listener(task, event)`), called on the event loop thread.
"""

from __future__ import annotations

import time
from typing import IO, Any

from controller.executors.local.store import RunRecord, TaskRecord

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


class PlainProgress:
    """One line per task start and end (and per retry): readable in CI logs and pipes."""

    def __init__(self, out: IO[str]):
        self.out = out

    def __call__(self, task: TaskRecord, event: str) -> None:
        if event == "start":
            line = f"{ICONS['Running']} {task.name} started"
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
                    ProgressBar(total=max(total, 1), completed=done, width=24), Text(f"epoch {done}/{total}")
                )
            elif task.progress is not None:
                bar = Text(f"{task.progress[0]}/{task.progress[1]} epochs", style="dim")
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
