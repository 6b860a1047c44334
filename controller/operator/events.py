"""Kubernetes Events for transitions: one line, bounded, never a secret.

Messages are composed by the operator from names and phases it controls; Tekton's free-text
messages are not copied here (they may quote a step's output). A failure to post an Event is
logged and never fails a reconcile.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any, Literal

from controller.operator.conditions import now_rfc3339, one_line
from controller.operator.kube import ApiError, KubeClient, resource_path
from controller.operator.settings import EVENT_COMPONENT

logger = logging.getLogger("sluice.operator.events")

EVENT_MESSAGE_LIMIT = 256


def event_body(
    obj: Mapping[str, Any], *, type_: Literal["Normal", "Warning"], reason: str, message: str
) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    stamp = now_rfc3339()
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta.get('name', 'object')}.{uuid.uuid4().hex[:12]}"[:253],
            "namespace": namespace,
        },
        "involvedObject": {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": meta.get("name"),
            "namespace": namespace,
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": type_,
        "reason": reason,
        "message": one_line(message, EVENT_MESSAGE_LIMIT),
        "source": {"component": EVENT_COMPONENT},
        "reportingComponent": EVENT_COMPONENT,
        "reportingInstance": EVENT_COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


async def post_event(
    client: KubeClient,
    obj: Mapping[str, Any],
    *,
    type_: Literal["Normal", "Warning"],
    reason: str,
    message: str,
) -> None:
    body = event_body(obj, type_=type_, reason=reason, message=message)
    namespace = body["metadata"]["namespace"]
    try:
        await client.create(resource_path("", "v1", "events", namespace), body)
    except ApiError as exc:
        logger.warning("could not post event %s on %s: %s", reason, body["involvedObject"]["name"], exc)
