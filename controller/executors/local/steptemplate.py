"""A task's `stepTemplate` merged into each step, as Tekton merges them.

Tekton applies the template with a Kubernetes strategic merge patch of the step onto the template
(pkg/apis/pipeline/v1/merge.go): scalar fields (workingDir, image, ...) and plain lists (command,
args) of the step replace the template's, objects (securityContext, computeResources) merge field by
field; `env` merges by `name` and `volumeMounts` by `mountPath`, the step's entry winning over the
template's of the same key, new ones appended in order.
"""

from __future__ import annotations

from typing import Any

# Lists Kubernetes merges by key (strategic merge patch `patchMergeKey` of a Container).
MERGE_KEYS = {"env": "name", "volumeMounts": "mountPath"}


def _merge_keyed(
    template: list[dict[str, Any]], step: list[dict[str, Any]], key: str
) -> list[dict[str, Any]]:
    merged = {item.get(key): dict(item) for item in template}
    for item in step:
        name = item.get(key)
        base = merged.get(name, {})
        if key == "name" and ("value" in item or "valueFrom" in item):
            base = {}  # an env var is a value OR a reference: the step's form replaces the template's
        merged[name] = {**base, **item}
    return list(merged.values())


def merge_step(template: dict[str, Any] | None, step: dict[str, Any]) -> dict[str, Any]:
    """The step with `template` under it (neither is changed)."""
    if not template:
        return dict(step)
    merged = _merge_objects(template, step)
    for field, key in MERGE_KEYS.items():
        if field in template or field in step:
            merged[field] = _merge_keyed(template.get(field) or [], step.get(field) or [], key)
    return merged


def _merge_objects(under: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(under)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(under.get(key), dict):
            merged[key] = _merge_objects(under[key], value)
        else:
            merged[key] = value
    return merged
