"""`sluice report` of real runs (a small train-evaluate-deploy workflow, and a failing one) and
`sluice endpoints`' DRIFT column (the skew guard's state from each server's statistics file)."""

from __future__ import annotations

import json
import os
import random
import time
import urllib.request
from pathlib import Path

import pytest

from stages.endpoints import Endpoint, _register, endpoints_dir
from tests.local.helpers import FIXTURES
from tests.local.test_cli import sluice

WORKFLOW = """\
apiVersion: sluice.dev/v1alpha1
kind: Workflow
metadata:
  name: tiny-adder
spec:
  inputs:
    - {name: samples, type: integer, default: 1500}
  steps:
    - name: prepare
      uses: sluice/prepare
      with: {generator: sum-of-two, samples: "{{ inputs.samples }}", low: 0, high: 100, seed: 7}
      outputs: [{name: dataset, type: dataset}]
    - name: train
      uses: sluice/train-keras
      with:
        dataset: "{{ steps.prepare.outputs.dataset }}"
        layers: [{dense: 8, activation: relu}, {dense: 1}]
        epochs: 2
        seed: 7
      outputs: [{name: model, type: model}]
    - name: evaluate
      uses: sluice/evaluate
      with:
        model: "{{ steps.train.outputs.model }}"
        dataset: "{{ steps.prepare.outputs.dataset }}"
        probe: [[500, 700], [-40, 3]]
      outputs: [{name: r2, type: number}, {name: skew, type: number}]
    - name: deploy
      uses: sluice/deploy
      with: {model: "{{ steps.train.outputs.model }}", target: kserve}
      outputs: [{name: url, type: string}]
"""


def _post(url: str, rows: list[list[float]]) -> None:
    body = {"inputs": [{"name": "inputs", "shape": [len(rows), 2], "datatype": "FP32", "data": rows}]}
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def _listing(home: Path) -> dict[str, dict[str, object]]:
    listed = sluice(home, "endpoints", "--json")
    assert listed.returncode == 0, listed.stderr
    return {row["name"]: row for row in json.loads(listed.stdout)}


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_report_of_a_real_run_and_the_served_model_drifting(home: Path, tmp_path: Path) -> None:
    workflow = tmp_path / "tiny-adder.yaml"
    workflow.write_text(WORKFLOW)
    done = sluice(home, "run", str(workflow), "--input", "samples=1200", "--json")
    try:
        assert done.returncode == 0, done.stderr
        run = json.loads(done.stdout)["run"]
        report = sluice(home, "report", run)
        assert report.returncode == 0, report.stderr
        page = Path(report.stdout.strip()).read_text()
        # the run's inputs
        assert "<h2>Inputs</h2>" in page and "<td>samples</td><td><code>1200</code></td>" in page
        # evaluate's probes, each with its expected answer, prediction and error; r2 and skew
        assert "<h2>Evaluation</h2>" in page and "r2 = <b>" in page and "Skew <b>" in page
        assert "500, 700</td><td>1200</td>" in page and "-40, 3</td><td>-37</td>" in page
        assert "probe x (rows the step was given)" in page and "<th>error</th>" in page
        assert "mean_shift" in page  # the skew's per-feature details, one row per named feature
        assert page.count("<th>feature</th>") == 1 and "<tr><td>x1</td>" in page
        assert " on )" not in page  # no pair named when no correlation changed
        assert "Failed:" not in page

        # the deployed endpoint: no traffic yet -> unknown; training-like rows -> stable;
        # rows far outside the training range -> drifted
        (name, row), *_ = _listing(home).items()
        assert row["alive"] and row["drift"] == "unknown"
        plain = sluice(home, "endpoints")
        assert "DRIFT" in plain.stdout.splitlines()[0] and " unknown " in plain.stdout
        endpoint_url = str(row["url"])
        generator = random.Random(3)
        for _ in range(12):
            _post(endpoint_url, [[generator.uniform(0, 100), generator.uniform(0, 100)] for _ in range(100)])
        _wait_for_state(home, name, "stable")
        for _ in range(12):
            _post(
                endpoint_url, [[generator.uniform(900, 1000), generator.uniform(0, 10)] for _ in range(100)]
            )
        _wait_for_state(home, name, "drifted")
        assert " drifted " in sluice(home, "endpoints").stdout
    finally:
        sluice(home, "endpoints", "stop", "tiny-adder")
        for path in endpoints_dir().glob("*.json") if endpoints_dir().is_dir() else []:
            sluice(home, "endpoints", "stop", path.stem)


