"""The compiler reads no environment: the stages image and the local-Git switch are arguments,
read once at the edges (`sluice compile`, `sluice run`, the operator's configuration).

tests/test_layering.py checks the compiler's source for environment, file and clock reads; these
tests check the behaviour: the same arguments give the same PipelineRun whatever the environment,
and the command line still honours SLUICE_STAGES_IMAGE and SLUICE_ALLOW_LOCAL_GIT.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from controller import settings
from controller.compiler import CodesetSource, CompileError, compile_run, to_yaml
from controller.spec import load_workflow
from tests.compiler.conftest import EXAMPLES, PINNED, PROJECT
from testsupport.processes import run_python

SWITCHES = ("SLUICE_STAGES_IMAGE", "SLUICE_ALLOW_LOCAL_GIT")
LOCAL_URL = "file:///srv/git/data.git"


def _compile(**arguments) -> str:
    workflow = load_workflow(str(EXAMPLES["codeset-script"]))
    return to_yaml(compile_run(workflow, run_name="r", **arguments))


def _images(text: str) -> set[str]:
    run = yaml.safe_load(text)
    return {
        step["image"]
        for task in run["spec"]["pipelineSpec"]["tasks"] + run["spec"]["pipelineSpec"]["finally"]
        for step in task["taskSpec"]["steps"]
    }


def test_the_same_arguments_give_the_same_pipelinerun_whatever_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = {"source": CodesetSource("https://github.com/example/data.git", PINNED)}
    for name in SWITCHES:
        monkeypatch.delenv(name, raising=False)
    given = _compile(codesets=source, stages_image="registry.example.com/stages:1.2.3")
    default = _compile(codesets=source)
    assert "registry.example.com/stages:1.2.3" in _images(given)
    assert settings.DEFAULT_STAGES_IMAGE in _images(default)

    monkeypatch.setenv("SLUICE_STAGES_IMAGE", "attacker.example/evil:latest")
    monkeypatch.setenv("SLUICE_ALLOW_LOCAL_GIT", "1")
    assert _compile(codesets=source, stages_image="registry.example.com/stages:1.2.3") == given
    assert _compile(codesets=source) == default  # the default image, not the environment's


def test_local_git_urls_follow_the_argument_not_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    local = {"source": CodesetSource(LOCAL_URL, PINNED)}
    monkeypatch.setenv("SLUICE_ALLOW_LOCAL_GIT", "1")
    with pytest.raises(CompileError) as refused:
        _compile(codesets=local)
    assert [d.code for d in refused.value.diagnostics] == ["codeset.unsafe"]
    assert "SLUICE_ALLOW_LOCAL_GIT" in refused.value.diagnostics[0].message
    monkeypatch.delenv("SLUICE_ALLOW_LOCAL_GIT")
    assert LOCAL_URL in _compile(codesets=local, allow_local_git=True)


def test_importing_the_compiler_reads_no_environment() -> None:
    """Nothing is read at import either: a fresh interpreter with both switches set."""
    program = (
        "from controller.compiler import compile_run, to_yaml\n"
        "from controller.spec import load_workflow\n"
        "print(to_yaml(compile_run(load_workflow('workflows/sum-of-two.yaml'), run_name='r')))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in SWITCHES}
    clean = run_python(program, env=env)
    env.update({"SLUICE_STAGES_IMAGE": "attacker.example/evil:latest", "SLUICE_ALLOW_LOCAL_GIT": "1"})
    dirty = run_python(program, env=env)
    assert clean.returncode == 0, clean.stderr
    assert dirty.stdout == clean.stdout
    assert settings.DEFAULT_STAGES_IMAGE in _images(clean.stdout)


def test_sluice_compile_reads_both_switches_at_the_edge() -> None:
    base = [sys.executable, "-m", "controller.cli.main", "compile", str(EXAMPLES["codeset-script"])]
    local = ["--codeset", f"source={LOCAL_URL}", "--codeset-revision", f"source={PINNED}"]
    env = {k: v for k, v in os.environ.items() if k not in SWITCHES}

    def sluice(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args], cwd=PROJECT, env={**env, **extra}, capture_output=True, text=True, timeout=120
        )

    refused = sluice(*local)
    assert refused.returncode == 1 and "SLUICE_ALLOW_LOCAL_GIT" in refused.stderr
    allowed = sluice(*local, SLUICE_ALLOW_LOCAL_GIT="1", SLUICE_STAGES_IMAGE="registry.example.com/s:2")
    assert allowed.returncode == 0, allowed.stderr
    assert LOCAL_URL in allowed.stdout
    assert "registry.example.com/s:2" in _images(allowed.stdout)
