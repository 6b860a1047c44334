"""`sluice submit` and the --cluster forms of runs, logs and cancel, against the emulated API server
with the operator running (kopf); the tests play Tekton's part (PipelineRun/TaskRun status, pods)
and the kubelet's (container logs)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import yaml

from tests.operator import tekton
from tests.operator.conftest import NAMESPACE, Api, RunningOperator, eventually, path
from tests.operator.test_workflowruns import SLUICE, pipelinerun_of, wait_phase, workflow_run
from tests.operator.test_workflows import sum_of_two

ROOT = Path(__file__).resolve().parents[2]
URL = "http://sum-of-two.ml.example.com/v2/models/m/infer"


async def start_sluice(api: Api, *args: str, kubeconfig: str | None = None) -> asyncio.subprocess.Process:
    """`sluice ARGS` started as a process against the emulated cluster, its output piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller.cli.main",
        *args,
        env={**os.environ, "KUBECONFIG": kubeconfig or api.server.kubeconfig, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )


async def sluice(api: Api, *args: str, kubeconfig: str | None = None) -> tuple[int, str, str]:
    """`sluice ARGS` as a process against the emulated cluster: exit status, stdout, stderr."""
    process = await start_sluice(api, *args, kubeconfig=kubeconfig)
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


async def finish(api: Api, run: str, phase: str = "Succeeded", reason: str = "Succeeded") -> None:
    """Play Tekton: the `prepare` task runs, then the PipelineRun ends with the given outcome."""
    pipelinerun = await pipelinerun_of(api, run)
    prepare = await tekton.create_taskrun(api, pipelinerun, "prepare")
    await tekton.set_taskrun(
        api, NAMESPACE, prepare, tekton.status("Unknown", "Running", startTime="2026-01-01T00:00:05Z")
    )
    children = {"childReferences": [tekton.child(run, "prepare")], "startTime": "2026-01-01T00:00:01Z"}
    await tekton.set_pipelinerun(api, NAMESPACE, run, tekton.status("Unknown", "Running", **children))
    await wait_phase(api, run, "Running")
    await asyncio.sleep(1.5)  # a --watch poll sees the running step
    ok = phase == "Succeeded"
    await tekton.set_taskrun(api, NAMESPACE, prepare, tekton.status("True" if ok else "False", reason))
    results = {"results": [{"name": "prediction-url", "value": URL}]} if ok else {}
    await tekton.set_pipelinerun(
        api, NAMESPACE, run, tekton.status("True" if ok else "False", reason, **children, **results)
    )


# --- sluice submit ------------------------------------------------------------------------------------


async def test_submit_creates_a_run_with_typed_inputs_and_watch_follows_it(
    api: Api, operator: RunningOperator
) -> None:
    await api.apply(sum_of_two())
    inputs = ("-i", "samples=500", "--input", "max-mae=0.25")
    process = await start_sluice(api, "submit", "sum-of-two", "-n", NAMESPACE, *inputs, "--watch")
    assert process.stdout is not None
    name = (await asyncio.wait_for(process.stdout.readline(), timeout=60)).decode().strip()
    assert name.startswith("sum-of-two-")
    run = await api.get(path(SLUICE, "workflowruns", name))
    assert run is not None
    assert run["spec"] == {"workflowRef": {"name": "sum-of-two"}, "inputs": {"samples": 500, "max-mae": 0.25}}
    await finish(api, name)
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    for expected in ("step prepare: Running", "step prepare: Succeeded", f"run {name}: Succeeded"):
        assert expected in lines, lines
    assert lines.index("step prepare: Running") < lines.index(f"run {name}: Succeeded")
    assert f"  output prediction-url = {URL}" in lines


async def test_submit_watch_exits_1_when_the_run_fails(api: Api, operator: RunningOperator) -> None:
    await api.apply(sum_of_two())
    process = await start_sluice(api, "submit", "sum-of-two", "-n", NAMESPACE, "--watch")
    assert process.stdout is not None
    name = (await asyncio.wait_for(process.stdout.readline(), timeout=60)).decode().strip()
    await finish(api, name, "Failed", "Failed")
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 1
    assert f"run {name}: Failed" in out.decode().splitlines()