def _wait_for_state(home: Path, name: str, state: str) -> None:
    deadline = time.monotonic() + 15  # the server writes its statistics about once a second
    seen = ""
    while time.monotonic() < deadline:
        seen = str(_listing(home)[name]["drift"])
        if seen == state:
            return
        _post(str(_listing(home)[name]["url"]), [[50.0, 50.0]] if state == "stable" else [[950.0, 5.0]])
        time.sleep(0.3)
    raise AssertionError(f"endpoint {name} drift is {seen!r}, expected {state!r}")


def test_report_of_a_failed_run_shows_the_failing_steps_log(home: Path) -> None:
    done = sluice(home, "run", str(FIXTURES / "failing.yaml"), "--json")
    assert done.returncode != 0
    run = next((home / "runs").glob("failing-*")).name
    report = sluice(home, "report", run)
    assert report.returncode == 0, report.stderr
    page = Path(report.stdout.strip()).read_text()
    assert "<h2>Failed: broken</h2>" in page
    assert "loading data" in page and "ValueError: the dataset is empty" in page
    assert "Failed: fine" not in page
    assert "<h2>Inputs</h2>" in page and "No inputs." in page


def test_endpoints_drift_column_reads_each_servers_guard(home: Path) -> None:
    directory = endpoints_dir()
    directory.mkdir(parents=True)
    states = {"calm": "stable", "edgy": "drifting", "gone": "drifted", "fresh": None, "old": "absent"}
    for name, state in states.items():
        stats = directory / f"{name}.stats.json"
        if state == "absent":  # a server from before the guard: statistics without a guard section
            stats.write_text(json.dumps({"rows": 3, "features": []}))
        elif state is not None:
            guard = {"method": "psi", "window_rows": 1000, "psi": {"a": 0.01}, "state": state}
            stats.write_text(json.dumps({"rows": 1000, "features": [], "guard": guard}))
        _register(
            Endpoint(name, f"http://127.0.0.1:1/v2/models/{name}/infer", 0, 1, "/m", "", "", str(stats))
        )
    (directory / "broken.stats.json").write_text("{not json")
    _register(Endpoint("broken", "u", 0, 1, "/m", "", "", str(directory / "broken.stats.json")))
    rows = _listing(home)
    assert {n: r["drift"] for n, r in rows.items()} == {
        "calm": "stable",
        "edgy": "drifting",
        "gone": "drifted",
        "fresh": "unknown",
        "old": "unknown",
        "broken": "unknown",
    }
    table = sluice(home, "endpoints").stdout.splitlines()
    assert table[0].split() == ["NAME", "URL", "PID", "STATE", "DRIFT", "MODEL"]
    by_name = {line.split()[0]: line.split() for line in table[1:]}
    assert by_name["edgy"][4] == "drifting" and by_name["calm"][3] == "stopped"
    assert os.path.exists(directory / "calm.json")


def test_endpoints_table_keeps_its_columns_in_line_for_a_container_endpoint(home: Path) -> None:
    """A model server in a container shows its container's name as PID (`sluice-endpoint-<name>`,
    longer than the old fixed column): STATE, DRIFT and MODEL stay in line under their headings."""
    endpoints_dir().mkdir(parents=True)
    name = "a-long-model-name"
    _register(
        Endpoint(
            name,
            f"http://127.0.0.1:1/v2/models/{name}/infer",
            0,
            1,
            "/m",
            "",
            "",
            "",
            f"sluice-endpoint-{name}",
            "podman",
        )
    )
    _register(Endpoint("calm", "http://127.0.0.1:1/v2/models/calm/infer", 0, 1, "/models/calm", ""))
    table = sluice(home, "endpoints").stdout.splitlines()
    assert [line.split() for line in table[1:]] == [
        [
            name,
            f"http://127.0.0.1:1/v2/models/{name}/infer",
            f"sluice-endpoint-{name}",
            "stopped",
            "unknown",
            "/m",
        ],
        ["calm", "http://127.0.0.1:1/v2/models/calm/infer", "0", "stopped", "unknown", "/models/calm"],
    ]
    for column in ("STATE", "DRIFT", "MODEL"):
        at = table[0].index(column)
        assert all(line[at - 2 : at] == "  " and line[at] != " " for line in table[1:]), (column, table)
