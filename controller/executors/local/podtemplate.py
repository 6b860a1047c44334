"""Pod templates (`taskRunTemplate.podTemplate`, `taskRunSpecs[].podTemplate`) on this machine.

Every field is honoured, ignored because it only places or schedules a pod (which changes where a
task runs, never what it computes), or refused before anything runs with its JSON path:

- honoured: `env` (over the steps' and stepTemplate's, as Tekton's docs say), `securityContext`
  (with --containers), `hostNetwork` (host processes already share this machine's network);
- checked: `nodeSelector` and required node `affinity` terms on `kubernetes.io/os|arch`
  must describe this machine (a Windows selector cannot be honoured); other node labels place the
  pod and are ignored;
- refused: `hostAliases`, `dnsConfig` (they change what a step resolves), pod `volumes`.

A task's template is `taskRunSpecs[].podTemplate` over the run's, merged as Tekton's
`MergePodTemplateWithDefault`: `env` by name, every other field taken whole from the more specific.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping
from typing import Any

from controller.executors.local.tekton import UnsupportedError
from controller.executors.local.variables import Scope, Value, substitute

# Fields that only decide where or how a pod is scheduled or pulled.
PLACEMENT = frozenset(
    {
        "tolerations",
        "schedulerName",
        "priorityClassName",
        "topologySpreadConstraints",
        "imagePullSecrets",
        "runtimeClassName",
        "automountServiceAccountToken",
        "enableServiceLinks",
        "dnsPolicy",
    }
)
HONOURED = frozenset({"env", "securityContext", "nodeSelector", "affinity", "hostNetwork"})
REFUSED = {
    "hostAliases": "host processes cannot get extra /etc/hosts entries",
    "dnsConfig": "host processes use this machine's DNS settings",
    "volumes": "pod template volumes are not mounted locally; use task volumes or workspaces",
}
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}
_NODE_KEYS = {"kubernetes.io/os", "kubernetes.io/arch", "beta.kubernetes.io/os", "beta.kubernetes.io/arch"}


def this_node() -> dict[str, str]:
    """The node labels this machine would have."""
    arch = _ARCH.get(platform.machine(), platform.machine())
    system = "linux" if sys.platform.startswith("linux") else sys.platform
    return {
        "kubernetes.io/os": system,
        "kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": system,
        "beta.kubernetes.io/arch": arch,
    }


def for_task(spec: dict[str, Any], task: str) -> dict[str, Any]:
    """The pod template a pipeline task's TaskRun gets."""
    default = (spec.get("taskRunTemplate") or {}).get("podTemplate") or {}
    specific = next(
        (
            t.get("podTemplate") or {}
            for t in spec.get("taskRunSpecs") or []
            if t.get("pipelineTaskName") == task
        ),
        {},
    )
    merged = {**default, **specific}
    if "env" in default or "env" in specific:
        env = {e.get("name"): e for e in default.get("env") or []}
        env.update({e.get("name"): e for e in specific.get("env") or []})
        merged["env"] = list(env.values())
    return merged


def check(template: Any, where: str, containers: bool) -> None:
    """Raise UnsupportedError on the first field of `template` this machine cannot honour (values
    already substituted: `$(params.arch)` is checked as what it became)."""
    if not isinstance(template, dict):
        raise UnsupportedError(f"{where}: expected an object")
    for key, value in template.items():
        if key in REFUSED:
            raise UnsupportedError(f"{where}.{key}: {REFUSED[key]}")
        if key not in HONOURED and key not in PLACEMENT:
            raise UnsupportedError(f"{where}.{key}: pod template field not supported by the local executor")
        if key == "hostNetwork" and value and containers:
            raise UnsupportedError(f"{where}.hostNetwork: not honoured with --containers; run without it")
    node = this_node()
    for label, wanted in (template.get("nodeSelector") or {}).items():
        if label in _NODE_KEYS and str(wanted) != node[label]:
            raise UnsupportedError(
                f"{where}.nodeSelector.{label}: {wanted!r} cannot be honoured here: this machine is"
                f" {node[label]!r}"
            )
    required = ((template.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if terms and not any(_term_matches(term, node) for term in terms):
        raise UnsupportedError(
            f"{where}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution: no term"
            f" matches this machine ({node['kubernetes.io/os']}/{node['kubernetes.io/arch']})"
        )


def _term_matches(term: dict[str, Any], node: dict[str, str]) -> bool:
    """A node selector term, judged on the os/arch labels this machine has (others: placement)."""
    for expression in term.get("matchExpressions") or []:
        key = expression.get("key")
        if key not in _NODE_KEYS:
            continue
        values = [str(v) for v in expression.get("values") or []]
        operator = expression.get("operator")
        if operator == "In" and node[key] not in values:
            return False
        if operator == "NotIn" and node[key] in values:
            return False
        if operator == "DoesNotExist":
            return False
    return True


def by_task(run: dict[str, Any], params: Mapping[str, Value], containers: bool) -> dict[str, dict[str, Any]]:
    """Each pipeline task's pod template, params substituted, refused before anything runs when
    this machine cannot honour it (`check`); "" is the run's own."""
    spec = run["spec"]
    scope = Scope({f"params.{k}": v for k, v in params.items()}, (), (), "$.spec")
    where = {"": "$.spec.taskRunTemplate.podTemplate"}
    where.update(
        {
            t.get("pipelineTaskName"): f"$.spec.taskRunSpecs[{i}].podTemplate"
            for i, t in enumerate(spec.get("taskRunSpecs") or [])
        }
    )
    templates: dict[str, dict[str, Any]] = {}
    tasks = [t["name"] for s in ("tasks", "finally") for t in spec["pipelineSpec"].get(s) or []]
    for name in ["", *tasks]:
        template = substitute(for_task(spec, name), scope)
        check(template, where.get(name, where[""]), containers)
        templates[name] = template
    return templates