async def test_submit_refuses_bad_input_with_one_line_and_creates_nothing(api: Api, tmp_path: Path) -> None:
    await api.apply(sum_of_two())
    needs_code = sum_of_two("needs-code")
    needs_code["spec"]["inputs"].append({"name": "src", "type": "codeset"})
    await api.apply(needs_code)
    cases = {
        ("-i", "samples=many"): (
            1,
            "sluice submit: $.inputs.samples: input 'samples' must be an integer, got 'many'",
        ),
        ("-i", "sampels=5"): (
            1,
            "sluice submit: $.inputs.sampels: unknown input 'sampels' (inputs: samples, max-mae)",
        ),
        ("-i", "samples"): (2, "expected NAME=VALUE, got 'samples'"),
    }
    outcomes = await asyncio.gather(
        *(sluice(api, "submit", "sum-of-two", "-n", NAMESPACE, *args) for args in cases),
        sluice(api, "submit", "sum-of-tow", "-n", NAMESPACE),
        sluice(api, "submit", "workflows/sum-of-two.yaml", "-n", NAMESPACE),
        sluice(api, "submit", "sum-of-two", kubeconfig=str(tmp_path / "missing")),
        sluice(api, "submit", "needs-code", "-n", NAMESPACE),
    )
    for (code, _, err), (want_code, message) in zip(outcomes, cases.values(), strict=False):
        assert code == want_code and message in err, err
    assert outcomes[0][2].strip() == cases[("-i", "samples=many")][1]
    code, out, err = outcomes[3]
    assert code == 1 and out == ""
    assert (
        one_line(err)
        == "sluice submit: no Workflow 'sum-of-tow' in namespace ml (Workflows there: needs-code, sum-of-two)"
    )
    code, _, err = outcomes[4]
    assert code == 2 and "kubectl apply -f workflows/sum-of-two.yaml" in one_line(err)
    code, _, err = outcomes[5]
    assert code == 1 and one_line(err).startswith("sluice submit: cannot read Kubernetes credentials")
    code, _, err = outcomes[6]
    assert code == 1 and one_line(err) == (
        "sluice submit: $.inputs.src: codeset input 'src' has no default Codeset: --input src=CODESET"
    )
    assert api.server.objects_of(f"{SLUICE}/workflowruns") == []


async def test_submit_uses_the_namespace_of_the_current_context(
    api: Api, operator: RunningOperator, tmp_path: Path
) -> None:
    await api.apply(sum_of_two())
    config = yaml.safe_load(Path(api.server.kubeconfig).read_text())
    config["contexts"][0]["context"]["namespace"] = NAMESPACE
    kubeconfig = tmp_path / "in-ml"
    kubeconfig.write_text(yaml.safe_dump(config))
    code, out, err = await sluice(api, "submit", "sum-of-two", kubeconfig=str(kubeconfig))
    assert code == 0, err
    await pipelinerun_of(api, out.strip())  # the operator starts it like any run


# --- runs, logs, cancel --cluster ----------------------------------------------------------------------


async def test_runs_cluster_lists_filters_and_resolves_prefixes_and_latest(
    api: Api, operator: RunningOperator
) -> None:
    await api.apply(sum_of_two())
    await api.apply(sum_of_two("other"))
    for name, workflow in (("train-a1", "sum-of-two"), ("train-a2", "sum-of-two"), ("other-b1", "other")):
        await api.apply(workflow_run(name, workflow))
        await pipelinerun_of(api, name)
        await asyncio.sleep(1.05)  # creation times a second apart: the order is theirs
    await finish(api, "train-a1")
    await wait_phase(api, "train-a1", "Succeeded")

    runs = ("runs", "--cluster", "-n", NAMESPACE)
    (
        listed,
        filtered,
        limited,
        shown,
        prefixed,
        latest,
        ambiguous,
        unknown,
        empty,
        bad_phase,
        local_ns,
        none,
    ) = await asyncio.gather(
        sluice(api, *runs),
        sluice(api, *runs, "--workflow", "sum-of-two", "--phase", "pending", "--limit", "5", "--json"),
        sluice(api, *runs, "--limit", "1", "--json"),
        sluice(api, *runs, "train-a1"),
        sluice(api, *runs, "oth", "--json"),
        sluice(api, *runs, "latest", "--json"),
        sluice(api, *runs, "train"),
        sluice(api, *runs, "nope"),
        sluice(api, "runs", "--cluster", "--namespace", "empty", "latest"),
        sluice(api, *runs, "--phase", "done"),
        sluice(api, "runs", "-n", NAMESPACE),
        sluice(api, *runs, "--workflow", "nothing-like-it"),
    )
    code, out, err = listed
    assert code == 0, err
    rows = [line.split()[:3] for line in out.splitlines()]
    assert rows == [
        ["RUN", "WORKFLOW", "PHASE"],
        ["other-b1", "other", "Pending"],
        ["train-a2", "sum-of-two", "Pending"],
        ["train-a1", "sum-of-two", "Succeeded"],
    ]
    assert filtered[0] == 0 and [r["run"] for r in json.loads(filtered[1])] == ["train-a2"]
    assert [r["run"] for r in json.loads(limited[1])] == ["other-b1"]
    # RUN: the whole name, a unique prefix, or latest
    assert shown[1].splitlines()[0] == "run train-a1 (workflow sum-of-two): Succeeded"
    assert f"  output prediction-url = {URL}" in shown[1].splitlines()
    assert prefixed[0] == 0 and json.loads(prefixed[1])["run"] == "other-b1"
    assert json.loads(latest[1])["run"] == "other-b1"
    # bad RUNs and flags: one line each, exit 1 (input) or 2 (usage)
    assert ambiguous[0] == 1 and one_line(ambiguous[2]) == (
        "sluice runs --cluster: 'train' matches 2 WorkflowRuns: train-a2, train-a1; give more of the name"
    )
    assert unknown[0] == 1 and one_line(unknown[2]) == (
        "sluice runs --cluster: no WorkflowRun in namespace ml is 'nope' or starts with it"
    )
    assert empty[0] == 1 and one_line(empty[2]) == "sluice runs --cluster: no WorkflowRuns in namespace empty"
    assert bad_phase[0] == 2 and "--phase 'done': expected one of" in one_line(bad_phase[2])
    assert none[0] == 0 and none[1] == "no matching WorkflowRuns in namespace ml\n"
    assert local_ns[0] == 2 and one_line(local_ns[2]) == (
        "sluice runs: --namespace is for --cluster (local runs have no namespace)"
    )


