"""Every semantic error class and every forbidden pod/privilege field, through `sluice compile` and
`sluice run` (in-process, so an escaping exception fails the test instead of being caught by the
CLI's last line of defence). The documents are the spec suite's table of invalid workflows, plus
pod and privilege fields that table does not list, in both dialects.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.cli.main import app
from tests.adversarial.conftest import Sandbox
from tests.spec.helpers import Case, native
from tests.spec.invalid_cases import ALL_CASES

runner = CliRunner()


def invoke(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    monkeypatch.chdir(sandbox.work)
    monkeypatch.setenv("SLUICE_HOME", str(sandbox.home))
    monkeypatch.delenv("SLUICE_ALLOW_LOCAL_GIT", raising=False)
    result = runner.invoke(app, list(args), catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"sluice {' '.join(args)} raised {result.exception!r}") from result.exception
    assert "Traceback" not in result.output + result.stderr
    return result.exit_code, result.stderr


@pytest.mark.parametrize("command", ("compile", "run"))
@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_every_invalid_workflow_is_one_clean_error(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, command: str, case: Case
) -> None:
    path = sandbox.write("wf.yaml", case.document)
    code, stderr = invoke(sandbox, monkeypatch, command, str(path))
    assert code == 1, stderr
    assert f"{path}:{case.line}:" in stderr and case.fragment in stderr, stderr
    assert not (sandbox.home / "runs").exists(), "nothing may run from an invalid workflow"
    sandbox.assert_untouched()


def native_step(field: str, value: str) -> str:
    """A native workflow of one container step that also sets `field: value`."""
    return native(f"""
        spec:
          steps:
            - name: a
              image: busybox
              script: id
              {field}: {value}
        """)


FUSEML = """\
name: demo
steps:
  - name: a
    image: busybox
    {field}: {value}
"""
# Fields of a Pod or a container that would loosen isolation; none may come from a workflow.
POD_FIELDS = [
    ("hostPID", "true"),
    ("hostIPC", "true"),
    ("capabilities", "{add: [SYS_ADMIN]}"),
    ("runAsUser", "0"),
    ("allowPrivilegeEscalation", "true"),
    ("procMount", "Unmasked"),
    ("nodeName", "master-0"),
    ("tolerations", "[{operator: Exists}]"),
    ("initContainers", "[{name: x, image: busybox}]"),
    ("sidecars", "[{name: x, image: busybox}]"),
    ("stepTemplate", "{securityContext: {privileged: true}}"),
    ("automountServiceAccountToken", "true"),
    ("volumeMounts", "[{name: host, mountPath: /host}]"),
    ("securityContext", "{seccompProfile: {type: Unconfined}}"),
]


@pytest.mark.parametrize("dialect", ("native", "fuseml"))
@pytest.mark.parametrize(("field", "value"), POD_FIELDS, ids=[f for f, _ in POD_FIELDS])
def test_pod_and_privilege_fields_are_refused(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, dialect: str, field: str, value: str
) -> None:
    document = native_step(field, value) if dialect == "native" else FUSEML.format(field=field, value=value)
    path = sandbox.write("wf.yaml", document)
    code, stderr = invoke(sandbox, monkeypatch, "compile", str(path))
    assert code == 1
    where = "$.spec.steps[0]" if dialect == "native" else "$.steps[0]"
    assert f"{where}.{field}:" in stderr, stderr
    assert "is not allowed" in stderr or "unknown field" in stderr, stderr


@pytest.mark.parametrize(
    ("where", "snippet"),
    [
        ("resources", "resources: {limits: {cpu: 1}, privileged: true}"),
        ("env", "env: {X: {valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}}}"),
        (
            "with",
            "uses: sluice/prepare\n      with: {generator: sum-of-two, securityContext: {privileged: true}}",
        ),
    ],
)
def test_privilege_hidden_inside_other_fields(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, where: str, snippet: str
) -> None:
    body = textwrap.dedent(
        """\
        apiVersion: sluice.dev/v1alpha1
        kind: Workflow
        metadata: {name: demo}
        spec:
          steps:
            - name: a
        """
    )
    if where != "with":
        body += "      image: busybox\n"
    path = sandbox.write("wf.yaml", body + "      " + snippet + "\n")
    code, stderr = invoke(sandbox, monkeypatch, "compile", str(path))
    assert code == 1 and "$.spec.steps[0]" in stderr, stderr


def test_valid_workflow_still_compiles_restricted(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """The control case: the same harness accepts a valid workflow, and its pod is restricted."""
    import yaml

    path = sandbox.write("wf.yaml", native_step("retries", "1"))
    monkeypatch.chdir(sandbox.work)
    result = runner.invoke(app, ["compile", str(path)])
    assert result.exit_code == 0, result.stderr
    run = yaml.safe_load(result.stdout)
    tasks = run["spec"]["pipelineSpec"]["tasks"] + run["spec"]["pipelineSpec"].get("finally", [])
    for task in tasks:
        for step in task["taskSpec"]["steps"]:
            assert step["securityContext"]["allowPrivilegeEscalation"] is False
    assert Path(sandbox.work).exists() and not any(sandbox.work.iterdir())
