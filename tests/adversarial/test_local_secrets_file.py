"""A hostile `$SLUICE_HOME/secrets.yaml` ends as one clean SecretError, never a crash."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from controller.executors.local.secrets import LocalSecrets, SecretError

HOSTILE = {
    "deep": "a: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "alias-bomb": 'a: &a ["x","x"]\nb: &b [*a,*a]\nc: [*b,*b]\n',
    "python-tag": "s: !!python/object/apply:os.system ['true']\n",
    "two-documents": "s: {k: v}\n---\nt: {k: v}\n",
    "not-utf8": "s: {k: \xff}\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_secrets_file_is_a_clean_error(name: str, tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    data = HOSTILE[name]
    path.write_bytes(data.encode("latin-1") if name == "not-utf8" else data.encode())
    with pytest.raises(SecretError) as caught:
        LocalSecrets(tmp_path).get("s", "k")
    assert str(path) in str(caught.value)


def test_empty_secrets_file_holds_no_secrets(tmp_path: Path) -> None:
    (tmp_path / "secrets.yaml").write_text("")
    assert LocalSecrets(tmp_path).get("s", "k") is None


def test_secrets_file_values_are_read(tmp_path: Path) -> None:
    (tmp_path / "secrets.yaml").write_text("minio: {accesskey: AKIA-test}\n")
    assert LocalSecrets(tmp_path).get("minio", "accesskey") == "AKIA-test"


def test_a_container_never_sees_the_secrets_file_through_a_mount(tmp_path: Path) -> None:
    """Issue 16: a local folder used in place (the project, holding ./.sluice) or any mount above
    $SLUICE_HOME showed the step `secrets.yaml`; /dev/null is mounted over it now."""
    from controller.executors.local.containers import engine_step
    from controller.executors.local.engines import Engine
    from controller.executors.local.process import Mount, Sandbox, Step

    project = tmp_path / "project"
    home = project / ".sluice"
    home.mkdir(parents=True)
    (home / "secrets.yaml").write_text("s: {k: v}\n")
    other = tmp_path / "other"
    other.mkdir()
    step = Step(
        "s",
        ["sh", "-c", "cat /workspace/source/.sluice/secrets.yaml"],
        {},
        tmp_path,
        mounts=[Mount("/workspace/source", project, read_only=True), Mount("/workspace/out", other)],
        sandbox=Sandbox(image="busybox"),
    )
    for command in ("podman", "docker"):
        argv = engine_step(Engine(command, {}), step, "c", (home / "secrets.yaml",)).argv
        pairs = {argv[i + 1] for i, word in enumerate(argv[:-1]) if word == "-v"}
        assert f"{os.devnull}:/workspace/source/.sluice/secrets.yaml:ro" in pairs, argv
        assert not any(p.startswith(f"{os.devnull}:/workspace/out") for p in pairs)
        # the mask comes after the mount it covers (the engine applies them in order)
        assert argv.index(f"{project}:/workspace/source:ro") < argv.index(
            f"{os.devnull}:/workspace/source/.sluice/secrets.yaml:ro"
        )


def test_the_executor_hides_the_secrets_file_from_every_container_step() -> None:
    """The local run passes its secrets file to engine_step for every step it runs in a container
    (a task's TaskRuns are run by taskruns.TaskRuns, which LocalRun is made of)."""
    import inspect

    from controller.executors.local import engine, taskruns

    assert issubclass(engine.LocalRun, taskruns.TaskRuns)
    source = inspect.getsource(engine.LocalRun) + inspect.getsource(taskruns.TaskRuns)
    calls = re.findall(r"engine_step\(([^()]*(?:\([^()]*\)[^()]*)*)\)", source)
    assert calls, "the local run no longer builds container steps with engine_step"
    assert "hidden = (self.secrets.path,)" in source
    assert all(call.rstrip(", ").endswith("hidden") for call in calls), calls