async def test_runs_cluster_all_namespaces_lists_every_namespace_with_its_column(api: Api) -> None:
    for name, namespace in (("train-a1", NAMESPACE), ("train-b1", "team-b"), ("train-a2", NAMESPACE)):
        run = workflow_run(name)
        run["metadata"]["namespace"] = namespace
        await api.apply(run)
        await asyncio.sleep(1.05)  # creation times a second apart: the order is theirs

    listed, ignored_ns, as_json, none, by_name, local = await asyncio.gather(
        sluice(api, "runs", "--cluster", "-A"),
        sluice(api, "runs", "--cluster", "--all-namespaces", "-n", "team-b"),
        sluice(api, "runs", "--cluster", "-A", "--json"),
        sluice(api, "runs", "--cluster", "-A", "--workflow", "nothing-like-it"),
        sluice(api, "runs", "--cluster", "-A", "train-a1"),
        sluice(api, "runs", "-A"),
    )
    assert listed[0] == 0, listed[2]
    rows = [line.split()[:4] for line in listed[1].splitlines()]
    assert rows == [
        ["NAMESPACE", "RUN", "WORKFLOW", "PHASE"],
        [NAMESPACE, "train-a2", "sum-of-two", "Pending"],
        ["team-b", "train-b1", "sum-of-two", "Pending"],
        [NAMESPACE, "train-a1", "sum-of-two", "Pending"],
    ]
    assert ignored_ns[0] == 0 and ignored_ns[1] == listed[1]  # -A wins over -n, as with kubectl
    assert [(r["namespace"], r["run"]) for r in json.loads(as_json[1])] == [
        (NAMESPACE, "train-a2"),
        ("team-b", "train-b1"),
        (NAMESPACE, "train-a1"),
    ]
    assert none[0] == 0 and none[1] == "no matching WorkflowRuns in any namespace\n"
    assert by_name[0] == 2 and one_line(by_name[2]) == (
        "sluice runs --cluster: a RUN is looked up in one namespace: give --namespace, not -A"
    )
    assert local[0] == 2 and one_line(local[2]) == (
        "sluice runs: --all-namespaces is for --cluster (local runs have no namespace)"
    )


