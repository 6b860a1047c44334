"""What a step runs and where: its command line (a script written to a file, a host command found
on this machine) and its working folder."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from controller.executors.local.containers import SCRIPTS_MOUNT
from controller.executors.local.tekton import UnsupportedError


def step_workdir(working_dir: str | None, mounts: dict[str, Path | None], task_dir: Path) -> Path:
    """A step's folder: workspace mount paths map to their local folders; default a per-task folder."""
    default = task_dir / "work"
    default.mkdir(parents=True, exist_ok=True)
    if not working_dir:
        return default
    for mount, local in sorted(mounts.items(), key=lambda m: -len(m[0])):
        if local is not None and (working_dir == mount or working_dir.startswith(mount.rstrip("/") + "/")):
            path = local / working_dir[len(mount) :].lstrip("/")
            path.mkdir(parents=True, exist_ok=True)
            return path
    if working_dir == "/workspace" or working_dir.startswith("/workspace/"):
        path = default / working_dir[len("/workspace") :].lstrip("/")
    else:
        path = Path(working_dir) if os.path.isabs(working_dir) else default / working_dir
        if os.path.isabs(working_dir) and not path.is_dir():
            raise UnsupportedError(f"workingDir {working_dir!r} does not exist on this machine")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _default_shell(container: bool) -> str:
    """What a script without a shebang runs with. Tekton: the image's /bin/sh, for most examples
    busybox's, which takes `[[` and `==`; a host's /bin/sh may be dash, which does not, so a host
    process gets bash when it is installed (its `[[`, `==`, `echo` without escapes match busybox)."""
    return "/bin/sh" if container else shutil.which("bash") or "/bin/sh"


# A shebang naming busybox's shell (`ash`) or `sh`: images mostly give busybox's there.
_SH_SHEBANG = re.compile(r"#!\s*(?:/usr/bin/env\s+|/bin/|/usr/bin/)(ash|sh)(?=\s|$)")


def _host_shebang(script: str) -> str:
    """A script's shebang for this machine: `ash` where it is not installed, and `sh` where this
    machine's /bin/sh is dash (which refuses the `[[` and `==` busybox takes), become the shell
    scripts without a shebang get (bash); its arguments are kept."""
    first, _, rest = script.partition("\n")
    match = _SH_SHEBANG.match(first)
    if match is None:
        return script
    shell = match.group(1)
    dash = Path(os.path.realpath("/bin/sh")).name == "dash"
    if (shell == "ash" and shutil.which("ash") is None) or (shell == "sh" and dash):
        return f"#!{_default_shell(False)}{first[match.end() :]}\n{rest}"
    return script


def step_argv(step: dict[str, Any], scripts_dir: Path, script_name: str, container: bool) -> list[str]:
    """A step's argv: its script (written to `scripts_dir`), or its command and args."""
    args = [str(a) for a in step.get("args") or []]
    if "script" in step:
        script = step["script"]
        if not script.startswith("#!"):
            script = f"#!{_default_shell(container)}\nset -e\n" + script
        elif not container:
            script = _host_shebang(script)
        scripts_dir.mkdir(parents=True, exist_ok=True)
        path = scripts_dir / script_name
        path.write_text(script, encoding="utf-8")
        path.chmod(0o755 if container else 0o700)  # a container's user is not this one
        return [f"{SCRIPTS_MOUNT}/{script_name}" if container else str(path), *args]
    command = [str(c) for c in step.get("command") or []]
    if container:  # the image's programs (none: its entrypoint, checked by check_pipelinerun)
        return [*command, *args]
    if command[0] in ("python", "python3"):  # the host interpreter, whatever the image had
        command[0] = sys.executable
    if shutil.which(command[0]) is None and not os.path.isabs(command[0]):
        raise UnsupportedError(f"command {command[0]!r} is not installed on this machine")
    return [*command, *args]
