"""Secrets never leave their Secret: after succeeding and failing local runs that print them, no
run file, log, cache entry, report, `sluice runs` output or CLI output holds a secret value; and
compiled PipelineRuns carry Secret references, never values. (The operator side: test_operator.py.)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.adversarial.conftest import REPO, Outcome, Sandbox, run_sluice

EXTENSIONS = REPO / "tests" / "compiler" / "extensions"
SECRET_KEY = "Zq8-extension-SECRET-93xx"  # the extension's S3 secret key, in a local Secret
ACCESS_KEY = "AKIA-extension-ACCESS-77"
TOKEN = "ghp_" + "T0kenInASecretRef" * 2  # a native step's env secretKeyRef, in secrets.yaml
SECRETS = (SECRET_KEY, ACCESS_KEY, TOKEN)


def native_workflow(name: str, spec: str) -> str:
    """A native Workflow document named `name` whose `spec:` is the YAML `spec`."""
    indented = "".join(f"  {line}" if line.strip() else line for line in spec.splitlines(True))
    return f"apiVersion: sluice.dev/v1alpha1\nkind: Workflow\nmetadata: {{name: {name}}}\nspec:\n{indented}"


FUSEML = """\
name: leaky-fuseml
inputs:
  - {name: mode, type: string, default: ok}
steps:
  - name: trainer
    image: ghcr.io/fuseml/mlflow-builder:v0.3.0
    inputs:
      - {name: mode, value: '{{ inputs.mode }}'}
    outputs:
      - name: result
    extensions:
      - {name: mlflow-store, product: mlflow, service_resource: s3}
"""
# FuseML's container contract: the step runs `run`; this one prints every credential it gets. Its
# result is not written (a host process has no /tekton/results), so the workflow has no output
# made of it: Tekton fails a run whose pipeline result names a result a succeeded task did not write.
RUN = """#!/bin/sh
echo "key=$AWS_ACCESS_KEY_ID secret=$AWS_SECRET_ACCESS_KEY"
echo "on stderr: $AWS_SECRET_ACCESS_KEY" >&2
env | grep AWS_
printf done > "$TASK_RESULT" 2>/dev/null || true
[ "$FUSEML_MODE" = ok ] || { echo "failing with $AWS_SECRET_ACCESS_KEY and $AWS_ACCESS_KEY_ID" >&2; exit 3; }
"""
NATIVE = native_workflow(
    "leaky-native",
    """\
inputs: [{name: fail, type: boolean, default: false}]
steps:
  - name: use-token
    image: busybox
    env:
      TOKEN: {secretKeyRef: {name: git-token, key: token}}
    script: |
      echo "token is $TOKEN"
      echo "$TOKEN" | base64
      printf ok > "$(results.status.path)"
      if [ "{{ inputs.fail }}" = true ]; then echo "cannot use $TOKEN" >&2; exit 4; fi
    outputs: [{name: status, type: string}]
