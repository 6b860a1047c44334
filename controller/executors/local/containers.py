"""A step in its image, under its pod's restrictions: the `Sandbox` of a compiled step, and the
engine command line (`podman run` / `docker run`) that runs it.

What the container gets, as the task's pod would on Kubernetes:
- the step's image, its `command` as the entrypoint (a `script` is mounted read-only under
  /tekton/scripts and is the entrypoint), `args` after the image, `workingDir` as `-w`;
- the user and groups of the step's securityContext over the pod template's (`runAsUser`,
  `runAsGroup`, `fsGroup` as a supplementary group), `readOnlyRootFilesystem` as `--read-only`
  (podman's extra tmpfs on /tmp and /run left out: /tmp is writable only through a volume, as in a
  pod), dropped and added capabilities, `allowPrivilegeEscalation: false` as no-new-privileges,
  the engine's default seccomp profile (RuntimeDefault) unless the step asks for Unconfined;
- `computeResources.limits` as `--memory` / `--cpus`;
- Tekton's mounts (`Step.mounts`: workspaces at their mountPath, /tekton/results, emptyDir
  volumes, a `medium: Memory` one from a folder in memory shared by the task's steps) and a tmpfs
  at /tekton/home;
- no network (`--network none`) unless the step needs one (`Sandbox.network`: the built-in stages
  the catalog marks, see `controller.spec.stages.module_needs_network`); in a task with sidecars,
  the network namespace of the attempt's pod instead (`Sandbox.pod`, pods.py);
- never the local secrets file (`$SLUICE_HOME/secrets.yaml`): where a mount would show it (a
  local folder used in place that holds `$SLUICE_HOME`), /dev/null is mounted over it;
- exactly the step's environment: `-e NAME` for each variable, values passed through the engine
  client's environment (never on its command line, where `ps` would show a secret), nothing of the
  caller's.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from controller.executors.local.engines import Engine
from controller.executors.local.process import Mount, Sandbox, Step
from controller.spec.stages import module_needs_network
from controller.units import parse_quantity

SCRIPTS_MOUNT = "/tekton/scripts"
TEKTON_HOME = "/tekton/home"
# The engine client's own environment; a step variable of the same name goes as -e NAME=VALUE.
_CLIENT_ENV = (
    "PATH",
    "HOME",
    "CONTAINERS_CONF",
    "CONTAINERS_STORAGE_CONF",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "DOCKER_CONTEXT",
    "CONTAINER_HOST",
    "TMPDIR",
)


def sandbox(step: dict[str, Any], template: dict[str, Any], pod: dict[str, Any], argv: list[str]) -> Sandbox:
    """The container of a resolved step: stepTemplate's securityContext and limits under the step's
    own, the pod template's securityContext under both (as Kubernetes merges them)."""
    context = {**(template.get("securityContext") or {}), **(step.get("securityContext") or {})}
    limits = {
        **((template.get("computeResources") or template.get("resources") or {}).get("limits") or {}),
        **((step.get("computeResources") or step.get("resources") or {}).get("limits") or {}),
    }
    uid = context.get("runAsUser", pod.get("runAsUser"))
    gid = context.get("runAsGroup", pod.get("runAsGroup"))
    user = "" if uid is None else f"{uid}:{gid}" if gid is not None else str(uid)
    groups = tuple(str(g) for g in pod.get("supplementalGroups") or [])
    if pod.get("fsGroup") is not None:
        groups += (str(pod["fsGroup"]),)
    capabilities = context.get("capabilities") or {}
    seccomp = (context.get("seccompProfile") or pod.get("seccompProfile") or {}).get("type", "")
    return Sandbox(
        image=str(step.get("image") or template.get("image") or ""),
        workdir=str(step.get("workingDir") or template.get("workingDir") or ""),
        user=user,
        groups=groups,
        read_only=bool(context.get("readOnlyRootFilesystem")),
        cap_drop=tuple(str(c) for c in capabilities.get("drop") or []),
        cap_add=tuple(str(c) for c in capabilities.get("add") or []),
        no_new_privileges=context.get("allowPrivilegeEscalation") is False,
        seccomp_unconfined=seccomp == "Unconfined",
        privileged=bool(context.get("privileged")),
        memory=int(parse_quantity(limits["memory"])) if "memory" in limits else None,
        cpus=float(parse_quantity(limits["cpu"]) or Decimal("0.01")) if "cpu" in limits else None,
        network=_needs_network(argv),
        image_entrypoint=not any(k in source for source in (step, template) for k in ("command", "script")),
    )


def _needs_network(argv: list[str]) -> bool:
    """A built-in stage (`python -m stages.<module>`) the catalog says needs a network."""
    for i, word in enumerate(argv[:-1]):
        if word == "-m" and argv[i + 1].startswith("stages."):
            return module_needs_network(argv[i + 1].removeprefix("stages."))
    return False


def container_name(taskrun: str, step: str, attempt: int) -> str:
    """`sluice-<taskrun>-<step>-<attempt>`: one container per step attempt, found again by name."""
    return re.sub(r"[^a-zA-Z0-9_.-]", "-", f"sluice-{taskrun}-{step}-{attempt}")


