"""The serving-target registry (controller.serving): every target complete, every list of target
names in the repository the registry's, and an unknown target refused with the known ones."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from controller.serving import (
    TARGETS,
    TRITON_REPOSITORY,
    Readiness,
    ServingError,
    ServingTarget,
    get_target,
    served_model_name,
    serving_manifest,
    storage_path,
    target_for_kind,
)
from tests.compiler.upstream import CRD_FILES, SCHEMAS_ROOT

ROOT = Path(__file__).resolve().parents[2]
HOOKS = ("build", "served_name", "readiness", "url")
KNOWN = "kserve, seldon, seldon-v1"


def test_the_registry_is_keyed_by_each_targets_own_name() -> None:
    assert list(TARGETS) == ["kserve", "seldon", "seldon-v1"]
    for name, target in TARGETS.items():
        assert isinstance(target, ServingTarget) and target.name == name
    kinds = [t.kind for t in TARGETS.values()]
    assert len(set(kinds)) == len(kinds), "one kind per target: stages.deploy finds a target by kind"


@pytest.mark.parametrize("name", list(TARGETS))
def test_every_target_has_every_hook(name: str) -> None:
    target = TARGETS[name]
    for hook in HOOKS:
        assert callable(getattr(target, hook)), f"{name}: {hook} is not callable"
    for attribute in ("description", "api_version", "kind", "plural", "storage_path"):
        assert isinstance(getattr(target, attribute), str) and getattr(target, attribute), attribute
    assert target.group and target.version and f"{target.group}/{target.version}" == target.api_version
    assert target.storage_path.split("/")[0] == TRITON_REPOSITORY  # the repository train-keras writes

    manifest = target.manifest(name="sum", model_uri=f"pvc://c/m/{target.storage_path}", namespace="ml")
    assert (manifest["apiVersion"], manifest["kind"]) == (target.api_version, target.kind)
    assert manifest["metadata"]["name"] == "sum" and manifest["metadata"]["namespace"] == "ml"
    assert manifest == serving_manifest(
        name, name="sum", model_uri=f"pvc://c/m/{target.storage_path}", namespace="ml"
    )

    served = target.served_model_name("sum")
    assert served in ("sum", "model") and served == served_model_name(name, "sum")
    assert storage_path(name) == target.storage_path

    waiting = target.readiness({})
    assert isinstance(waiting, Readiness) and not waiting.ready and not waiting.failed and waiting.description
    # Before the controller writes a URL, every target still names the v2 infer URL of its model.
    url = target.url(manifest, {}, "sum", "ml")
    assert url.startswith("http://") and url.endswith(f"/v2/models/{served}/infer"), url
    assert target_for_kind(target.kind) is target


@pytest.mark.parametrize("name", list(TARGETS))
def test_every_target_matches_its_upstream_crd(name: str) -> None:
    target = TARGETS[name]
    crd = yaml.safe_load((SCHEMAS_ROOT / CRD_FILES[(target.group, target.kind)]).read_text())
    assert crd["spec"]["group"] == target.group
    assert crd["spec"]["names"]["kind"] == target.kind
    assert crd["spec"]["names"]["plural"] == target.plural
    assert target.version in [v["name"] for v in crd["spec"]["versions"] if v.get("served", True)]


def test_an_unknown_target_is_refused_naming_the_known_ones() -> None:
    message = f"unknown target 'triton'; use one of: {KNOWN}"
    for call in (
        lambda: get_target("triton"),
        lambda: serving_manifest("triton", name="m", model_uri="s3://b/m"),
        lambda: storage_path("triton"),
        lambda: served_model_name("triton", "m"),
    ):
        with pytest.raises(ServingError, match=re.escape(message)):
            call()
    with pytest.raises(ServingError, match="known kinds: InferenceService, Model, SeldonDeployment"):
        target_for_kind("Deployment")


def test_canary_is_refused_by_the_targets_without_it() -> None:
    assert [t.name for t in TARGETS.values() if t.canary] == ["kserve"]
    for name in ("seldon", "seldon-v1"):
        with pytest.raises(ServingError, match="only supported by the kserve target"):
            serving_manifest(name, name="m", model_uri="s3://b/m", canary_traffic_percent=10)


def test_every_list_of_target_names_is_the_registrys() -> None:
    from controller.cli.commands_compile import TargetName as CliTargets
    from controller.spec.stages import STAGES
    from stages.deploy import TARGETS as DEPLOY_TARGETS

    assert [str(choice) for choice in CliTargets] == list(TARGETS)  # sluice deploy-manifest --target
    assert list(DEPLOY_TARGETS) == [*TARGETS, "local"]  # sluice/deploy --target
    # The stage catalog (controller.spec imports nothing of controller.serving) says the same.
    assert STAGES["deploy"].params["target"].description == " | ".join([*TARGETS, "local"])
    # The chart grants the run's ServiceAccount each target's resource, chosen by target name.
    values = json.loads((ROOT / "charts/sluice/values.schema.json").read_text())
    run_account = values["properties"]["runServiceAccount"]["properties"]["deployTargets"]
    assert run_account["items"]["enum"] == list(TARGETS)
    helpers = (ROOT / "charts/sluice/templates/_helpers.tpl").read_text()
    for target in TARGETS.values():
        rule = (
            f'{{{{- if has "{target.name}" $targets }}}}\n'
            f'- apiGroups: ["{target.group}"]\n'
            f'  resources: ["{target.plural}"]\n'
        )
        assert rule in helpers, f"charts/sluice/templates/_helpers.tpl has no RBAC rule for {target.name}"


def test_the_deploy_stage_declares_its_artifacts_environment() -> None:
    from controller.spec.stages import STAGES

    assert STAGES["deploy"].artifacts_env == {
        "SLUICE_ARTIFACTS_PVC": "claim",
        "SLUICE_ARTIFACTS_ROOT": "root",
    }
    assert all(not stage.artifacts_env for name, stage in STAGES.items() if name != "deploy")
