"""The images' Dockerfiles: the operator's agrees with the chart (user, ports, entrypoint), the
stages image with the compiler (user, writable places); both are multi-stage builds from a base
given as a build argument, pinned installs, no build tools, only the venv copied into the image."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from tests.helm.conftest import CHART, REPO

DOCKERFILE = REPO / "images" / "operator" / "Dockerfile"
STAGES_DOCKERFILE = REPO / "stages" / "Dockerfile"
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make", "clang", "python3-dev", "libc6-dev")


def stages(dockerfile: Path = DOCKERFILE) -> list[list[tuple[str, str]]]:
    """Instructions per build stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    result: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            result.append([])
        if result:
            result[-1].append((instruction.upper(), rest.strip()))
    return result


@pytest.mark.parametrize("dockerfile", [DOCKERFILE, STAGES_DOCKERFILE], ids=["operator", "stages"])
def test_multi_stage_build_from_a_base_given_as_a_build_argument(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    base = re.search(r"^ARG BASE=(\S+)$", text, re.MULTILINE)
    assert base, "the base image is one ARG"
    assert re.fullmatch(r"python:3\.1[1-9]\.\d+-slim-\w+", base.group(1)), base.group(1)
    assert re.search(r"^ARG BUILD_BASE=\$\{BASE\}$", text, re.MULTILINE), (
        "the build stage's base defaults to BASE"
    )
    froms = [arg for stage in stages(dockerfile) for op, arg in stage if op == "FROM"]
    assert froms[0].startswith("${BUILD_BASE}") and froms[-1].split()[0] == "${BASE}", froms
    # Every install is constrained by the lock (the versions CI tests and audits), wheels only.
    # (`pip install --no-deps` adds Sluice itself once its dependencies are in place.)
    runs = [arg for stage in stages(dockerfile)[:-1] for op, arg in stage if op == "RUN"]
    # Every RUN that runs pip sets it up as images/pip-env.sh says (cache, CA bundle, package index).
    set_up = re.compile(r"\. /opt/build/pip-env\.sh +&& ")
    assert runs and all(set_up.match(run) for run in runs if "pip" in run), runs
    installs = [
        command
        for run in runs
        for command in run.split("&&")
        if re.search(r"/pip (--python \S+ )?install ", command) and "--no-deps" not in command
    ]
    assert installs and all(
        "-c requirements.lock" in command and "--only-binary=:all:" in command for command in installs
    )


def final_runs(final: list[tuple[str, str]]) -> list[str]:
    """The final stage's RUN commands, a script bind-mounted from the context read in their place."""
    runs = []
    for op, arg in final:
        if op != "RUN":
            continue
        mounted = re.match(r"--mount=type=bind,source=(\S+),target=(\S+) +sh +(\S+)", arg)
        if mounted:
            assert mounted.group(2) == mounted.group(3), arg
            runs.append(re.sub(r"\\\n", " ", (REPO / mounted.group(1)).read_text()).replace("\n", " && "))
        else:
            runs.append(arg)
    return runs


@pytest.mark.parametrize("dockerfile", [DOCKERFILE, STAGES_DOCKERFILE], ids=["operator", "stages"])
def test_final_stage_has_git_the_venv_and_no_pip_or_build_tools(dockerfile: Path) -> None:
    final = stages(dockerfile)[-1]
    runs = " ".join(final_runs(final))
    installed = re.findall(r"apt-get install ([^&;|]+)", runs)
    packages = {word for chunk in installed for word in shlex.split(chunk) if not word.startswith("-")}
    # A base without git (python:3.11-slim) gets it; the Debian-made base of scripts/images.sh has it.
    assert {"git", "openssh-client", "ca-certificates"} <= packages
    assert "command -v git" in runs
    assert not packages & set(BUILD_TOOLS), packages & set(BUILD_TOOLS)
    assert "rm -rf /var/lib/apt/lists/*" in runs
    # The venv never keeps pip: made without it, or pip removed in the build stage. Only the venv
    # is copied, not sources or caches.
    build_runs = " ".join(arg for stage in stages(dockerfile)[:-1] for op, arg in stage if op == "RUN")
    assert "venv --without-pip /opt/sluice" in build_runs or re.search(
        r"/opt/sluice/bin/pip uninstall [^&]*\bpip\b", build_runs
    )
    copies = [arg for op, arg in final if op == "COPY"]
    if dockerfile == DOCKERFILE:
        assert copies == ["--from=build /opt/sluice /opt/sluice"]
    else:  # the dependencies' layer, then Sluice's own files laid over it
        assert copies == [
            "--from=deps /opt/sluice /opt/sluice",
            "--from=build /opt/app/opt/sluice /opt/sluice",
        ]


def test_final_stage_runs_as_the_charts_non_root_user() -> None:
    final = stages()[-1]
    users = [arg for op, arg in final if op == "USER"]
    assert users, "the final stage sets USER"
    uid, _, gid = users[-1].partition(":")
    values = yaml.safe_load((CHART / "values.yaml").read_text())["operator"]
    assert (int(uid), int(gid)) == (values["runAsUser"], values["runAsGroup"])
    assert int(uid) != 0


def test_stages_image_runs_as_the_task_pods_user_with_caches_in_tmp() -> None:
    from controller.compiler.containers import RUN_AS_USER

    final = stages(STAGES_DOCKERFILE)[-1]
    users = [arg for op, arg in final if op == "USER"]
    assert users and users[-1] == f"{RUN_AS_USER}:{RUN_AS_USER}"
    env = dict(
        pair.split("=", 1) for op, arg in final if op == "ENV" for pair in shlex.split(arg) if "=" in pair
    )
    # Read-only root filesystem: only /tmp, HOME and /workspace are writable in a task pod.
    for name in ("HOME", "MPLCONFIGDIR", "KERAS_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        assert env[name].startswith("/tmp"), (name, env[name])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].startswith("/opt/sluice/bin:")


def test_entrypoint_and_ports_match_the_chart() -> None:
    final = dict((op, arg) for op, arg in stages()[-1] if op in {"ENTRYPOINT", "EXPOSE", "CMD"})
    assert final["ENTRYPOINT"] == '["sluice"]'
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert sorted(int(p) for p in final["EXPOSE"].split()) == sorted(
        [values["metrics"]["port"], values["webhooks"]["port"]]
    )
    assert final["CMD"] == '["operator"]'
    # Without the chart's environment the image still listens where it says it does.
    env = " ".join(arg for op, arg in stages()[-1] if op == "ENV")
    assert f"SLUICE_OPERATOR_METRICS_PORT={values['metrics']['port']}" in env
    assert f"SLUICE_WEBHOOK_PORT={values['webhooks']['port']}" in env


def test_chart_app_version_is_the_package_version() -> None:
    import tomllib

    from controller import settings

    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"] == chart["version"]
    # The stages image the operator uses outside the chart is the same release.
    assert settings.DEFAULT_STAGES_IMAGE.endswith(f":{chart['appVersion']}")
