"""Group, version, kinds, and the one builder of owner references and object stubs."""

from __future__ import annotations

from typing import Any

from controller import settings

GROUP = settings.API_GROUP
VERSION = settings.API_VERSION
API_VERSION = f"{GROUP}/{VERSION}"

WORKFLOW = "Workflow"
CODESET = "Codeset"
WORKFLOW_RUN = "WorkflowRun"


def owner_reference(
    kind: str, name: str, uid: str, *, controller: bool, block_owner_deletion: bool
) -> dict[str, Any]:
    """An `ownerReferences` entry naming a Sluice object (all owners Sluice sets are its own kinds).

    `controller` marks the one managing owner; `block_owner_deletion` makes a foreground deletion of
    the owner wait for this dependent (a PipelineRun must be gone before its run is).
    """
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": controller,
        "blockOwnerDeletion": block_owner_deletion,
    }


def object_stub(kind: str, namespace: str, name: str, uid: str | None = None) -> dict[str, Any]:
    """The identity of a Sluice object without its body (what an Event's involvedObject needs)."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if uid is not None:
        metadata["uid"] = uid
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata}