""",
)


def leaks_in(texts: dict[str, str]) -> list[str]:
    return [f"{where}: {secret}" for where, text in texts.items() for secret in SECRETS if secret in text]


def everything_written(sandbox: Sandbox) -> dict[str, str]:
    found = {}
    for path in sandbox.root.rglob("*"):
        if path.is_file() and path.name != "secrets.yaml" and "inputs" not in path.parts:
            found[str(path)] = path.read_bytes().decode("utf-8", "replace")
    return found


@pytest.fixture
def leaky(sandbox: Sandbox) -> dict[str, str]:
    """The environment of a machine with local secrets and a FuseML `run` program on PATH."""
    bin_dir = sandbox.root / "inputs" / "bin"
    bin_dir.mkdir()
    (bin_dir / "run").write_text(RUN)
    (bin_dir / "run").chmod(0o755)
    (sandbox.home / "secrets.yaml").write_text(json.dumps({"git-token": {"token": TOKEN}}))
    import os

    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SLUICE_SECRET_MLFLOW_MINIO_SECRETKEY": SECRET_KEY,
        "SLUICE_SECRET_MLFLOW_MINIO_ACCESSKEY": ACCESS_KEY,
    }


def test_no_secret_in_any_local_output_after_good_and_failed_runs(
    sandbox: Sandbox, leaky: dict[str, str]
) -> None:
    fuseml = sandbox.write("fuseml.yaml", FUSEML)
    native = sandbox.write("native.yaml", NATIVE)
    outputs: dict[str, str] = {}
    expected = {}
    for name, args in {
        "fuseml-ok": ["run", str(fuseml), "--extensions", str(EXTENSIONS)],
        "fuseml-failed": [
            "run",
            str(fuseml),
            "--extensions",
            str(EXTENSIONS),
            "--input",
            "mode=fail",
            "--json",
        ],
        "native-ok": ["run", str(native), "--json"],
        "native-failed": ["run", str(native), "--input", "fail=true", "--no-cache"],
        "compile-fuseml": ["compile", str(fuseml), "--extensions", str(EXTENSIONS)],
        "compile-native": ["compile", str(native)],
    }.items():
        outcome = run_sluice(sandbox, *args, env=leaky, timeout=60)
        outputs[f"{name} stdout"], outputs[f"{name} stderr"] = outcome.stdout, outcome.stderr
        expected[name] = outcome.returncode
    assert expected == {
        "fuseml-ok": 0,
        "fuseml-failed": 1,
        "native-ok": 0,
        "native-failed": 1,
        "compile-fuseml": 0,
        "compile-native": 0,
    }, outputs
    # the steps really received and printed the secrets (redacted on the way out)
    assert "secret=***" in outputs["fuseml-failed stderr"] + everything_written(sandbox).__str__()
    assert (
        "secretKeyRef" in outputs["compile-fuseml stdout"]
        and "secretKeyRef" in outputs["compile-native stdout"]
    )
    runs = sorted(p.name for p in (sandbox.home / "runs").iterdir())
    assert len(runs) == 4
    for run in runs:
        shown = run_sluice(sandbox, "runs", run, env=leaky)
        report = run_sluice(sandbox, "report", run, env=leaky)
        outputs[f"runs {run}"] = shown.stdout + shown.stderr
        outputs[f"report {run}"] = report.stdout + report.stderr
    listed = run_sluice(sandbox, "runs", "--json", env=leaky)
    outputs["runs --json"] = listed.stdout
    written = everything_written(sandbox)
    assert any(path.endswith("report.html") for path in written)
    assert any("/logs/" in path for path in written)
    assert leaks_in(outputs) == [] and leaks_in(written) == []


def test_inline_credential_in_an_extension_is_refused_without_echo(sandbox: Sandbox) -> None:
    folder = sandbox.root / "inputs" / "ext"
    folder.mkdir()
    (folder / "description.yaml").write_text(
        "name: mlflow\nproduct: mlflow\nversion: '1.20.2'\n"
        "services:\n  - id: mlflow-store\n    resource: s3\n"
        "    endpoints: [{url: 'http://minio:9000'}]\n    credentials:\n      - id: default\n"
        f"        configuration: {{AWS_SECRET_ACCESS_KEY: {SECRET_KEY}}}\n"
    )
    fuseml = sandbox.write("fuseml.yaml", FUSEML)
    for command in ("compile", "run"):
        outcome = run_sluice(sandbox, command, str(fuseml), "--extensions", str(folder))
        assert outcome.returncode == 1 and "never be written inline" in outcome.stderr, outcome.stderr
        assert leaks_in({"out": outcome.stdout + outcome.stderr}) == []
    assert leaks_in(everything_written(sandbox)) == []


@pytest.mark.parametrize("command", ("compile", "run"))
def test_token_in_a_codeset_url_is_refused_without_echo(sandbox: Sandbox, command: str) -> None:
    workflow = REPO / "tests" / "local" / "fixtures" / "codeset-wf.yaml"
    for url in (f"https://x-access-token:{TOKEN}@github.com/o/r.git", f"https://{TOKEN}@github.com/o/r.git"):
        extra = ["--codeset-revision", "src=" + "a" * 40] if command == "compile" else []
        outcome = run_sluice(sandbox, command, str(workflow), "--codeset", f"src={url}", *extra)
        assert outcome.returncode == 1 and "reference a Secret" in outcome.stderr, outcome.stderr
        assert leaks_in({"out": outcome.stdout + outcome.stderr}) == []
    assert not Path(sandbox.home / "runs").exists()


# ---- issue 16: multi-line secrets, trailing newlines, encodings, results, the cache --------------

SSH_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACDkVq0q1s2ecretKeyLineTwoXyZ0123456789abcdefghijklmnopqrs\n"
    "AAAEA7secretKeyLineThreeQwErTyUiOp+/==\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)
NEWLINE_TOKEN = (
    "tok/with+odd=chars&Nl-8e7d6c5b\n"  # ends in a newline, as `kubectl create secret --from-file` makes
)
ENCODED = native_workflow(
    "leaky-encodings",
    """\
