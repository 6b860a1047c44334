"""What a RUN argument means, one rule for local runs and WorkflowRuns on a cluster.

A RUN is a run's exact name, `latest` (the newest), or a unique prefix of a name; anything else
is an error that says why and lists the candidates. The caller gives the names newest first and
the words its messages use (`RunWords`), so `sluice logs RUN` and `sluice logs RUN --cluster`
apply the same rule and say the same thing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

LATEST = "latest"
SHOWN_CANDIDATES = 8


class RunRefError(LookupError):
    """A RUN that names no run, or more than one: the message says which and lists candidates."""


@dataclass(frozen=True)
class RunWords:
    """How a caller's messages name its runs: `empty` when there are none at all, `missing` (given
    RUN quoted) when none is RUN or starts with it, `plural` ("runs", "WorkflowRuns") and `part`
    (what more to give: "id", "name")."""

    empty: str
    missing: Callable[[str], str]
    plural: str
    part: str


def pick_run(ref: str, names: Sequence[str], words: RunWords) -> int:
    """The index in `names` (newest first) of the run `ref` means; RunRefError otherwise."""
    if ref == LATEST:
        if not names:
            raise RunRefError(words.empty)
        return 0
    if ref and ref in names:
        return names.index(ref)
    matches = [i for i, name in enumerate(names) if name.startswith(ref)] if ref else []
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunRefError(words.missing(repr(ref)))
    shown = [names[i] for i in matches[:SHOWN_CANDIDATES]]
    more = f" and {len(matches) - SHOWN_CANDIDATES} more" if len(matches) > SHOWN_CANDIDATES else ""
    listed = f"{len(matches)} {words.plural}: {', '.join(shown)}{more}"
    raise RunRefError(f"{ref!r} matches {listed}; give more of the {words.part}")
