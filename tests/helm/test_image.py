"""The operator image's Dockerfile agrees with the chart: user, ports, entrypoint, no build tools."""

from __future__ import annotations

import re
import shlex

import yaml

from tests.helm.conftest import CHART, REPO

DOCKERFILE = REPO / "images" / "operator" / "Dockerfile"
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make", "clang", "python3-dev", "libc6-dev")


def stages() -> list[list[tuple[str, str]]]:
    """Instructions per build stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
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


def test_multi_stage_build_from_a_pinned_base() -> None:
    text = DOCKERFILE.read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    assert base, "the base image is one ARG"
    assert re.fullmatch(r"python:3\.1[1-9]\.\d+-slim-\w+", base.group(1)), base.group(1)
    assert len(stages()) >= 2


def test_final_stage_runs_as_the_charts_non_root_user() -> None:
    final = stages()[-1]
    users = [arg for op, arg in final if op == "USER"]
    assert users, "the final stage sets USER"
    uid, _, gid = users[-1].partition(":")
    values = yaml.safe_load((CHART / "values.yaml").read_text())["operator"]
    assert (int(uid), int(gid)) == (values["runAsUser"], values["runAsGroup"])
    assert int(uid) != 0


def test_final_stage_has_git_and_no_build_tools() -> None:
    final = stages()[-1]
    runs = " ".join(arg for op, arg in final if op == "RUN")
    installed = re.findall(r"apt-get install ([^&;|]+)", runs)
    packages = {word for chunk in installed for word in shlex.split(chunk) if not word.startswith("-")}
    assert {"git", "openssh-client", "ca-certificates"} <= packages
    assert not packages & set(BUILD_TOOLS), packages & set(BUILD_TOOLS)
    assert "rm -rf /var/lib/apt/lists/*" in runs
    # Only the built virtualenv is copied from the build stage, not the sources or pip's cache.
    copies = [arg for op, arg in final if op == "COPY"]
    assert copies == ["--from=build /opt/sluice /opt/sluice"]


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