steps:
  - name: print-them
    image: busybox
    env:
      KEY: {secretKeyRef: {name: deploy-key, key: identity}}
      TOK: {secretKeyRef: {name: api, key: token}}
    script: |
      echo "$KEY"
      printf '%s' "$TOK"; echo
      echo "tail: $TOK"
      python3 -c 'import os, base64, urllib.parse as u
      for v in (os.environ["TOK"], os.environ["TOK"].strip(), os.environ["KEY"]):
          print(base64.b64encode(v.encode()).decode(), u.quote(v, safe=""), v.encode().hex())'
      echo "$KEY" | base64
      printf '%s' "$KEY" | base64 -w 64
      printf ok > "$(results.status.path)"
    outputs: [{name: status, type: string}]
  - name: nosy
    image: busybox
    script: |
      env | grep SLUICE_SECRET_ || echo "no SLUICE_SECRET_ variables"
""",
)
INTO_RESULT = native_workflow(
    "leaky-result",
    """\
steps:
  - name: keep-it
    image: busybox
    env:
      TOK: {secretKeyRef: {name: api, key: token}}
    script: |
      printf '%s' "$TOK" | base64 > "$(results.copy.path)"
    outputs: [{name: copy, type: string}]
outputs:
  - {name: copy, value: '{{ steps.keep-it.outputs.copy }}'}
""",
)


def _forbidden() -> list[str]:
    import base64
    from urllib.parse import quote

    token = NEWLINE_TOKEN.strip()
    lines = [line for line in SSH_KEY.splitlines() if "PRIVATE KEY" not in line]
    forms = [token, quote(token, safe=""), token.encode().hex(), *lines]
    forms += [base64.b64encode(v.encode()).decode()[:16] for v in (token, NEWLINE_TOKEN, SSH_KEY)]
    # every full line `base64` (76 columns) and `base64 -w 64` print the key as
    encoded = base64.b64encode(SSH_KEY.encode()).decode()
    for width in (76, 64):
        forms += [encoded[i : i + width] for i in range(0, len(encoded) - width, width)]
    return forms


def _leaks(texts: dict[str, str]) -> list[str]:
    return [f"{where}: {form[:20]}" for where, text in texts.items() for form in _forbidden() if form in text]


RunKeyed = Callable[[str, int], tuple[Outcome, dict[str, str]]]


@pytest.fixture
def run_keyed(sandbox: Sandbox) -> RunKeyed:
    """`sluice run --json` of a workflow on a machine whose local secrets are the SSH key
    (secrets.yaml) and the newline-ended token (environment): its outcome, checked to exit `code`,
    and every file the run wrote."""
    (sandbox.home / "secrets.yaml").write_text(json.dumps({"deploy-key": {"identity": SSH_KEY}}))
    env = {"SLUICE_SECRET_API_TOKEN": NEWLINE_TOKEN, "SLUICE_SECRET_UNUSED_TOKEN": "never-referenced-4242"}

    def run(text: str, code: int) -> tuple[Outcome, dict[str, str]]:
        workflow = sandbox.write("workflow.yaml", text)
        outcome = run_sluice(sandbox, "run", str(workflow), "--json", env=env, timeout=60)
        assert outcome.returncode == code, outcome.stdout + outcome.stderr
        return outcome, everything_written(sandbox)

    return run


def test_multiline_newline_ended_and_encoded_secrets_are_redacted(run_keyed: RunKeyed) -> None:
    outcome, written = run_keyed(ENCODED, 0)
    logs = "".join(text for path, text in written.items() if "/logs/" in path)
    assert "***" in logs and "tail: ***" in logs
    assert "no SLUICE_SECRET_ variables" in logs  # a step that references none sees none
    assert "never-referenced-4242" not in logs
    assert _leaks({"stdout": outcome.stdout, "stderr": outcome.stderr, **written}) == []


def test_secret_written_into_a_result_fails_the_task_and_is_stored_nowhere(run_keyed: RunKeyed) -> None:
    outcome, written = run_keyed(INTO_RESULT, 1)
    assert "holds a secret value" in outcome.stdout + outcome.stderr
    entries = [text for path, text in written.items() if "/cache/entries/" in path]
    assert not [entry for entry in entries if '"copy"' in entry]  # the leaking task was not cached
    stored = {path: text for path, text in written.items() if "/results/" not in path}
    assert _leaks({"stdout": outcome.stdout, "stderr": outcome.stderr, **stored}) == []
