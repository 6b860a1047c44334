"""Container compute resources: cpu and memory requests and limits, completed from defaults; and
the securityContexts of Pod Security's `restricted` profile.

Standard library, `controller.settings` and `controller.units` only: the compiler (every task's
container) and the serving manifests (the model server's container, built by the deploy stage
too) complete resources and restrict containers by the same rules.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from controller import settings
from controller.units import parse_quantity


def _value(quantity: str) -> Decimal | None:
    try:
        return parse_quantity(quantity)
    except ValueError:
        return None


def compute_resources(
    requests: Mapping[str, str],
    limits: Mapping[str, str],
    *,
    default_requests: Mapping[str, str] | None = None,
    default_limits: Mapping[str, str] | None = None,
) -> dict[str, dict[str, str]]:
    """Requests and limits for cpu and memory always set, never a request above its limit.

    A missing request defaults to the smaller of the default request and the given
    limit; a missing limit to the larger of the default limit and the given request.
    """
    default_requests = settings.DEFAULT_REQUESTS if default_requests is None else default_requests
    default_limits = settings.DEFAULT_LIMITS if default_limits is None else default_limits
    out_requests, out_limits = _completed(
        tuple(requests.items()),
        tuple(limits.items()),
        tuple(default_requests.items()),
        tuple(default_limits.items()),
    )
    return {"requests": dict(out_requests), "limits": dict(out_limits)}  # fresh dicts: callers may edit


@functools.lru_cache(maxsize=256)
def _completed(
    requests: tuple[tuple[str, str], ...],
    limits: tuple[tuple[str, str], ...],
    default_requests_items: tuple[tuple[str, str], ...],
    default_limits_items: tuple[tuple[str, str], ...],
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    default_requests, default_limits = dict(default_requests_items), dict(default_limits_items)
    out_requests = {str(k): str(v) for k, v in requests}
    out_limits = {str(k): str(v) for k, v in limits}
    for resource in ("cpu", "memory"):
        if resource not in out_requests:
            fallback = default_requests[resource]
            limit = out_limits.get(resource)
            if limit is not None and (_value(limit) or 0) < (_value(fallback) or 0):
                fallback = limit
            out_requests[resource] = fallback
        if resource not in out_limits:
            fallback = default_limits[resource]
            request = out_requests[resource]
            if (_value(request) or 0) > (_value(fallback) or 0):
                fallback = request
            out_limits[resource] = fallback
    return tuple(sorted(out_requests.items())), tuple(sorted(out_limits.items()))


def restricted_security_context(*, read_only_root: bool = False, uid: int | None = None) -> dict[str, Any]:
    """A container's securityContext under Pod Security `restricted`: no privilege escalation, every
    capability dropped, non-root, RuntimeDefault seccomp; a read-only root filesystem and the user
    `uid` when asked (keys in alphabetical order, as the manifests print them)."""
    context: dict[str, Any] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    if read_only_root:
        context["readOnlyRootFilesystem"] = True
    context["runAsNonRoot"] = True
    if uid is not None:
        context["runAsUser"] = uid
    context["seccompProfile"] = {"type": "RuntimeDefault"}
    return context


def restricted_pod_security_context(uid: int, *, fs_group: bool = False) -> dict[str, Any]:
    """A pod's securityContext under Pod Security `restricted`: non-root as user and group `uid`,
    RuntimeDefault seccomp; with `fs_group`, its volumes are made writable by group `uid` too."""
    context: dict[str, Any] = {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid}
    if fs_group:
        context["fsGroup"] = uid
    context["seccompProfile"] = {"type": "RuntimeDefault"}
    return context
