"""What every emitted container gets: a restricted security context and bounded resources."""

from __future__ import annotations

from typing import Any

from controller.resources import (
    compute_resources,
    restricted_pod_security_context,
    restricted_security_context,
)

# The user id task pods run as: Pods must run as non-root, and images that
# declare no user would otherwise start as root and be refused by the kubelet.
RUN_AS_USER = 65532

# Internal tasks are small: clone, gate and summary.
INTERNAL_REQUESTS = {"cpu": "100m", "memory": "128Mi"}
INTERNAL_LIMITS = {"cpu": "1", "memory": "512Mi"}

# Every task's one writable place besides its workspaces, results and Tekton's /tekton/home:
# an emptyDir at /tmp shared by the task's steps (the stages image sets HOME=/tmp).
TMP_VOLUME = "tmp"
TMP_PATH = "/tmp"


def security_context() -> dict[str, Any]:
    """The Pod Security Standards' `restricted` profile, per container, with a read-only root filesystem."""
    return restricted_security_context(read_only_root=True)


def tmp_volume() -> dict[str, Any]:
    """The task's writable scratch space: the root filesystem is read-only, `/tmp` is not."""
    return {"name": TMP_VOLUME, "emptyDir": {}}


def tmp_mount() -> dict[str, Any]:
    return {"name": TMP_VOLUME, "mountPath": TMP_PATH}


def pod_security_context() -> dict[str, Any]:
    """Task pods run as RUN_AS_USER, which owns (fsGroup) the workspaces' volumes."""
    return restricted_pod_security_context(RUN_AS_USER, fs_group=True)


def internal_resources() -> dict[str, dict[str, str]]:
    return compute_resources({}, {}, default_requests=INTERNAL_REQUESTS, default_limits=INTERNAL_LIMITS)
