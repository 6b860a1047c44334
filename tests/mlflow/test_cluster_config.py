"""Issue 19 on a cluster: the chart's `mlflow` values -> the operator's SLUICE_MLFLOW_* variables ->
`compile_run(mlflow=...)` -> every built-in stage's step env (credentials through secretKeyRef)."""

from __future__ import annotations

import json
from typing import Any

from controller.serving.tracking import CREDENTIAL_VARIABLES, MlflowTracking
from tests.compiler.conftest import compile_example, registry, tekton_lint, upstream  # noqa: F401  (fixtures)
from tests.compiler.tektonlint import errors_only
from tests.helm.conftest import Render, helm, helm_env, render, run_helm  # noqa: F401  (fixtures)
from tests.helm.test_render import env_of as operator_env

TRACKING = MlflowTracking(
    "http://mlflow.mlflow:5000", secret="mlflow-credentials", s3_endpoint="http://minio:9000"
)


def _tasks(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    spec = run["spec"]["pipelineSpec"]
    return {t["name"]: t for t in [*spec["tasks"], *spec.get("finally", [])]}


def _env(task: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for s in task["taskSpec"]["steps"] for e in s.get("env", [])}


def test_every_built_in_stage_gets_the_tracking_uri_and_secret_references(registry) -> None:  # noqa: F811
    plain = compile_example("sum-of-two", registry)
    run = compile_example("sum-of-two", registry, mlflow=TRACKING)
    for name in ("prepare", "train", "evaluate", "deploy"):
        env = _env(_tasks(run)[name])
        assert env["MLFLOW_TRACKING_URI"]["value"] == "http://mlflow.mlflow:5000"
        assert env["MLFLOW_S3_ENDPOINT_URL"]["value"] == "http://minio:9000"
        for variable in CREDENTIAL_VARIABLES:
            ref = env[variable]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": "mlflow-credentials", "key": variable, "optional": True}
            assert "value" not in env[variable]
    assert "MLFLOW_TRACKING_URI" not in json.dumps(plain), "untracked by default: the run compiles as before"


def test_the_operator_reads_the_setting_the_chart_writes(render: Render) -> None:  # noqa: F811
    assert MlflowTracking.from_env({k: v for k, v in operator_env(render()).items() if v}) is None
    values = [
        "mlflow.trackingUri=http://mlflow.mlflow:5000",
        "mlflow.s3EndpointUrl=http://minio:9000",
        "mlflow.secretName=mlflow-credentials",
    ]
    env = {k: v for k, v in operator_env(render(set_=values)).items() if v is not None}
    assert MlflowTracking.from_env(env) == TRACKING
    assert not any("PASSWORD" in k or "TOKEN" in k for k in env), "no credential in the operator's env"


def test_fuseml_mlflow_extension_maps_to_the_same_setting() -> None:
    """A FuseML workflow whose steps require the `mlflow` extension, compiled against the
    platform's setting alone, logs where the built-in stages do, with the same Secret."""
    from controller.compiler import compile_run
    from controller.compiler.extensions import ExtensionRegistry
    from controller.spec import load_workflow
    from tests.compiler.conftest import EXAMPLES, codesets_for

    workflow = load_workflow(str(EXAMPLES["fuseml-mlflow-e2e"]))
    platform = ExtensionRegistry.from_sources([("values mlflow", TRACKING.fuseml_extension())])
    run = compile_run(workflow, codesets=codesets_for(workflow), extensions=platform, mlflow=TRACKING)
    trainer = _env(_tasks(run)["trainer"])
    assert trainer["MLFLOW_TRACKING_URI"]["value"] == TRACKING.tracking_uri
    assert trainer["MLFLOW_S3_ENDPOINT_URL"]["value"] == TRACKING.s3_endpoint
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert trainer[key]["valueFrom"]["secretKeyRef"] == {"name": TRACKING.secret, "key": key}


def test_sluice_compile_reads_the_setting_the_operator_reads(tmp_path) -> None:
    """`sluice compile` with the operator's SLUICE_MLFLOW_* variables prints what the operator
    compiles: the tracking env on every built-in stage, and the platform's FuseML mlflow extension
    for a FuseML workflow's steps."""
    import os
    import subprocess
    import sys

    import yaml

    from controller.compiler import CodesetSource, compile_run
    from controller.compiler.extensions import ExtensionRegistry
    from controller.spec import load_workflow
    from tests.compiler.conftest import EXAMPLES

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")},  # compile's defaults
        "SLUICE_MLFLOW_TRACKING_URI": TRACKING.tracking_uri,
        "SLUICE_MLFLOW_SECRET": TRACKING.secret,
        "SLUICE_MLFLOW_S3_ENDPOINT_URL": TRACKING.s3_endpoint,
    }
    path = EXAMPLES["fuseml-mlflow-e2e"]
    workflow = load_workflow(str(path))
    urls = {c.name: f"https://github.com/example/{c.name}.git" for c in workflow.codeset_inputs}
    argv = [sys.executable, "-m", "controller.cli.main", "compile", str(path)]
    for name, url in urls.items():
        argv += ["--codeset", f"{name}={url}", "--codeset-revision", f"{name}={'a' * 40}"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    printed = yaml.safe_load(done.stdout)

    platform = ExtensionRegistry.from_sources(TRACKING.extension_documents([]))
    sources = {name: CodesetSource(url, "a" * 40) for name, url in urls.items()}
    expected = compile_run(workflow, codesets=sources, extensions=platform, mlflow=TRACKING)
    assert printed == expected
    trainer = _env(_tasks(printed)["trainer"])
    assert trainer["MLFLOW_TRACKING_URI"]["value"] == TRACKING.tracking_uri

    untracked = {**env, "SLUICE_MLFLOW_TRACKING_URI": ""}
    plain = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=untracked)
    assert plain.returncode == 1 and "mlflow" in plain.stderr, "without the setting: no mlflow extension"


