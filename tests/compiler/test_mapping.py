"""Mapping rules of the compiler, checked on the compiled objects a cluster would receive."""

from __future__ import annotations

import builtins
import os
import random
import re
import subprocess
import time

import pytest

from controller.compiler import CodesetSource, CompileError, compile_run, run_name_for, to_yaml
from controller.compiler.pipelinerun import _dependencies
from controller.spec import load_workflow, load_workflow_text
from controller.units import parse_duration
from tests.compiler.conftest import EXAMPLES, PINNED, PROJECT, STAGES_IMAGE, compile_example
from testsupport.processes import run_python


def tasks_of(run):
    spec = run["spec"]["pipelineSpec"]
    return {t["name"]: t for t in [*spec["tasks"], *spec["finally"]]}


def steps_of(run):
    return [step for task in tasks_of(run).values() for step in task["taskSpec"]["steps"]]


def test_diamond_middle_tasks_depend_only_on_the_first(registry):
    tasks = tasks_of(compile_example("diamond", registry))
    assert _dependencies(tasks["prepare"]) == set()
    assert _dependencies(tasks["left"]) == {"prepare"}
    assert _dependencies(tasks["right"]) == {"prepare"}
    assert _dependencies(tasks["join"]) == {"left", "right"}
    assert "runAfter" not in tasks["left"] and "runAfter" not in tasks["right"]  # no artificial sequence


def test_sum_of_two_chain_and_gate(registry):
    tasks = tasks_of(compile_example("sum-of-two", registry))
    assert _dependencies(tasks["train"]) == {"prepare"}
    assert _dependencies(tasks["evaluate"]) == {"train", "prepare"}
    assert _dependencies(tasks["deploy-gate"]) == {"evaluate"}
    assert _dependencies(tasks["deploy"]) == {"deploy-gate", "train"}
    gate_args = tasks["deploy-gate"]["taskSpec"]["steps"][0]["args"]
    assert gate_args[:6] == ["--left", "$(params.evaluate-mae)", "--op", "<=", "--right", "$(params.max-mae)"]
    assert {p["name"]: p["value"] for p in tasks["deploy-gate"]["params"]} == {
        "evaluate-mae": "$(tasks.evaluate.results.mae)",
        "max-mae": "$(params.max-mae)",
    }
    assert tasks["deploy"]["when"] == [
        {"input": "$(tasks.deploy-gate.results.pass)", "operator": "in", "values": ["true"]}
    ]


def test_string_conditions_become_tekton_when_without_a_gate(registry):
    tasks = tasks_of(compile_example("codeset-script", registry))
    assert tasks["prepare"]["when"] == [
        {"input": "$(params.mode)", "operator": "in", "values": ["full", "quick"]}
    ]
    assert tasks["train"]["when"] == [
        {"input": "$(tasks.inspect.results.files)", "operator": "notin", "values": ["0"]}
    ]
    assert not any(name.endswith("-gate") for name in tasks)


def test_builtin_step_follows_the_stage_contract(registry):
    train = tasks_of(compile_example("sum-of-two", registry))["train"]
    step = train["taskSpec"]["steps"][0]
    assert step["image"] == STAGES_IMAGE
    assert step["command"] == ["python", "-m", "stages.train_keras"]
    args = step["args"]
    assert args[:2] == ["--dataset", "$(params.prepare-dataset)"]
    assert args[args.index("--layers") + 1] == (
        '[{"dense":20,"activation":"relu"},{"dense":20,"activation":"relu"},{"dense":1}]'
    )
    assert args[args.index("--epochs") + 1] == "20"
    assert args[-6:] == [
        "--result",
        "model=$(results.model.path)",
        "--result",
        "val-mae=$(results.val-mae.path)",
        "--artifacts-dir",
        "$(workspaces.artifacts.path)/train",
    ]
    assert [r["name"] for r in train["taskSpec"]["results"]] == ["model", "val-mae"]
    env = {e["name"]: e.get("value") for e in step["env"]}
    assert env["SLUICE_WORKFLOW"] == "sum-of-two"
    assert env["SLUICE_RUN"] == compile_example("sum-of-two", registry)["metadata"]["name"]


