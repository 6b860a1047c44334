"""Which runs `sluice runs` lists: one rule for local runs and for WorkflowRuns on a cluster."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from controller.cli.home import fail

PHASES = ("Pending", "Running", "Succeeded", "Failed", "Cancelled")

Run = TypeVar("Run")


def parse_phase(phase: str | None) -> str | None:
    """The phase as recorded (`--phase failed` means Failed); an unknown one is a usage error."""
    if phase is None:
        return None
    for known in PHASES:
        if known.lower() == phase.lower():
            return known
    raise fail(f"sluice runs: --phase {phase!r}: expected one of {', '.join(PHASES)}", 2)


@dataclass(frozen=True)
class RunFilter:
    """`--workflow`, `--phase` (parsed) and `--limit` of `sluice runs`."""

    workflow: str | None = None
    phase: str | None = None
    limit: int | None = None

    @property
    def narrows(self) -> bool:
        """Whether a run could be left out for its workflow or phase (an empty list then says 'matching')."""
        return bool(self.workflow or self.phase)

    def select(
        self, runs: Iterable[Run], workflow_of: Callable[[Run], str], phase_of: Callable[[Run], str]
    ) -> list[Run]:
        """The runs (given newest first) of the workflow and in the phase asked for, at most `limit`."""
        chosen = [
            run
            for run in runs
            if (self.workflow is None or workflow_of(run) == self.workflow)
            and (self.phase is None or phase_of(run) == self.phase)
        ]
        return chosen[: self.limit] if self.limit else chosen