async def test_logs_cluster_reads_each_step_container_with_secrets_masked(
    api: Api, operator: RunningOperator
) -> None:
    await api.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds", "namespace": NAMESPACE},
            "data": {"token": "czNjcjN0LXRva2Vu"},
        }  # s3cr3t-token
    )
    await api.apply(sum_of_two())
    await api.apply(workflow_run("logged"))
    pipelinerun = await pipelinerun_of(api, "logged")
    prepare = await tekton.create_taskrun(api, pipelinerun, "prepare")
    train = await tekton.create_taskrun(api, pipelinerun, "train")
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}]
    prepare_pod = await tekton.create_pod(api, NAMESPACE, prepare, "prepare", ["prepare"])
    train_pod = await tekton.create_pod(api, NAMESPACE, train, "train", ["train", "outputs"], env)
    api.server.write_log(NAMESPACE, prepare_pod, "step-prepare", "wrote 500 rows\n")
    api.server.write_log(NAMESPACE, train_pod, "step-train", "epoch 1/2 loss=0.5\ntoken is s3cr3t-token\n")
    api.server.write_log(NAMESPACE, train_pod, "step-outputs", "checked model\n")
    api.server.write_log(NAMESPACE, train_pod, "prepare", "init container: not a step\n")
    children = [tekton.child("logged", t) for t in ("prepare", "train")]
    await tekton.set_pipelinerun(
        api, NAMESPACE, "logged", tekton.status("Unknown", "Running", childReferences=children)
    )

    async def steps_listed() -> bool:
        run = await api.get(path(SLUICE, "workflowruns", "logged")) or {}
        return len((run.get("status") or {}).get("steps") or []) == 2

    await eventually(steps_listed, what="steps mirrored")
    logs = ("logs", "--cluster", "-n", NAMESPACE)
    everything, one, missing = await asyncio.gather(
        sluice(api, *logs, "logg"),
        sluice(api, *logs, "logged", "train"),
        sluice(api, *logs, "logged", "evaluate"),
    )
    code, out, err = everything
    assert code == 0, err
    assert out.splitlines() == [
        "[prepare] wrote 500 rows",
        "[train] epoch 1/2 loss=0.5",
        "[train] token is ***",
        "[train] checked model",
    ]
    assert one[1].splitlines() == ["epoch 1/2 loss=0.5", "token is ***", "checked model"]
    code, _, err = missing
    assert code == 1 and one_line(err) == (
        "sluice logs --cluster: run logged has no step 'evaluate' (steps: prepare, train)"
    )
    # -f: new lines as they come (a line being written waits for its end), until the run ends
    follower = await start_sluice(api, "logs", "--cluster", "-n", NAMESPACE, "logged", "train", "-f")
    assert follower.stdout is not None
    seen = [(await asyncio.wait_for(follower.stdout.readline(), timeout=60)).decode() for _ in range(3)]
    assert seen == ["epoch 1/2 loss=0.5\n", "token is ***\n", "checked model\n"]
    api.server.write_log(NAMESPACE, train_pod, "step-train", "epoch 2/2 loss=0.2\nsaving")
    line = await asyncio.wait_for(follower.stdout.readline(), timeout=30)
    assert line == b"epoch 2/2 loss=0.2\n"
    await tekton.set_pipelinerun(
        api, NAMESPACE, "logged", tekton.status("True", "Succeeded", childReferences=children)
    )
    rest, err_bytes = await asyncio.wait_for(follower.communicate(), timeout=60)
    assert follower.returncode == 0, err_bytes.decode()
    assert rest.decode() == "saving\n"  # the unfinished line, once the run has ended

    # the API server's own answers for a pod's log, as the emulator serves them
    status, answer = await api.try_call("GET", path("v1", "pods", train_pod) + "/log")
    assert status == 400 and "a container name must be specified" in answer["message"]


async def test_cancel_cluster_stops_the_pipelinerun_and_the_run_ends_cancelled(
    api: Api, operator: RunningOperator
) -> None:
    await api.apply(sum_of_two())
    await api.apply(workflow_run("long"))
    await pipelinerun_of(api, "long")
    cancel = ("cancel", "--cluster", "-n", NAMESPACE, "long")
    code, out, err = await sluice(api, *cancel)
    assert code == 0, err
    assert out.strip() == (
        "run long: cancel requested (CancelledRunFinally: its running steps stop, then its finally tasks run)"
    )

    async def asked() -> bool:
        pipelinerun = await api.get(path(tekton.TEKTON, "pipelineruns", "long")) or {}
        return pipelinerun.get("spec", {}).get("status") == "CancelledRunFinally"

    await eventually(asked, what="the PipelineRun asked to stop")
    code, out, _ = await sluice(api, *cancel)
    assert code == 0 and "already being cancelled" in out
    await tekton.set_pipelinerun(api, NAMESPACE, "long", tekton.status("False", "CancelledRunFinally"))
    await wait_phase(api, "long", "Cancelled")
    code, _, err = await sluice(api, *cancel)
    assert code == 1 and one_line(err) == "sluice cancel --cluster: run long already finished: Cancelled"
    events = [
        e["reason"]
        for e in api.server.objects_of("v1/events", NAMESPACE)
        if e["involvedObject"]["name"] == "long"
    ]
    assert "CancelRequested" in events


async def test_a_run_cancelled_before_it_starts_never_gets_a_pipelinerun(
    api: Api, operator: RunningOperator
) -> None:
    await api.apply(workflow_run("early", "not-yet"))  # waits for its Workflow
    await wait_phase(api, "early", "Pending")
    code, _, err = await sluice(api, "cancel", "--cluster", "-n", NAMESPACE, "early", "--no-finally")
    assert code == 0, err
    status = await wait_phase(api, "early", "Cancelled")
    assert "cancelled before it started (spec.status: Cancelled)" in str(status["conditions"])
    await api.apply(sum_of_two("not-yet"))
    await asyncio.sleep(0.5)
    assert await api.get(path(tekton.TEKTON, "pipelineruns", "early")) is None
