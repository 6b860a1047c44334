"""kopf handlers for Codesets, registered on the operator's registry by `register(registry, rt)`.

`controller.operator.main.build_registry` builds a fresh registry per operator (no global state),
so registration is a call, not an import side effect. Calling it twice for one registry returns the
same tracker (the operator's main module and a test harness may both call it).
"""

from __future__ import annotations

import weakref
from typing import Any

import kopf

from controller.api.meta import GROUP, VERSION
from controller.operator.codesets.tracker import CodesetConfig, CodesetTracker
from controller.operator.runtime import Runtime

_TRACKERS: weakref.WeakKeyDictionary[kopf.OperatorRegistry, CodesetTracker] = weakref.WeakKeyDictionary()
# Runtime is an unhashable dataclass: keyed by id, with a weak reference to notice reuse of an id.
_BY_RUNTIME: dict[int, tuple[weakref.ref[Runtime], CodesetTracker]] = {}


def tracker_of(rt: Runtime) -> CodesetTracker | None:
    """The Codeset tracker of an operator runtime (tests, benchmarks)."""
    found = _BY_RUNTIME.get(id(rt))
    return found[1] if found is not None and found[0]() is rt else None


def register(
    registry: kopf.OperatorRegistry, rt: Runtime, config: CodesetConfig | None = None
) -> CodesetTracker:
    existing = _TRACKERS.get(registry)
    if existing is not None:
        return existing
    tracker = CodesetTracker(rt, config or CodesetConfig.from_env())
    _TRACKERS[registry] = tracker
    for key in [k for k, (ref, _) in _BY_RUNTIME.items() if ref() is None]:
        del _BY_RUNTIME[key]
    _BY_RUNTIME[id(rt)] = (weakref.ref(rt), tracker)

    @kopf.on.startup(registry=registry)
    async def codesets_startup(**_: Any) -> None:
        await tracker.start()

    @kopf.on.cleanup(registry=registry)
    async def codesets_cleanup(**_: Any) -> None:
        await tracker.stop()

    @kopf.on.event(GROUP, VERSION, "codesets", registry=registry)
    async def codeset_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        await tracker.observe(type, dict(body))

    return tracker
