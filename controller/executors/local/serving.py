"""A containerised deploy step's model server: the executor starts it once the step has succeeded.

A step in a container cannot start a container beside itself, and must not be given the engine.
So under `--containers` the deploy stage writes a serve request (`{"name", "model_dir",
"timeout"}`, at `SLUICE_SERVE_REQUEST`, a folder of the task mounted at /tekton/serve) and exits;
this module reads it on the host, maps the model folder (a container path) to its host folder
through the step's mounts (a path outside the run's workspaces is refused), and runs
`python -m stages.endpoints serve-container` on the host, which starts the server as a detached
container of the step's image under the step's user, publishes it on 127.0.0.1 and registers it
in `$SLUICE_HOME/endpoints/`. The URL it reports becomes the task's `url` result, as the stage
would have written it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from controller.executors.local.engines import Engine
from controller.executors.local.process import Step
from controller.executors.local.resolve import SERVE_MOUNT, ResolvedTask
from controller.executors.local.stepenv import REPO_ROOT
from controller.executors.local.volumes import RESULTS_MOUNT, host_path

REQUEST = "request.json"


class ServeError(Exception):
    """The serve request could not be fulfilled; the task fails with this message."""


def _request_file(step: Step) -> Path | None:
    """Where the step's serve request is, if the step was given one (a deploy step); raises when it
    was and wrote none: a stages image older than this executor serves inside its own container,
    which is gone, and reports a URL nothing answers."""
    for mount in step.mounts:
        if mount.path == SERVE_MOUNT:
            if not (mount.host / REQUEST).is_file():
                raise ServeError(
                    f"step {step.name} wrote no serve request: its image predates `sluice run --containers`;"
                    " rebuild it (bash scripts/images.sh)"
                )
            return mount.host / REQUEST
    return None


async def fulfil(engine: Engine, resolved: ResolvedTask, home: Path, log_path: Path) -> None:
    """Start the model servers the task's steps asked for; write the `url` result."""
    for step in resolved.steps:
        request = _request_file(step)
        if request is None or step.sandbox is None:
            continue
        try:
            data = json.loads(request.read_text(encoding="utf-8"))
            name, model_dir, timeout = str(data["name"]), str(data["model_dir"]), float(data["timeout"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ServeError(f"step {step.name}: unreadable serve request: {exc}") from None
        finally:
            request.unlink(missing_ok=True)
        workspaces = [m for m in step.mounts if m.path not in (RESULTS_MOUNT, SERVE_MOUNT)]
        host = host_path(model_dir, workspaces)
        if host is None:
            raise ServeError(f"step {step.name}: model {model_dir} is not in one of the task's workspaces")
        argv = [sys.executable, "-m", "stages.endpoints", "serve-container", "--name", name]
        argv += ["--model-dir", str(host), "--image", step.sandbox.image, "--engine", engine.command]
        argv += ["--user", step.sandbox.user, "--timeout", f"{timeout:g}"]
        env = {k: v for k, v in engine.env.items() if k in ("PATH", "HOME", "CONTAINERS_CONF", "LANG")}
        env.update({"PYTHONPATH": str(REPO_ROOT), "SLUICE_HOME": str(home)})
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        message = err.decode(errors="replace").strip()
        with log_path.open("a", encoding="utf-8") as log:
            log.write(f"--- model server {name} (container, started by the executor)\n")
            if message:
                log.write(message + "\n")
        if proc.returncode != 0:
            raise ServeError(message.splitlines()[-1] if message else f"model server {name} did not start")
        endpoint = json.loads(out.decode())
        with log_path.open("a", encoding="utf-8") as log:
            log.write(f"deploy: serving {name!r} at {endpoint['url']} (container {endpoint['container']})\n")
        if "url" in resolved.result_names:
            (resolved.results_dir / "url").write_text(endpoint["url"], encoding="utf-8")
