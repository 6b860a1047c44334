"""scripts/images.sh's contract, with a stand-in engine and mmdebstrap (milliseconds, no images):
two references on stdout, stages first, and nothing else; bases made once from Debian packages,
then reused; both Dockerfiles built with the bases as build arguments."""

from __future__ import annotations

import re
import stat
import subprocess
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]

# A docker that keeps its images as lines of a file and logs its calls; chatty on stdout, as engines are.
FAKE_DOCKER = """#!/usr/bin/env bash
set -eu
echo "$*" >> "$FAKE_STATE/calls"
touch "$FAKE_STATE/images"
case "$1" in
  info) exit 0 ;;
  image) grep -qxF "$3" "$FAKE_STATE/images" ;;
  import) echo "sha256:0123"; echo "${@: -1}" >> "$FAKE_STATE/images" ;;
  build)
    echo "STEP 1/1: FROM something"
    while [ $# -gt 0 ]; do
      if [ "$1" = -t ]; then echo "$2" >> "$FAKE_STATE/images"; fi
      shift
    done ;;
  *) exit 3 ;;
esac
"""

FAKE_MMDEBSTRAP = """#!/usr/bin/env bash
set -eu
echo "mmdebstrap $*" >> "$FAKE_STATE/calls"
for arg in "$@"; do case "$arg" in *.tar) echo rootfs > "$arg" ;; esac; done
echo "I: mmdebstrap chatter"
"""


def script_env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("docker", FAKE_DOCKER), ("mmdebstrap", FAKE_MMDEBSTRAP)):
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    return {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "FAKE_STATE": str(state),
        "SLUICE_CONTAINER_ENGINE": "docker",
        "SLUICE_TOOLS_DIR": str(tmp_path / "tools"),
        "SLUICE_NO_INSTALL": "1",
    }


def images_sh(env: dict[str, str], **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "images.sh")],
        capture_output=True,
        text=True,
        env={**env, **extra},
        timeout=60,
    )


def test_prints_two_references_stages_first_and_reuses_the_bases(tmp_path: Path) -> None:
    env = script_env(tmp_path)
    calls = Path(env["FAKE_STATE"]) / "calls"
    first = images_sh(env)
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"localhost/sluice-stages:{VERSION}\nlocalhost/sluice-operator:{VERSION}\n"
    log = calls.read_text()
    debootstraps = [line for line in log.splitlines() if line.startswith("mmdebstrap ")]
    assert len(debootstraps) == 2, log
    assert all("--variant=minbase" in line and " bookworm " in line for line in debootstraps)
    assert "git" in debootstraps[0] and "python3-venv" in debootstraps[1]
    builds = [line for line in log.splitlines() if line.startswith("build ")]
    assert [re.search(r"-f (\S+)", b).group(1) for b in builds] == [  # type: ignore[union-attr]
        "stages/Dockerfile",
        "images/operator/Dockerfile",
    ]
    for line in builds:
        assert re.search(r"--build-arg BASE=localhost/sluice-base:bookworm-[0-9a-f]{12}\b", line), line
        assert re.search(r"--build-arg BUILD_BASE=localhost/sluice-build-base:bookworm-[0-9a-f]{12}\b", line)
        assert "--network host" in line
    assert not list((tmp_path / "tools" / "images").glob("*.tar")), "root filesystems are not kept"

    calls.write_text("")
    again = images_sh(env, SLUICE_IMAGE_PREFIX="registry.example.com/ml", SLUICE_IMAGE_TAG="rc1")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        "registry.example.com/ml/sluice-stages:rc1",
        "registry.example.com/ml/sluice-operator:rc1",
    ]
    assert "mmdebstrap" not in calls.read_text(), "an existing base is reused"
    assert "reused" in again.stderr


def test_a_failed_build_fails_the_script_and_prints_no_reference(tmp_path: Path) -> None:
    env = script_env(tmp_path)
    docker = Path(env["PATH"].split(":")[0]) / "docker"
    docker.write_text(FAKE_DOCKER.replace("  build)\n", "  build) exit 1 ;;\n  never)\n"))
    done = images_sh(env)
    assert done.returncode != 0
    assert done.stdout == ""


def test_no_engine_and_no_root_install_says_what_is_missing(tmp_path: Path) -> None:
    env = script_env(tmp_path)
    (Path(env["PATH"].split(":")[0]) / "docker").unlink()
    done = images_sh(env)
    assert done.returncode != 0 and done.stdout == ""
    assert "docker" in done.stderr
