"""What a compiled run asks of the cluster, for every example workflow: one claim per TaskRun
(so every Tekton affinity-assistant mode admits it), pods the `restricted` Pod Security profile
admits, least privilege per task, and Sluice's labels on what Tekton creates from it.

tests/adversarial/test_fuzz_specs.py applies the same checks (`check_run_pods`) to the
Hypothesis-generated workflows.
"""

from __future__ import annotations

from typing import Any

import pytest

from controller import settings
from controller.compiler import compile_run
from controller.spec import load_workflow
from controller.spec.stages import STAGES
from tests.compiler.conftest import EXAMPLES, codesets_for, compile_example
from tests.compiler.podsecurity import claims_per_task, restricted_violations, service_account_of, task_pods


def deployer_tasks(run: dict[str, Any]) -> set[str]:
    """Tasks that manage serving resources: a deploy stage, or FuseML's predictor images."""
    found = set()
    for task in run["spec"]["pipelineSpec"]["tasks"]:
        for step in task["taskSpec"]["steps"]:
            command = step.get("command") or []
            module = command[2] if command[:2] == ["python", "-m"] and len(command) > 2 else ""
            deploys = any(s.deployer and module == f"stages.{s.module}" for s in STAGES.values())
            predictor = str(step.get("image", "")).startswith("ghcr.io/fuseml/") and "-predictor:" in str(
                step.get("image", "")
            )
            if deploys or predictor:
                found.add(task["name"])
    return found


def check_run_pods(run: dict[str, Any]) -> None:
    """The checks of this module for one compiled PipelineRun (also used by the fuzz tests)."""
    for task, claims in claims_per_task(run).items():
        # Tekton's ValidateOnlyOnePVCIsUsed under `coschedule: workspaces`
        assert len(claims) <= 1, (task, claims)
    claims = {w["name"] for w in run["spec"]["workspaces"] if "volumeClaimTemplate" in w}
    assert len(claims) <= 1, claims
    labels = run["metadata"]["labels"]
    for workspace in run["spec"]["workspaces"]:
        if "volumeClaimTemplate" in workspace:
            claim_labels = workspace["volumeClaimTemplate"]["metadata"]["labels"]
            for key in (settings.LABEL_WORKFLOW, settings.LABEL_RUN):
                assert claim_labels[key] == labels[key], (key, claim_labels)
    for task, pod in task_pods(run).items():
        assert restricted_violations(pod) == [], task
    deployers = deployer_tasks(run)
    template = run["spec"]["taskRunTemplate"]
    for task in run["spec"]["pipelineSpec"]["tasks"] + run["spec"]["pipelineSpec"].get("finally", []):
        account, automount = service_account_of(run, task["name"])
        if task["name"] in deployers:
            assert account != template["serviceAccountName"] and automount is True, task["name"]
        else:
            assert account == template["serviceAccountName"] and automount is False, task["name"]
    assert {t["pipelineTaskName"] for t in run["spec"].get("taskRunSpecs") or []} == deployers


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_binds_one_claim_per_task_and_runs_restricted(name, registry):
    check_run_pods(compile_example(name, registry))


def test_codesets_and_artifacts_are_folders_of_one_claim(registry):
    run = compile_example("codeset-script", registry)
    volumes = [w for w in run["spec"]["workspaces"] if "volumeClaimTemplate" in w]
    assert [w["name"] for w in volumes] == ["run"]
    bound = {
        (b["name"], b["workspace"], b.get("subPath"))
        for t in run["spec"]["pipelineSpec"]["tasks"]
        for b in t.get("workspaces", [])
    }
    assert ("artifacts", "run", "artifacts") in bound and ("source", "run", "source") in bound
    claims = claims_per_task(run)
    assert any(len(c) == 1 for c in claims.values())  # a step reading the codeset and the artifacts


