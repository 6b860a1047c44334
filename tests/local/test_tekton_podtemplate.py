"""Pod templates in the local executor: what has a local meaning is honoured, what cannot be is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controller.executors.local.podtemplate import this_node
from controller.executors.local.tekton import UnsupportedError
from tests.local.helpers import pipelinerun, run_local, script_task


def _run_with(home: Path, name: str, pod: dict[str, Any], **spec: Any) -> Any:
    task = script_task("t", 'printf "$GREETING $LEVEL" > $(results.r.path)', results=[{"name": "r"}])
    task["taskSpec"]["stepTemplate"] = {"env": [{"name": "LEVEL", "value": "template"}]}
    task["taskSpec"]["steps"][0]["env"] = [{"name": "GREETING", "value": "step"}]
    obj = pipelinerun(name, [task], taskRunTemplate={"podTemplate": pod}, **spec)
    return run_local(obj, home)


def test_pod_template_env_wins_over_step_and_step_template_and_task_run_specs_merge_by_name(
    home: Path,
) -> None:
    record = _run_with(home, "pod-env", {"env": [{"name": "GREETING", "value": "pod"}]})
    assert record.tasks["t"].results == {"r": "pod template"}
    task = script_task("t", "cat $(workspaces.w.path)/env > $(results.r.path)", results=[{"name": "r"}])
    task["taskSpec"]["workspaces"] = [{"name": "w"}]
    task["workspaces"] = [{"name": "w", "workspace": "w"}]
    task["taskSpec"]["sidecars"] = [
        {
            "name": "s",
            "script": 'printf "$GREETING" > $(workspaces.w.path)/env; sleep 60',
            "readinessProbe": {"exec": {"command": ["test", "-s", "$(workspaces.w.path)/env"]}},
        }
    ]
    obj = pipelinerun("pod-env-sidecar", [task], workspaces=[{"name": "w"}])
    obj["spec"]["workspaces"] = [{"name": "w", "emptyDir": {}}]
    obj["spec"]["taskRunTemplate"] = {"podTemplate": {"env": [{"name": "GREETING", "value": "pod"}]}}
    assert run_local(obj, home).tasks["t"].results == {"r": "pod"}  # sidecars get it too
    record = _run_with(
        home,
        "pod-env-specific",
        {"env": [{"name": "GREETING", "value": "pod"}, {"name": "LEVEL", "value": "run"}]},
        taskRunSpecs=[
            {"pipelineTaskName": "t", "podTemplate": {"env": [{"name": "LEVEL", "value": "task"}]}}
        ],
    )
    assert record.tasks["t"].results == {"r": "pod task"}


def test_placement_fields_are_accepted_and_a_parameterized_node_selector_must_match(home: Path) -> None:
    node = this_node()
    pod = {
        "nodeSelector": {
            "kubernetes.io/os": node["kubernetes.io/os"],
            "kubernetes.io/arch": "$(params.arch)",
        },
        "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "schedulerName": "default-scheduler",
        "hostNetwork": True,
    }

    def placed(name: str, arch: str) -> dict[str, Any]:
        obj = pipelinerun(name, [script_task("t", "true")], params=[{"name": "arch", "default": "none"}])
        obj["spec"]["params"] = [{"name": "arch", "value": arch}]
        obj["spec"]["taskRunTemplate"] = {"podTemplate": pod}
        return obj

    assert run_local(placed("placed", node["kubernetes.io/arch"]), home).phase == "Succeeded"
    with pytest.raises(
        UnsupportedError, match=r"nodeSelector\.kubernetes\.io/arch: 'mips' cannot be honoured"
    ):
        run_local(placed("misplaced", "mips"), home)


@pytest.mark.parametrize(
    ("pod", "message"),
    [
        (
            {"nodeSelector": {"kubernetes.io/os": "windows"}},
            r"podTemplate\.nodeSelector\.kubernetes\.io/os: 'windows' cannot be honoured here",
        ),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "kubernetes.io/os", "operator": "In", "values": ["windows"]}
                                    ]
                                }
                            ]
                        }
                    }
                }
            },
            r"podTemplate\.affinity\.nodeAffinity\.requiredDuringSchedulingIgnoredDuringExecution: no term"
            r" matches",
        ),
        (
            {"hostAliases": [{"ip": "10.0.0.1", "hostnames": ["db"]}]},
            r"podTemplate\.hostAliases: host processes cannot",
        ),
        (
            {"dnsConfig": {"nameservers": ["1.1.1.1"]}},
            r"podTemplate\.dnsConfig: host processes use this machine's DNS",
        ),
        (
            {"volumes": [{"name": "v", "emptyDir": {}}]},
            r"podTemplate\.volumes: pod template volumes are not mounted",
        ),
        ({"frobnicate": True}, r"podTemplate\.frobnicate: pod template field not supported"),
    ],
)
def test_what_cannot_be_honoured_is_refused_before_anything_runs(
    home: Path, pod: dict[str, Any], message: str
) -> None:
    with pytest.raises(UnsupportedError, match=r"\$\.spec\.taskRunTemplate\." + message):
        _run_with(home, "refused", pod)
    assert not (home / "runs/refused").exists()


def test_a_task_run_specs_pod_template_is_checked_at_its_own_path(home: Path) -> None:
    with pytest.raises(UnsupportedError, match=r"\$\.spec\.taskRunSpecs\[0\]\.podTemplate\.nodeSelector"):
        _run_with(
            home,
            "refused-specific",
            {},
            taskRunSpecs=[
                {"pipelineTaskName": "t", "podTemplate": {"nodeSelector": {"kubernetes.io/arch": "s390x-no"}}}
            ],
        )