def test_every_step_is_restricted_and_bounded(registry):
    for name in EXAMPLES:
        for task in tasks_of(compile_example(name, registry)).values():
            assert task["taskSpec"]["volumes"] == [{"name": "tmp", "emptyDir": {}}]
        for step in steps_of(compile_example(name, registry)):
            context = step["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["readOnlyRootFilesystem"] is True
            assert step["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]  # the one writable place
            assert context["runAsNonRoot"] is True
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}
            for section in ("requests", "limits"):
                assert set(step["computeResources"][section]) >= {"cpu", "memory"}, (name, step["name"])


def test_given_resources_are_kept_and_completed(registry):
    run = compile_example("three-body", registry)
    train = tasks_of(run)["train"]["taskSpec"]["steps"][0]["computeResources"]
    assert train == {"requests": {"cpu": "2", "memory": "2Gi"}, "limits": {"cpu": "4", "memory": "4Gi"}}
    inspect = tasks_of(compile_example("codeset-script", registry))["inspect"]["taskSpec"]["steps"][0]
    # a limit below the default request lowers the request, never the other way round
    assert inspect["computeResources"]["limits"] == {"cpu": "500m", "memory": "256Mi"}
    assert inspect["computeResources"]["requests"] == {"cpu": "250m", "memory": "256Mi"}


def test_timeouts_cover_the_longest_chain_with_retries_and_finally(registry):
    run = compile_example("three-body", registry)
    timeouts = run["spec"]["timeouts"]
    tasks = tasks_of(run)
    assert tasks["simulate"]["timeout"] == "30m0s"
    assert tasks["train"]["timeout"] == "1h0m0s" and tasks["train"]["retries"] == 1
    # simulate 30m + train 2 x 1h + evaluate 1h + gate 2m + deploy 1h
    assert parse_duration(timeouts["tasks"]) == 1800 + 2 * 3600 + 3600 + 120 + 3600
    tasks, pipeline, finally_ = (parse_duration(timeouts[k]) for k in ("tasks", "pipeline", "finally"))
    assert pipeline >= tasks + finally_


def test_summary_is_a_finally_task_reading_statuses_only(registry):
    run = compile_example("sum-of-two", registry)
    (summary,) = run["spec"]["pipelineSpec"]["finally"]
    values = [p["value"] for p in summary["params"]]
    assert "$(tasks.status)" in values
    assert all(re.fullmatch(r"\$\(tasks(\.[a-z0-9-]+)?\.status\)", v) for v in values)
    assert summary["taskSpec"]["steps"][0]["command"] == ["python", "-m", "stages.summary"]


def test_labels_annotations_and_workspaces(registry):
    run = compile_example("codeset-script", registry)
    labels = run["metadata"]["labels"]
    assert labels["sluice.dev/workflow"] == "codeset-script"
    assert labels["sluice.dev/run"] == run["metadata"]["name"]
    assert labels["sluice.dev/codeset"] == "training-data"
    assert labels["sluice.dev/revision"] == PINNED
    assert run["metadata"]["namespace"] == "ml-team"
    workspaces = {w["name"]: w for w in run["spec"]["workspaces"]}
    # one claim for the run: the artifacts' 5Gi and 1Gi for the checkouts
    assert workspaces["run"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == "6Gi"
    assert workspaces["git-credentials-source"] == {
        "name": "git-credentials-source",
        "secret": {"secretName": "git-credentials"},
    }
    # an output with no task result cannot be a Tekton pipeline result; it is recorded as static
    assert run["metadata"]["annotations"]["sluice.dev/static-outputs"] == '{"mode":"mode full"}'
    assert [r["name"] for r in run["spec"]["pipelineSpec"]["results"]] == ["rows"]


def test_codeset_references_resolve(registry):
    run = compile_example("codeset-script", registry)
    tasks = tasks_of(run)
    clone_args = tasks["clone-source"]["taskSpec"]["steps"][0]["args"]
    assert clone_args[:6] == [
        "--url",
        "https://github.com/example/source.git",
        "--revision",
        PINNED,
        "--dest",
        "$(workspaces.source.path)/source",
    ]
    inspect = tasks["inspect"]
    step = inspect["taskSpec"]["steps"][0]
    assert step["workingDir"] == "$(workspaces.source.path)/source"
    # values reach shell text as environment variables (issue 16 item 1), paths stay in it
    assert 'echo "commit ${SLUICE_REF_SOURCE_REVISION} of ${SLUICE_REF_SOURCE_URL}"' in step["script"]
    env = {e["name"]: e.get("value") for e in step["env"]}
    assert env["SLUICE_REF_SOURCE_REVISION"] == "$(params.source-revision)"
    assert env["SLUICE_REF_SOURCE_URL"] == "https://github.com/example/source.git"
    assert {"name": "source-revision", "value": "$(tasks.clone-source.results.commit)"} in inspect["params"]
    assert "clone-source" in inspect["runAfter"]
    prepare_args = tasks["prepare"]["taskSpec"]["steps"][0]["args"]
    assert prepare_args[:2] == ["--source", "$(workspaces.source.path)/source/data/train.csv"]


def test_credentials_never_travel_as_params_or_args(registry):
    for name in EXAMPLES:
        text = to_yaml(compile_example(name, registry))
        run = compile_example(name, registry)
        for task in tasks_of(run).values():
            for param in task.get("params", []):
                assert "secret" not in param["value"].lower()
        assert "accesskey" not in re.sub(r"key: accesskey", "", text)


def test_fuseml_container_contract(registry):
    run = compile_example("fuseml-mlflow-e2e", registry, namespace="fuseml-workloads")
    tasks = tasks_of(run)
    trainer = tasks["trainer"]
    step = trainer["taskSpec"]["steps"][0]
    assert step["command"] == ["run"]
    assert step["image"] == "$(params.IMAGE)"
    assert {"name": "IMAGE", "value": "$(tasks.builder.results.image)"} in trainer["params"]
    assert step["workingDir"] == "/project"
    assert trainer["taskSpec"]["workspaces"] == [
        {"name": "source", "description": "codeset mlflow-codeset", "mountPath": "/project"}
    ]
    assert trainer["workspaces"] == [
        {"name": "source", "workspace": "run", "subPath": "source/mlflow-codeset"}
    ]
    env = {e["name"]: e for e in step["env"]}
    assert env["TASK_RESULT"]["value"] == "mlflow-model-url"
    assert env["FUSEML_ENV_WORKFLOW_NAME"]["value"] == "mlflow-e2e"
    assert env["FUSEML_ENV_WORKFLOW_NAMESPACE"]["value"] == "fuseml-workloads"
    assert env["MLFLOW_TRACKING_URI"]["value"] == "http://mlflow.mlflow"  # the internal endpoint
    assert env["AWS_SECRET_ACCESS_KEY"] == {
        "name": "AWS_SECRET_ACCESS_KEY",
        "valueFrom": {"secretKeyRef": {"name": "mlflow-minio", "key": "secretkey"}},
    }
    predictor = tasks["predictor"]
    penv = {e["name"]: e.get("value") for e in predictor["taskSpec"]["steps"][0]["env"]}
    assert penv["FUSEML_MODEL"] == "$(params.model)"
    assert penv["FUSEML_PREDICTOR"] == "$(params.predictor)"
    assert penv["FUSEML_APP_NAME"] == "$(params.app_name)"
    params = {p["name"]: p["value"] for p in predictor["params"]}
    assert params == {
        "model": "$(tasks.trainer.results.mlflow-model-url)",
        "predictor": "$(params.predictor)",
        "app_name": "mlflow-codeset-example",
    }
    # FuseML ran steps one after another; here the predictor waits only for what it reads
    assert _dependencies(predictor) == {"trainer"}


def test_fuseml_ovms_extension_references(registry):
    tasks = tasks_of(compile_example("fuseml-mlflow-ovms", registry))
    converter = {e["name"]: e for e in tasks["converter"]["taskSpec"]["steps"][0]["env"]}
    assert converter["S3_ENDPOINT"]["value"] == "http://mlflow-minio.mlflow:9000"
    assert converter["S3_SECRET"]["valueFrom"]["secretKeyRef"] == {"name": "mlflow-minio", "key": "secretkey"}
    assert converter["FUSEML_BATCH"]["value"] == "$(params.batch)"
    params = {p["name"]: p["value"] for p in tasks["converter"]["params"]}
    assert params["output_model"] == "$(tasks.trainer.results.mlflow-model-url)/ovms"
    assert params["batch"] == "1"
    predictor = {e["name"]: e.get("value") for e in tasks["predictor"]["taskSpec"]["steps"][0]["env"]}
    assert predictor["S3_ENDPOINT"] == "http://mlflow-minio.mlflow:9000"
    assert _dependencies(tasks["converter"]) == {"trainer"}


def test_unresolvable_extension_names_step_and_selector(registry):
    workflow = load_workflow(str(EXAMPLES["fuseml-mlflow-seldon"]))
    from controller.compiler import ExtensionRegistry
    from controller.spec.extension_files import read_extension_files

    only_kserve = ExtensionRegistry.from_sources(
        read_extension_files([PROJECT / "tests/compiler/extensions/kserve"])
    )
    with pytest.raises(CompileError) as caught:
        compile_run(
            workflow,
            codesets={"mlflow-codeset": CodesetSource("https://h.example/o/r.git", PINNED)},
            extensions=only_kserve,
        )
    messages = [d.message for d in caught.value.diagnostics]
    assert any("step 'trainer'" in m and "'mlflow-tracking'" in m for m in messages)
    assert any("step 'predictor'" in m and "'seldon-core'" in m for m in messages)
    assert {d.path for d in caught.value.diagnostics} >= {
        "$.steps[1].extensions[0]",
        "$.steps[2].extensions[1]",
    }


def test_input_values_are_checked():
    workflow = load_workflow(str(EXAMPLES["three-body"]))
    with pytest.raises(CompileError) as caught:
        compile_run(workflow, inputs={"epochs": "many", "simulations": True, "colour": "red"})
    found = {d.path: d for d in caught.value.diagnostics}
    assert set(found) == {"$.inputs.epochs", "$.inputs.simulations", "$.inputs.colour"}
    assert found["$.inputs.epochs"].line > 0
    assert "must be an integer" in found["$.inputs.epochs"].message


def test_required_input_and_codeset_are_reported():
    text = """
apiVersion: sluice.dev/v1alpha1
kind: Workflow
metadata: {name: needs}
spec:
  inputs:
    - {name: rate, type: number}
    - {name: src, type: codeset}
  steps:
    - name: s
      image: alpine:3.20
      args: ["{{ inputs.rate }}", "{{ inputs.src.path }}"]
"""
    workflow = load_workflow_text(text, "needs.yaml")
    with pytest.raises(CompileError) as caught:
        compile_run(workflow)
    assert {d.path for d in caught.value.diagnostics} == {"$.inputs.rate", "$.codesets.src"}
    run = compile_run(
        workflow, inputs={"rate": 0.5}, codesets={"src": CodesetSource("git@github.com:o/r.git", "main")}
    )
    assert run["spec"]["params"] == [{"name": "rate", "value": "0.5"}]


@pytest.mark.parametrize(
    "url,revision",
    [
        ("ext::sh -c touch% /tmp/pwned", PINNED),
        ("file:///etc", PINNED),
        ("https://127.0.0.1/repo.git", PINNED),
        ("https://user:hunter2@github.com/o/r.git", PINNED),
        ("https://github.com/o/r.git", "--upload-pack=touch /tmp/x"),
        ("https://github.com/o/r.git", "main..other"),
    ],
)
def test_unsafe_codesets_are_refused(url, revision, monkeypatch, registry):
    monkeypatch.delenv("SLUICE_ALLOW_LOCAL_GIT", raising=False)
    workflow = load_workflow(str(EXAMPLES["fuseml-mlflow-e2e"]))
    with pytest.raises(CompileError) as caught:
        compile_run(workflow, codesets={"mlflow-codeset": CodesetSource(url, revision)}, extensions=registry)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "codeset.unsafe"
    assert "hunter2" not in diagnostic.message


def test_run_name_is_deterministic_and_dns_safe():
    workflow = load_workflow(str(EXAMPLES["sum-of-two"]))
    name = run_name_for(workflow, {}, {})
    assert re.fullmatch(r"sum-of-two-[0-9a-f]{10}", name)
    assert run_name_for(workflow, {"samples": 20000}, {}) == name  # a default given explicitly
    assert run_name_for(workflow, {"samples": 20001}, {}) != name
    assert run_name_for(workflow, {}, {"src": "a" * 40}) != name
    import dataclasses

    assert run_name_for(dataclasses.replace(workflow, generation=2), {}, {}) != name
    long = dataclasses.replace(workflow, name="x" * 80)
    assert len(run_name_for(long, {}, {})) <= 63
    assert compile_run(workflow)["metadata"]["name"] == name
    assert compile_run(workflow, run_name="given")["metadata"]["name"] == "given"


def test_compiling_twice_gives_identical_yaml(registry):
    for name in EXAMPLES:
        assert to_yaml(compile_example(name, registry)) == to_yaml(compile_example(name, registry))


def test_output_does_not_depend_on_hash_seed():
    script = (
        "from controller.spec import load_workflow\n"
        "from controller.compiler import compile_run, to_yaml\n"
        "print(to_yaml(compile_run(load_workflow('workflows/three-body.yaml'), stages_image='i:1')))\n"
    )
    outputs = set()
    for seed in ("1", "2"):
        done = run_python(script, env={**os.environ, "PYTHONHASHSEED": seed}, timeout=120)
        assert done.returncode == 0, done.stderr
        outputs.add(done.stdout)
    assert len(outputs) == 1


def test_compile_does_no_io_clock_or_randomness(registry, monkeypatch):
    workflow = load_workflow(str(EXAMPLES["fuseml-mlflow-ovms"]))
    codesets = {"mlflow-codeset": CodesetSource("https://github.com/o/r.git", PINNED)}

    def forbidden(*args, **kwargs):
        raise AssertionError("the compiler must be pure")

    for target, attribute in [
        (builtins, "open"),
        (time, "time"),
        (time, "time_ns"),
        (time, "monotonic"),
        (random, "random"),
        (random, "getrandbits"),
        (os, "urandom"),
        (os, "listdir"),
        (os, "stat"),
        (subprocess, "run"),
    ]:
        monkeypatch.setattr(target, attribute, forbidden)
    run = compile_run(workflow, codesets=codesets, extensions=registry, stages_image=STAGES_IMAGE)
    assert run["kind"] == "PipelineRun"


def test_command_templates_are_rendered_like_args():
    workflow = load_workflow_text(
        """
apiVersion: sluice.dev/v1alpha1
kind: Workflow
metadata: {name: cmd}
spec:
  inputs: [{name: n, type: integer, default: 3}]
  steps:
    - name: first
      image: busybox:1.36
      command: [sh, -c, "echo 1 > $SLUICE_ARTIFACTS_DIR/x"]
      outputs: [{name: x, type: string}]
    - name: second
      image: busybox:1.36
      command: [echo, "{{ inputs.n }}", "{{ steps.first.outputs.x }}"]
""",
        "cmd.yaml",
    )
    tasks = tasks_of(compile_run(workflow))
    second = tasks["second"]
    rendered = " ".join(second["taskSpec"]["steps"][0]["command"])
    assert "{{" not in rendered
    assert rendered.startswith("echo $(params.")
    assert any(p["value"] == "$(tasks.first.results.x)" for p in second["params"])


def test_fuseml_codeset_version_is_the_commit(registry):
    workflow = load_workflow_text(
        """
name: versioned
inputs: [{name: src, type: codeset}]
steps:
  - name: show
    image: ghcr.io/fuseml/show:v1
    inputs:
      - name: src
        codeset: {name: "{{ inputs.src }}", path: /project}
      - name: commit
        value: "{{ inputs.src.version }}"
""",
        "versioned.yaml",
    )
    run = compile_run(workflow, codesets={"src": CodesetSource("https://github.com/example/src.git", PINNED)})
    show = tasks_of(run)["show"]
    commit_param = next(p for p in show["params"] if "clone" in p["value"])
    assert commit_param["value"].endswith(".results.commit)")
