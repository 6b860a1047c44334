"""The serving targets, by name: adding a platform is one `ServingTarget` and one entry here.

`sluice deploy-manifest --target`, the deploy stage's `--target` choices and its description in
the stage catalog all come from (or are tested against) `TARGETS`.
"""

from __future__ import annotations

from typing import Any, Unpack

from controller.serving.kserve import KSERVE
from controller.serving.seldon import SELDON, SELDON_V1
from controller.serving.target import ManifestArguments, ServingError, ServingTarget

TARGETS: dict[str, ServingTarget] = {target.name: target for target in (KSERVE, SELDON, SELDON_V1)}


def get_target(name: str) -> ServingTarget:
    """The target called `name`; ServingError naming the known ones otherwise."""
    target = TARGETS.get(name)
    if target is None:
        raise ServingError(f"unknown target {name!r}; use one of: {', '.join(TARGETS)}")
    return target


def target_for_kind(kind: str) -> ServingTarget:
    """The target whose resource is of this `kind` (InferenceService, Model, SeldonDeployment)."""
    for target in TARGETS.values():
        if target.kind == kind:
            return target
    raise ServingError(
        f"no serving target creates a {kind!r}; known kinds: " + ", ".join(t.kind for t in TARGETS.values())
    )


def serving_manifest(target: str, **arguments: Unpack[ManifestArguments]) -> dict[str, Any]:
    """What `sluice deploy-manifest` prints and the deploy stage applies; ServingError on bad
    arguments (an unknown target included)."""
    return get_target(target).manifest(**arguments)


def storage_path(target: str, runtime: str | None = None) -> str:
    """Where under a `sluice.model/v1` directory the target's runtime (its own unless `runtime`
    names another) reads the model; "" for the directory itself."""
    return get_target(target).model_path(runtime)


def served_model_name(target: str, name: str) -> str:
    """The model name in the v2 URL of the target's resource called `name`."""
    return get_target(target).served_model_name(name)
