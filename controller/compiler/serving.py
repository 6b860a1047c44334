"""Serving manifests, the deploy half of a Plan: the compiler's view of `controller.serving`.

The targets, their manifests and the Triton layout live in `controller.serving` (a small library
the deploy stage shares, which imports nothing of the compiler); this module re-exports it for
the compiler's callers. Pure: the same arguments give the same manifest.
"""

from __future__ import annotations

from controller.serving import (
    LABEL_MODEL,
    SERVING_LIMITS,
    SERVING_REQUESTS,
    TARGETS,
    TRITON_MODEL_DIR,
    TRITON_MODEL_NAME,
    TRITON_REPOSITORY,
    ServingError,
    ServingTarget,
    get_target,
    served_model_name,
    serving_manifest,
    storage_path,
)

__all__ = [
    "LABEL_MODEL",
    "SERVING_LIMITS",
    "SERVING_REQUESTS",
    "TARGETS",
    "TRITON_MODEL_DIR",
    "TRITON_MODEL_NAME",
    "TRITON_REPOSITORY",
    "ServingError",
    "ServingTarget",
    "get_target",
    "served_model_name",
    "serving_manifest",
    "storage_path",
]
