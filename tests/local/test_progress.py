"""What a user sees while a run goes: the live table (terminal) and plain lines (pipes, CI)."""

from __future__ import annotations

import io
import time
from pathlib import Path

from controller.executors.local.progress import LiveProgress, PlainProgress
from controller.executors.local.store import RunRecord, TaskRecord


def _record() -> RunRecord:
    record = RunRecord("demo-run", "demo", "default", Path("/nowhere"), start=time.time() - 3)
    now = time.time()
    record.tasks = {
        "prepare": TaskRecord("prepare", "tasks", phase="Succeeded", cached=True, start=now - 3, end=now - 3),
        "train": TaskRecord("train", "tasks", phase="Running", start=now - 2, progress=(3, 10)),
        "deploy": TaskRecord("deploy", "tasks", phase="Skipped", reason="WhenExpressionsFalse"),
    }
    return record


def test_live_table_shows_states_durations_and_the_epoch_bar() -> None:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(LiveProgress(_record(), io.StringIO()).render())
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "run demo-run" in text
    assert "cached" in text and "running" in text and "skipped (WhenExpressionsFalse)" in text
    assert "epoch 3/10" in text
    assert "━" in text  # the bar itself


def test_plain_lines_name_each_task_and_its_outcome() -> None:
    out = io.StringIO()
    now = [100.0]
    progress = PlainProgress(out, interval=5.0, clock=lambda: now[0])
    record = _record()
    progress(record.tasks["train"], "start")
    progress(record.tasks["train"], "line")  # the first progress line is shown at once
    now[0] += 4.9
    progress(record.tasks["train"], "line")  # then at most one per interval
    failed = TaskRecord(
        "train", "tasks", phase="Failed", message="step train exited with code 1", start=1, end=3
    )
    progress(failed, "end")
    progress(record.tasks["prepare"], "end")
    assert out.getvalue().splitlines() == [
        "▶ train started",
        "▶ train epoch 3/10",
        "✗ train failed 2.0s: step train exited with code 1",
        "✓ prepare cached 0.0s",
    ]


def test_the_progress_line_is_written_and_read_by_one_protocol() -> None:
    import pytest

    from controller.protocol import Progress, parse_progress, progress_line

    line = progress_line(3, 10, {"loss": 0.123456789, "val_loss": float("nan"), "val_mae": 2e-7})
    assert line == "epoch 3/10 loss=0.123457 val_loss=nan val_mae=2e-07"  # what train-keras prints
    parsed = parse_progress(line)
    assert parsed is not None and (parsed.epoch, parsed.epochs) == (3, 10)
    assert parsed.metrics["loss"] == 0.123457 and parsed.metrics["val_mae"] == 2e-07
    assert parsed.metrics["val_loss"] != parsed.metrics["val_loss"]  # nan
    assert parse_progress("[train] epoch 2/5 loss=0.5") == Progress(2, 5, {"loss": 0.5})  # anywhere in a line
    assert parse_progress("Epoch 2/5") is None  # Keras' own progress bar is not the protocol
    assert parse_progress("prepare: wrote 20000 rows") is None
    assert parse_progress("epoch 1/2 loss=1e") == Progress(1, 2, {})  # not a number: left out
    # other long work counts in its own unit: the three-body generator's simulations
    assert progress_line(4, 200, {"rejected": 1}, unit="simulation") == "simulation 4/200 rejected=1"
    assert parse_progress("simulation 4/200 rejected=1") == Progress(4, 200, {"rejected": 1.0}, "simulation")
    assert parse_progress("step 4/200") is None  # only the protocol's units
    with pytest.raises(ValueError, match="progress unit 'step'"):
        progress_line(1, 2, {}, unit="step")


def test_results_are_written_as_the_protocol_says() -> None:
    import pytest

    from controller.protocol import format_number, result_text

    assert [result_text(v) for v in (True, False, 3, 0.5, 1.0, "a b")] == [
        "true",
        "false",
        "3",
        "0.5",
        "1",
        "a b",
    ]
    assert format_number(0.000000123) == "0.000000123"
    with pytest.raises(ValueError, match="non-finite"):
        result_text(float("inf"))
