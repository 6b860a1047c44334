"""The task cache: hits on a rerun, misses when anything that matters changes, never for deploys."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from tests.local.helpers import artifacts_workspace, pipelinerun, run_local, script_task


def _two_stage(name: str, samples: str, counter: Path) -> dict[str, Any]:
    """`make` writes an artifact folder and returns its path; `use` reads it (the stage contract)."""
    make = script_task(
        "make",
        f"echo make >> {counter}\nmkdir -p $(workspaces.artifacts.path)/make/data\n"
        "seq $(params.n) > $(workspaces.artifacts.path)/make/data/rows.txt\n"
        "printf '%s' $(workspaces.artifacts.path)/make/data > $(results.data.path)",
        params=[{"name": "n"}],
        results=[{"name": "data"}],
        workspaces=[{"name": "artifacts"}],
    )
    make["params"] = [{"name": "n", "value": "$(params.samples)"}]
    make["workspaces"] = [{"name": "artifacts", "workspace": "artifacts"}]
    use = script_task(
        "use",
        f"echo use >> {counter}\nprintf '%s' $(wc -l < $(params.data)/rows.txt) > $(results.lines.path)",
        params=[{"name": "data"}],
        results=[{"name": "lines"}],
    )
    use["params"] = [{"name": "data", "value": "$(tasks.make.results.data)"}]
    obj = pipelinerun(
        name, [make, use], params=[{"name": "samples", "default": "5"}], workspaces=[{"name": "artifacts"}]
    )
    obj["spec"]["params"] = [{"name": "samples", "value": samples}]
    obj["spec"]["workspaces"] = [artifacts_workspace()]
    return obj


def _runs(counter: Path) -> list[str]:
    return counter.read_text().split() if counter.exists() else []


def test_rerun_hits_the_cache_and_restores_artifacts(home: Path, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    first = run_local(_two_stage("first", "5", counter), home)
    assert first.phase == "Succeeded" and _runs(counter) == ["make", "use"]
    second = run_local(_two_stage("second", "5", counter), home)
    assert second.phase == "Succeeded"
    assert _runs(counter) == ["make", "use"], "nothing may run again"
    assert second.tasks["make"].cached and second.tasks["use"].cached
    restored = home / "runs/second/workspaces/artifacts/make/data/rows.txt"
    assert restored.read_text().split() == ["1", "2", "3", "4", "5"]
    assert second.tasks["make"].results["data"] == str(restored.parent)  # paths point into the new run
    assert second.tasks["use"].results["lines"] == "5"
    assert second.tasks["make"].artifacts[0]["sha256"] == first.tasks["make"].artifacts[0]["sha256"]


def test_changed_param_misses_and_no_cache_reruns(home: Path, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    run_local(_two_stage("a", "5", counter), home)
    changed = run_local(_two_stage("b", "7", counter), home)
    assert not changed.tasks["make"].cached and not changed.tasks["use"].cached
    assert changed.tasks["use"].results["lines"] == "7"
    forced = run_local(_two_stage("c", "7", counter), home, use_cache=False)
    assert not forced.tasks["make"].cached
    assert _runs(counter) == ["make", "use"] * 3


def test_changed_input_artifact_misses_downstream(home: Path, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    run_local(_two_stage("a", "5", counter), home)
    obj = _two_stage("b", "5", counter)
    script = obj["spec"]["pipelineSpec"]["tasks"][0]["taskSpec"]["steps"][0]
    script["script"] = script["script"].replace("seq $(params.n)", "seq 2 $(params.n)")
    record = run_local(obj, home)
    assert not record.tasks["make"].cached
    assert not record.tasks["use"].cached, "its input folder changed, so its key must change"
    assert record.tasks["use"].results["lines"] == "4"


def test_deploy_and_annotated_tasks_are_never_cached(home: Path, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    deploy = {
        "name": "deploy",
        "taskSpec": {
            "steps": [{"name": "d", "image": "x", "command": ["python", "-c", "pass", "-m", "stages.deploy"]}]
        },
    }
    marked = {
        "name": "marked",
        "taskSpec": {
            "metadata": {"annotations": {"sluice.dev/cache": "false"}},
            "steps": [{"name": "m", "image": "x", "script": f"echo marked >> {counter}"}],
        },
    }
    obj = pipelinerun("nc", [marked, deploy])
    assert run_local(copy.deepcopy(obj), home).phase == "Succeeded"
    obj["metadata"]["name"] = "nc2"
    again = run_local(obj, home)
    assert not again.tasks["marked"].cached
    assert not again.tasks["deploy"].cached
    assert _runs(counter) == ["marked", "marked"]
    assert not any((home / "cache" / "entries").glob(f"{again.tasks['deploy'].cache_key}.json"))


def test_task_registering_an_endpoint_is_not_cached(home: Path, tmp_path: Path) -> None:
    task = {
        "name": "serve",
        "taskSpec": {
            "steps": [
                {
                    "name": "s",
                    "image": "x",
                    "script": "mkdir -p $SLUICE_HOME/endpoints\n"
                    "echo '{}' > $SLUICE_HOME/endpoints/thing.json",
                }
            ]
        },
    }
    first = run_local(pipelinerun("ep1", [task]), home)
    assert first.tasks["serve"].message.startswith("not cached")
    second = run_local(pipelinerun("ep2", [task]), home)
    assert not second.tasks["serve"].cached
