"""Which engine `sluice run --containers` takes: one that answers, docker first; none is one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from controller.executors.local.engines import EngineError, find_engine

REPO = Path(__file__).resolve().parents[2]


def fake(bin_dir: Path, name: str, answers: bool) -> None:
    """A stand-in engine whose `info` succeeds or fails (a docker CLI without its daemon)."""
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\nexit {0 if answers else 1}\n", encoding="utf-8")
    path.chmod(0o755)


@pytest.mark.parametrize(
    ("docker", "podman", "chosen"),
    [(False, True, "podman"), (True, True, "docker"), (True, False, "docker")],
)
def test_the_engine_is_one_that_answers_docker_first(
    tmp_path: Path, docker: bool, podman: bool, chosen: str
) -> None:
    fake(tmp_path, "docker", docker)
    fake(tmp_path, "podman", podman)
    engine = find_engine("auto", tmp_path / "conf", {"PATH": str(tmp_path)})
    assert Path(engine.command).name == chosen
    if chosen == "podman":  # with the configuration this machine needs, written once
        conf = Path(engine.env["CONTAINERS_CONF"])
        assert 'cgroup_manager = "' in conf.read_text() and "nofile=1024:1024" in conf.read_text()


def test_a_docker_without_daemon_is_no_engine(tmp_path: Path) -> None:
    fake(tmp_path, "docker", False)
    with pytest.raises(EngineError, match="no container engine answers"):
        find_engine("auto", tmp_path / "conf", {"PATH": str(tmp_path)})
    with pytest.raises(EngineError, match="docker does not answer"):
        find_engine("docker", tmp_path / "conf", {"PATH": str(tmp_path)})


def test_no_engine_fails_the_run_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path), "SLUICE_HOME": str(tmp_path / "home")}
    env.pop("SLUICE_CONTAINER_ENGINE", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "controller.cli.main",
            "run",
            str(REPO / "workflows" / "sum-of-two.yaml"),
            "--containers",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sluice run: --containers: no container engine"), (
        done.stderr
    )


def test_the_shell_setup_writes_the_same_podman_configuration(tmp_path: Path) -> None:
    """scripts/container-engine.sh runs engines.py: one definition of containers.conf."""
    fake(tmp_path, "podman", True)
    script = 'source scripts/container-engine.sh && sluice_podman_conf && cat "$CONTAINERS_CONF"'
    env = {**os.environ, "SLUICE_TOOLS_DIR": str(tmp_path / "tools")}
    env.pop("CONTAINERS_CONF", None)
    done = subprocess.run(
        ["bash", "-c", script], cwd=REPO, capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    from controller.executors.local.engines import podman_conf

    assert done.stdout == podman_conf()