def test_built_in_steps_are_told_the_pinned_codeset_commits() -> None:
    """On a cluster each step logs by itself: the compiler gives every tracked built-in step the
    commits the run pins (`SLUICE_CODESET_REVISIONS`), which tag the MLflow run."""
    from pathlib import Path

    from controller.compiler import compile_run
    from controller.spec import load_workflow
    from tests.compiler.conftest import PINNED, codesets_for

    workflow = load_workflow(str(Path(__file__).parent / "workflows" / "prepare-codeset.yaml"))
    tracked = _tasks(compile_run(workflow, codesets=codesets_for(workflow), mlflow=TRACKING))
    assert _env(tracked["prepare"])["SLUICE_CODESET_REVISIONS"]["value"] == f"src={PINNED}"
    untracked = compile_run(workflow, codesets=codesets_for(workflow))
    assert "SLUICE_CODESET_REVISIONS" not in json.dumps(untracked), "only when tracking is on"


def test_a_tracked_run_ends_its_mlflow_run_in_a_finally_task(registry, upstream, tekton_lint) -> None:  # noqa: F811
    """The parent MLflow run the steps create is ended by a `finally` task (stages.tracking_end)
    given `$(tasks.status)`; only when tracking is configured, so untracked runs compile as before."""
    plain = compile_example("sum-of-two", registry)
    assert [t["name"] for t in plain["spec"]["pipelineSpec"]["finally"]] == ["summary"]
    run = compile_example("sum-of-two", registry, mlflow=TRACKING)
    final = run["spec"]["pipelineSpec"]["finally"]
    assert [t["name"] for t in final] == ["summary", "mlflow-end"]
    assert final[0] == plain["spec"]["pipelineSpec"]["finally"][0], "the summary task is unchanged"
    end = final[1]
    assert end["params"] == [{"name": "status", "value": "$(tasks.status)"}]
    (step,) = end["taskSpec"]["steps"]
    assert step["command"] == ["python", "-m", "stages.tracking_end"]
    assert step["args"][:2] == ["--status", "$(params.status)"]
    assert step["securityContext"]["readOnlyRootFilesystem"] and step["securityContext"]["runAsNonRoot"]
    env = _env(end)
    assert env["MLFLOW_TRACKING_URI"]["value"] == "http://mlflow.mlflow:5000"
    assert env["SLUICE_RUN"]["value"] == run["metadata"]["name"]
    assert env["MLFLOW_TRACKING_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "mlflow-credentials"
    assert "workspaces" not in end, "it reads no artifacts"
    assert upstream.errors(run) == []
    assert errors_only(tekton_lint(run)) == []
