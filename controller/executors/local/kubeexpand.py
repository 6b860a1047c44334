"""Kubernetes' own `$(VAR)` expansion of a container's `command` and `args`, after Tekton's.

A pod's kubelet expands `$(NAME)` in command and args with the container's declared environment
(its `env`, `envFrom`; not the image's or this machine's), leaves a reference to an undeclared
name as it is, and turns `$$` into `$` (docs: "Double $$ are reduced to a single $, which allows
for escaping the $(VAR_NAME) syntax"). Scripts are not expanded. Steps run here get the same, as
the Go expansion (k8s.io/kubernetes third_party/forked/golang/expansion) does it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controller.executors.local.tekton import UnsupportedError


def expand(text: str, mapping: Mapping[str, str]) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            follower = text[i + 1]
            if follower == "$":  # the escape: `$$` is one `$`, and `$$(X)` the literal `$(X)`
                out.append("$")
                i += 2
                continue
            end = text.find(")", i + 2) if follower == "(" else -1
            if end != -1:
                name = text[i + 2 : end]
                out.append(mapping.get(name, text[i : end + 1]))
                i = end + 1
                continue
        out.append(text[i])
        i += 1
    return "".join(out)


def expand_step(
    step: dict[str, Any], declared: list[str], env: Mapping[str, str], secrets: list[str], where: str
) -> dict[str, Any]:
    """`step` with its `command` and `args` expanded against its declared variables' values. A
    variable holding a secret is refused there: on this machine a process's arguments are visible
    to every user (`ps`); the step reads it from its environment instead."""
    mapping = {name: env[name] for name in declared if name in env}
    hidden = {name for name, value in mapping.items() if value and value in secrets}
    out = dict(step)
    for key in ("command", "args"):
        if not isinstance(step.get(key), list):
            continue
        for i, item in enumerate(step[key]):
            for name in hidden:
                if f"$({name})" in str(item).replace("$$", ""):
                    raise UnsupportedError(
                        f"{where}.{key}[{i}]: $({name}) holds a secret: read it from the environment"
                    )
        out[key] = [expand(str(item), mapping) for item in step[key]]
    return out