def test_only_the_deploy_task_runs_as_the_deployer(registry):
    run = compile_example("sum-of-two", registry)
    assert run["spec"]["taskRunTemplate"]["serviceAccountName"] == settings.DEFAULT_STEP_SERVICE_ACCOUNT
    assert run["spec"]["taskRunSpecs"] == [
        {
            "pipelineTaskName": "deploy",
            "serviceAccountName": settings.DEFAULT_DEPLOYER_SERVICE_ACCOUNT,
            "podTemplate": {"automountServiceAccountToken": True},
        }
    ]
    for task in ("prepare", "train", "evaluate", "deploy-gate", "summary"):
        assert service_account_of(run, task) == (settings.DEFAULT_STEP_SERVICE_ACCOUNT, False)


def test_service_account_names_are_arguments(registry):
    workflow = load_workflow(str(EXAMPLES["sum-of-two"]))
    run = compile_run(workflow, service_account="steps", deployer_service_account="deployer")
    assert service_account_of(run, "train") == ("steps", False)
    assert service_account_of(run, "deploy") == ("deployer", True)


def test_fuseml_predictor_images_deploy_and_user_images_do_not(registry):
    run = compile_example("fuseml-mlflow-seldon", registry)
    assert [t["pipelineTaskName"] for t in run["spec"]["taskRunSpecs"]] == ["predictor"]
    workflow = load_workflow(str(EXAMPLES["diamond"]))
    assert "taskRunSpecs" not in compile_run(workflow, codesets=codesets_for(workflow))["spec"]


def test_the_checker_refuses_what_restricted_refuses():
    good = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "c",
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }
        ],
        "volumes": [{"name": "v", "emptyDir": {}}],
    }
    assert restricted_violations(good) == []
    bad_cases = [
        ({"hostNetwork": True}, "hostNetwork"),
        ({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}, "hostPath"),
        (
            {"securityContext": {"runAsNonRoot": False, "seccompProfile": {"type": "RuntimeDefault"}}},
            "runAsNonRoot",
        ),
        ({"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "Unconfined"}}}, "seccomp"),
        ({"securityContext": {"runAsNonRoot": True}}, "seccompProfile"),
    ]
    for change, word in bad_cases:
        pod = {**good, **change}
        assert any(word in p for p in restricted_violations(pod)), (change, restricted_violations(pod))
    container_cases = [
        ({"privileged": True}, "privileged"),
        ({"allowPrivilegeEscalation": True}, "allowPrivilegeEscalation"),
        ({"capabilities": {"drop": ["NET_RAW"]}}, "drop"),
        ({"capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}, "add"),
        ({"runAsUser": 0}, "runAsUser"),
    ]
    for change, word in container_cases:
        container = {"name": "c", "securityContext": {**good["containers"][0]["securityContext"], **change}}
        pod = {**good, "containers": [container]}
        assert any(word in p for p in restricted_violations(pod)), (change, restricted_violations(pod))
    added = {"name": "c", "securityContext": {**good["containers"][0]["securityContext"]}}
    added["securityContext"]["capabilities"] = {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    assert restricted_violations({**good, "containers": [added]}) == []


def test_a_deploy_step_takes_no_env():
    """The deploy task holds the deployer's token: an env (LD_PRELOAD, PYTHONPATH into artifacts a
    user step wrote) would run user code with it."""
    from controller.compiler import CompileError
    from controller.spec import load_workflow_text

    text = (EXAMPLES["sum-of-two"]).read_text()
    deploy = 'with: {model: "{{ steps.train.outputs.model }}", target: kserve}'
    text = text.replace(deploy, "env: {LD_PRELOAD: /workspace/artifacts/x.so}\n      " + deploy)
    assert "LD_PRELOAD" in text
    workflow = load_workflow_text(text, "sum-of-two.yaml")
    with pytest.raises(CompileError) as failure:
        compile_run(workflow)
    assert [d.code for d in failure.value.diagnostics] == ["env.deployer"]
