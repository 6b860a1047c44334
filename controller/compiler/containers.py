"""What every emitted container gets: a restricted security context and bounded resources."""

from __future__ import annotations

from typing import Any

from controller.resources import compute_resources

# The user id task pods run as: Pods must run as non-root, and images that
# declare no user would otherwise start as root and be refused by the kubelet.
RUN_AS_USER = 65532

# Internal tasks are small: clone, gate and summary.
INTERNAL_REQUESTS = {"cpu": "100m", "memory": "128Mi"}
INTERNAL_LIMITS = {"cpu": "1", "memory": "512Mi"}


def security_context() -> dict[str, Any]:
    """The Pod Security Standards' `restricted` profile, per container."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "fsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def internal_resources() -> dict[str, dict[str, str]]:
    return compute_resources({}, {}, default_requests=INTERNAL_REQUESTS, default_limits=INTERNAL_LIMITS)