def masks(mounts: list[Mount], hidden: tuple[Path, ...]) -> list[str]:
    """`-v /dev/null:PATH:ro` for each of `hidden` (the local secrets file) that a mount would show
    the container: a local folder used in place may hold `$SLUICE_HOME` (`SLUICE_HOME=./.sluice`)."""
    argv: list[str] = []
    for secret_file in hidden:
        target = secret_file.resolve()
        for mount in mounts:
            host = mount.host.resolve()
            if target != host and host in target.parents:
                inside = f"{mount.path.rstrip('/')}/{target.relative_to(host).as_posix()}"
                argv += ["-v", f"{os.devnull}:{inside}:ro"]
    return argv


def run_argv(
    engine: Engine, step: Step, name: str, rootless: bool, hidden: tuple[Path, ...] = ()
) -> list[str]:
    """The engine command that runs `step` (whose `sandbox` is set) in its container; `hidden` files
    under its mounts are masked (`masks`)."""
    box = step.sandbox
    assert box is not None, step.name
    argv = engine.argv("run", "--rm", "--name", name, "--pull", "never")  # no stdin, no tty
    if box.user:
        argv += ["--user", box.user]
        if (
            rootless and engine.podman and not box.pod
        ):  # the caller's uid is the step's, so it owns what the step writes
            uid, _, gid = box.user.partition(":")
            argv += ["--userns", f"keep-id:uid={uid},gid={gid or uid}"]
    for group in box.groups:
        argv += ["--group-add", group]
    if box.read_only:
        argv += ["--read-only"]
        if engine.podman:
            argv += ["--read-only-tmpfs=false"]
    argv += [item for cap in box.cap_drop for item in ("--cap-drop", cap)]
    argv += [item for cap in box.cap_add for item in ("--cap-add", cap)]
    if box.no_new_privileges:
        argv += ["--security-opt", "no-new-privileges"]
    if box.seccomp_unconfined:
        argv += ["--security-opt", "seccomp=unconfined"]
    if box.privileged:
        argv += ["--privileged"]
    if box.memory is not None:
        argv += ["--memory", str(box.memory)]
    if box.cpus is not None:
        argv += ["--cpus", f"{box.cpus:g}"]
    if box.pod:  # the pod's network namespace, shared with the task's sidecars (pods.py)
        argv += ["--pod", box.pod]
    elif not box.network:
        argv += ["--network", "none"]
    argv += ["--tmpfs", f"{TEKTON_HOME}:rw,exec,mode=1777"]
    for mount in step.mounts:
        argv += ["-v", f"{mount.host}:{mount.path}{':ro' if mount.read_only else ''}"]
    argv += masks(step.mounts, hidden)
    for key, value in step.env.items():
        argv += ["-e", f"{key}={value}" if key in _CLIENT_ENV else key]
    if box.workdir:
        argv += ["-w", box.workdir]
    if box.image_entrypoint:  # the image's own entrypoint, given the step's args (as Kubernetes does)
        return [*argv, box.image, *step.argv]
    return [*argv, "--entrypoint", step.argv[0], box.image, *step.argv[1:]]


def engine_step(engine: Engine, step: Step, name: str, hidden: tuple[Path, ...] = ()) -> Step:
    """`step` as a host process that runs its container; killing it removes the container.
    `hidden`: files no mount may show the step (the local secrets file)."""
    rootless = os.geteuid() != 0
    own_mounts(step, rootless and not engine.podman)
    client = {k: v for k, v in engine.env.items() if k in _CLIENT_ENV}
    env = {**step.env, **client}  # the step's values reach the container through -e NAME
    return replace(
        step,
        argv=run_argv(engine, step, name, rootless, hidden),
        env=env,
        stop=engine.argv("rm", "--force", "--time", "0", name),
    )


def own_mounts(step: Step, open_up: bool) -> None:
    """Give the step's user the folders mounted into its container, as a pod's fsGroup
    makes its volumes writable: as root, chown each folder and what is directly in it (a secret
    workspace's keys); rootless podman maps the caller to the step's user instead (--userns
    keep-id); a docker client without root can only open the folders to everyone (`open_up`)."""
    box = step.sandbox
    if box is None:
        return
    if not box.user:  # the image's own user, unknown here: writable mounts open to it, as an emptyDir is
        for mount in step.mounts:
            if mount.path != SCRIPTS_MOUNT and mount.host.is_dir() and not mount.read_only:
                mount.host.chmod(0o777)
        return
    uid_text, _, gid_text = box.user.partition(":")
    uid, gid = int(uid_text), int(gid_text or uid_text)
    for mount in step.mounts:
        if mount.path == SCRIPTS_MOUNT or not mount.host.is_dir():
            continue
        if os.geteuid() == 0:
            _chown(mount.host, uid, gid)
            for child in mount.host.iterdir():
                _chown(child, uid, gid)
        elif open_up and not mount.read_only:
            mount.host.chmod(0o777)


def _chown(path: Path, uid: int, gid: int) -> None:
    stat = path.lstat()
    if (stat.st_uid, stat.st_gid) != (uid, gid):
        os.lchown(path, uid, gid)
