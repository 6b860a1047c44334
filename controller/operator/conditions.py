"""The one place kstatus conditions are made.

Every status Sluice writes (Workflow, WorkflowRun, later Codeset) carries conditions built here,
so the conventions Flux users know hold everywhere:

- in progress: `Reconciling=True`, `Ready=Unknown` (reason says what is awaited);
- done and good: `Ready=True`, no `Reconciling`/`Stalled`;
- done and failed, needs a human (invalid input, failed run): `Stalled=True`, `Ready=False`;
- done, not an error (a cancelled run): `Ready=False` only.

`lastTransitionTime` only moves when a condition's status changes, so re-writing the same state
is a no-op patch and `status_changed()` can skip it.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from controller.api.conditions import READY, RECONCILING, STALLED

Health = Literal["progressing", "ready", "stalled", "done"]

MESSAGE_LIMIT = 512


def now_rfc3339() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def one_line(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """Conditions and events hold one line of bounded length."""
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def kstatus_conditions(
    health: Health,
    *,
    reason: str,
    message: str,
    generation: int | None,
    previous: Sequence[Mapping[str, Any]] | None = None,
    now: str | None = None,
) -> list[dict[str, Any]]:
    """The full list of kstatus conditions for one state of an object.

    `previous` is the object's current `status.conditions`: a condition whose status is unchanged
    keeps its `lastTransitionTime`.
    """
    msg = one_line(message)
    wanted: list[tuple[str, str]]
    if health == "progressing":
        wanted = [(READY, "Unknown"), (RECONCILING, "True")]
    elif health == "ready":
        wanted = [(READY, "True")]
    elif health == "stalled":
        wanted = [(READY, "False"), (STALLED, "True")]
    else:  # done
        wanted = [(READY, "False")]
    before = {c.get("type"): c for c in previous or () if isinstance(c, Mapping)}
    stamp = now or now_rfc3339()
    result: list[dict[str, Any]] = []
    for ctype, status in wanted:
        old = before.get(ctype)
        moved = old is None or old.get("status") != status or not old.get("lastTransitionTime")
        condition: dict[str, Any] = {
            "type": ctype,
            "status": status,
            "reason": reason,
            "message": msg,
            "lastTransitionTime": stamp if moved or old is None else old["lastTransitionTime"],
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        result.append(condition)
    return result


def condition(conditions: Sequence[Mapping[str, Any]] | None, ctype: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions or () if isinstance(c, Mapping) and c.get("type") == ctype), None)


def is_true(conditions: Sequence[Mapping[str, Any]] | None, ctype: str) -> bool:
    found = condition(conditions, ctype)
    return found is not None and found.get("status") == "True"


def status_changed(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    """Whether writing `desired` would change `current` (a merge patch of the given keys)."""
    current = current or {}
    return any(_strip_times(current.get(key)) != _strip_times(value) for key, value in desired.items())


def _strip_times(value: Any) -> Any:
    # A condition re-stamped with a new time but the same content is not a change worth a write.
    if isinstance(value, list):
        return [_strip_times(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _strip_times(v) for k, v in value.items() if k != "lastTransitionTime"}
    return value
