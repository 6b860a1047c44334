"""The container engine `sluice run --containers` uses, and the podman configuration this machine needs.

Choice: `--containers=podman|docker` (or `SLUICE_CONTAINER_ENGINE`), else docker when its daemon
answers (`docker info`), else podman when installed. A docker command without a daemon is not an
engine. Nothing is installed here; `scripts/container-engine.sh` installs podman as root on Debian.

podman's defaults fail on machines without systemd, with cgroups in hybrid mode, or where crun
cannot raise RLIMIT_NOFILE, so podman always gets a containers.conf of its own (unless the caller
exported CONTAINERS_CONF): runc when installed, cgroupfs unless systemd runs, lowered ulimits.
`podman_conf()` is its one definition: scripts/container-engine.sh runs this file to write it
(`python3 controller/executors/local/engines.py conf DIR`), so this module imports only the
standard library.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ENGINES = ("podman", "docker")
PROBE_SECONDS = 20.0


class EngineError(Exception):
    """No usable container engine: the message is one line saying why and what to do."""


@dataclass(frozen=True)
class Engine:
    command: str  # podman | docker (the program run)
    env: dict[str, str]  # the environment engine commands run with (CONTAINERS_CONF for podman)

    @property
    def podman(self) -> bool:
        return Path(self.command).name == "podman"

    def argv(self, *args: str) -> list[str]:
        return [self.command, *args]

    def run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args),
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def image_id(self, ref: str) -> str | None:
        """The local image's id, or None when `ref` is not in the engine's storage."""
        done = self.run("image", "inspect", "--format", "{{.Id}}", ref)
        return done.stdout.strip() or None if done.returncode == 0 else None


def podman_conf() -> str:
    """The containers.conf podman needs on this machine."""
    lines = [
        "# Written by Sluice (controller/executors/local/engines.py); podman reads it via CONTAINERS_CONF.",
        "[containers]",
        'default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]',
        "[engine]",
    ]
    if shutil.which("runc"):
        lines.append('runtime = "runc"')
    systemd = Path("/run/systemd/system").is_dir()
    lines.append(f'cgroup_manager = "{"systemd" if systemd else "cgroupfs"}"')
    if not systemd:
        lines.append('events_logger = "file"')
    return "\n".join(lines) + "\n"


def write_podman_conf(directory: Path) -> Path:
    """Write `podman_conf()` to DIRECTORY/containers.conf (atomically) and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "containers.conf"
    text = podman_conf()
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        temporary = directory / f".containers.conf.{os.getpid()}"
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, target)
    return target


def _answers(engine: Engine) -> bool:
    try:
        return (
            engine.run("info", "--format", "{{.Host.Arch}}" if engine.podman else "{{.ID}}").returncode == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_engine(choice: str, conf_dir: Path, environ: dict[str, str] | None = None) -> Engine:
    """The engine for `choice` (auto | podman | docker), checked to answer; raises EngineError."""
    environ = dict(os.environ if environ is None else environ)
    choice = choice or "auto"
    if choice == "auto":
        choice = environ.get("SLUICE_CONTAINER_ENGINE", "") or "auto"
    if choice not in ("auto", *ENGINES):
        raise EngineError(f"container engine must be podman or docker, not {choice!r}")
    candidates = ENGINES[::-1] if choice == "auto" else (choice,)  # auto: a docker that answers first
    for name in candidates:
        program = shutil.which(name, path=environ.get("PATH"))
        if program is None:
            continue
        env = dict(environ)
        if name == "podman" and not env.get("CONTAINERS_CONF"):
            env["CONTAINERS_CONF"] = str(write_podman_conf(conf_dir))
        engine = Engine(program, env)
        if _answers(engine):
            return engine
    if choice == "auto":
        raise EngineError(
            "no container engine answers (podman, or docker with a running daemon): install podman "
            "(as root on Debian: bash scripts/container-engine.sh does it) or run without --containers"
        )
    if shutil.which(choice, path=environ.get("PATH")) is None:
        raise EngineError(f"{choice} is not installed")
    raise EngineError(f"{choice} does not answer (`{choice} info` fails)")


def main(argv: list[str]) -> int:
    """`engines.py conf DIR`: write the podman configuration, print its path (for the shell script)."""
    if len(argv) != 2 or argv[0] != "conf":
        print("usage: engines.py conf DIR", file=sys.stderr)
        return 2
    print(write_podman_conf(Path(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
