"""`sluice run --containers`: steps in their images under their pod's restrictions, tested from inside.

A script step in the stages image tries what a hostile step would (write `/`, read the caller's
environment, reach the network, become root, keep capabilities) and reports through its results
what happened; then sum-of-two runs end to end in containers and its model server, a container
too, answers `sluice predict`. The operator image's restricted start is tests/packaging/test_images.py's.

Engine and images: the engine `--containers` would pick (scripts/container-engine.sh installs podman
when it can); missing images are built once with scripts/images.sh (CI builds them before the
suite). Skipped, with one reason, only where no engine can be installed or started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.executors.local.engines import Engine, EngineError, find_engine
from controller.executors.local.runner import LOCAL_STAGES_IMAGE
from testsupport.pipelineruns import inline_taskrun, one_task_run, restricted_step

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SECRET = "AKIA-caller-secret-never-in-a-step"


def _find() -> Engine:
    return find_engine("auto", REPO / ".tools" / "containers")


@pytest.fixture(scope="module")
def engine() -> Engine:
    try:
        return _find()
    except EngineError:
        setup = "source scripts/container-engine.sh && sluice_engine_setup"  # installs podman as root
        subprocess.run(["bash", "-c", setup], cwd=REPO, capture_output=True, timeout=900)
    try:
        return _find()
    except EngineError as exc:
        pytest.skip(f"no container engine can be installed or started here: {exc}")


@pytest.fixture(scope="module")
def stages_image(engine: Engine) -> str:
    ref = os.environ.get("SLUICE_STAGES_IMAGE") or LOCAL_STAGES_IMAGE
    if engine.image_id(ref) is None:
        env = {**engine.env, "SLUICE_CONTAINER_ENGINE": Path(engine.command).name}
        done = subprocess.run(
            ["bash", "scripts/images.sh"], cwd=REPO, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-3000:]
    assert engine.image_id(ref) is not None, f"scripts/images.sh did not make {ref}"
    return ref


def sluice(home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 600) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "controller.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=home,
        env={**os.environ, "SLUICE_HOME": str(home), **(env or {})},
        timeout=timeout,
    )


def run_contained(
    tmp_path: Path, engine: Engine, *documents: dict[str, Any], code: int = 0, timeout: float = 300
) -> Any:
    """`sluice run --json --containers=ENGINE` of `documents` (written to in.yaml): its JSON output,
    the command having exited `code`."""
    (tmp_path / "in.yaml").write_text(yaml.safe_dump_all(documents), encoding="utf-8")
    engine_name = Path(engine.command).name
    done = sluice(tmp_path, "run", "in.yaml", "--json", f"--containers={engine_name}", timeout=timeout)
    assert done.returncode == code, done.stdout + done.stderr
    return json.loads(done.stdout)


PROBE = """\
touch /probe 2>/dev/null && printf wrote > $(results.root-fs.path) || printf refused > $(results.root-fs.path)
printf '%s' "${AWS_SECRET_ACCESS_KEY:-unset}" > $(results.caller-env.path)
python - <<'EOF'
import os, socket
def result(name, text):
    open(f"/tekton/results/{name}", "w").write(text)
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3).close()
    result("network", "reached")
except OSError:
    result("network", "unreachable")
result("interfaces", ",".join(n for _, n in socket.if_nameindex() if n != "lo"))
try:
    os.setuid(0)
    result("root", "became root")
except PermissionError:
    result("root", "refused")
lines = open("/proc/self/status").read().splitlines()
status = dict(line.split(":\\t", 1) for line in lines if ":\\t" in line)
result("uid", str(os.getuid()))
result("capabilities", status["CapEff"].strip())
result("no-new-privs", status["NoNewPrivs"].strip())
result("seccomp", status["Seccomp"].strip())
try:
    open("/tmp/scratch", "w").write("x")
    result("tmp", "writable")
except OSError:
    result("tmp", "refused")
result("workspace", str(os.access("/workspace/data", os.W_OK)))
EOF
"""
RESULTS = [
    "root-fs",
    "caller-env",
    "network",
    "interfaces",
    "root",
    "uid",
    "capabilities",
    "no-new-privs",
    "seccomp",
    "tmp",
    "workspace",
]


def probe_run(image: str) -> dict[str, Any]:
    """A PipelineRun as `sluice compile` shapes one: restricted step, uid 65532, an emptyDir at /tmp."""
    step = restricted_step("probe", image, script=PROBE)
    return one_task_run("probe", "probe", [step], results=tuple(RESULTS), workspace="data")


def test_a_step_finds_it_cannot_escape_its_pod(tmp_path: Path, engine: Engine, stages_image: str) -> None:
    (tmp_path / "probe.yaml").write_text(yaml.safe_dump(probe_run(stages_image)), encoding="utf-8")
    done = sluice(
        tmp_path,
        "run",
        "probe.yaml",
        "--json",
        f"--containers={Path(engine.command).name}",
        env={"AWS_SECRET_ACCESS_KEY": SECRET},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(done.stdout)["steps"][0]["results"]
    assert results["root-fs"] == "refused"  # read-only root filesystem
    assert results["caller-env"] == "unset"  # nothing of the caller's environment
    assert results["network"] == "unreachable" and results["interfaces"] == ""  # --network none
    assert results["root"] == "refused" and results["uid"] == "65532"  # the pod's uid, no way back
    assert results["capabilities"] == "0000000000000000"  # all capabilities dropped
    assert results["no-new-privs"] == "1"  # allowPrivilegeEscalation: false
    assert results["seccomp"] == "2"  # a seccomp filter (RuntimeDefault)
    assert results["tmp"] == "writable"  # the task's emptyDir at /tmp
    assert results["workspace"] == "True"  # its workspace, writable by the pod's user
    assert SECRET not in done.stdout + done.stderr
    assert "steps run on this machine" not in done.stderr  # the host-mode notice is for host runs
    leftovers = engine.run("ps", "--all", "--format", "{{.Names}}").stdout.split()
    assert not [name for name in leftovers if name.startswith("sluice-probe-")]


def test_sum_of_two_in_containers_serves_predictions(
    tmp_path: Path, engine: Engine, stages_image: str
) -> None:
    done = sluice(
        tmp_path,
        "run",
        str(REPO / "workflows" / "sum-of-two.yaml"),
        "--json",
        f"--containers={Path(engine.command).name}",
        env={"SLUICE_STAGES_IMAGE": stages_image},
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = json.loads(done.stdout)
    phases = {s["name"]: s["phase"] for s in run["steps"]}
    assert phases["prepare"] == phases["train"] == phases["evaluate"] == phases["deploy"] == "Succeeded"
    # results are the paths Tekton shows: the pod's, not this machine's
    assert run["steps"][0]["results"]["dataset"] == "/workspace/artifacts/prepare/dataset"
    try:
        listed = json.loads(sluice(tmp_path, "endpoints", "--json").stdout)
        (endpoint,) = [e for e in listed if e["name"] == "sum-of-two"]
        assert endpoint["alive"] and endpoint["container"] == "sluice-endpoint-sum-of-two"
        info = json.loads(engine.run("inspect", endpoint["container"]).stdout)[0]
        assert info["HostConfig"]["ReadonlyRootfs"] is True
        assert info["Config"]["User"].split(":")[0] not in ("", "0", "root")
        assert info["Config"]["Image"].endswith(stages_image.split("/")[-1])
        predicted = sluice(tmp_path, "predict", "sum-of-two", "300", "400")
        assert predicted.returncode == 0, predicted.stderr
        assert abs(float(predicted.stdout.split()[-1]) - 700) < 25, predicted.stdout
    finally:
        stopped = sluice(tmp_path, "endpoints", "stop", "sum-of-two")
    assert stopped.returncode == 0, stopped.stderr
    assert engine.run("inspect", "sluice-endpoint-sum-of-two").returncode != 0  # nothing left behind


def test_a_timed_out_step_leaves_no_container(tmp_path: Path, engine: Engine, stages_image: str) -> None:
    step = {"name": "sleep", "image": stages_image, "command": ["sleep", "60"], "timeout": "2s"}
    obj = {
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"name": "sleepy"},
        "spec": {"pipelineSpec": {"tasks": [{"name": "nap", "taskSpec": {"steps": [step]}}]}},
    }
    (task,) = run_contained(tmp_path, engine, obj, code=1, timeout=120)["steps"]
    assert task["phase"] == "Failed" and "timed out" in task["message"]
    names = engine.run("ps", "--all", "--format", "{{.Names}}").stdout.split()
    assert not [name for name in names if name.startswith("sluice-sleepy-")]  # removed by name


def test_a_tekton_taskrun_as_its_images_user_writes_results_and_workspaces(
    tmp_path: Path, engine: Engine, stages_image: str
) -> None:
    """A Tekton example's step names no user: it runs as its image's own (non-root here), which can
    write its results and an emptyDir workspace, as a pod's emptyDir volumes let it."""
    script = "echo x > $(workspaces.scratch.path)/f\nid -u | tr -d '\\n' > $(results.who.path)"
    step = {"name": "write", "image": stages_image, "script": script}
    taskrun = inline_taskrun(
        "as-image-user", [step], results=("who",), workspaces={"scratch": {"emptyDir": {}}}
    )
    data = run_contained(tmp_path, engine, taskrun)
    assert data["kind"] == "TaskRun" and data["outputs"]["who"] != "0"


def test_a_stepaction_without_command_runs_its_images_entrypoint_with_args(
    tmp_path: Path, engine: Engine, stages_image: str
) -> None:
    """Kubernetes' rule: a step with args and no command runs its image's entrypoint with them (the
    stages image has none, so the args are the command). Host processes cannot know an image's
    entrypoint: the same input is refused there, saying to use --containers."""
    action = {
        "apiVersion": "tekton.dev/v1beta1",
        "kind": "StepAction",
        "metadata": {"name": "say"},
        "spec": {
            "params": [{"name": "word"}],
            "image": stages_image,
            "args": ["sh", "-c", "printf '%s' \"$0\" > /tekton/results/said", "$(params.word)"],
        },
    }
    step = {"name": "say", "ref": {"name": "say"}, "params": [{"name": "word", "value": "hi"}]}
    taskrun = inline_taskrun("entrypoint", [step], results=("said",))
    assert run_contained(tmp_path, engine, action, taskrun)["outputs"] == {"said": "hi"}
    refused = sluice(tmp_path, "run", "in.yaml")
    assert refused.returncode == 1
    assert (
        "no command or script; an image's entrypoint runs only in its image: use --containers"
        in refused.stderr
    )


def test_secret_and_configmap_workspaces_of_tekton_input_are_readable_by_the_images_user(
    tmp_path: Path, engine: Engine, stages_image: str
) -> None:
    """Kubernetes gives secret and configMap volume files mode 0644 by default: a step running as
    its image's (non-root) user reads them; the run's secrets folder keeps them from other users."""
    documents = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "stringData": {"pw": "hunter2026"},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings"},
            "data": {"colour": "blue"},
        },
    ]
    script = (
        'test "$(cat $(workspaces.s.path)/pw)" = hunter2026\n'
        "cat $(workspaces.c.path)/colour > $(results.colour.path)"
    )
    reads = inline_taskrun(
        "reads",
        [{"name": "read", "image": stages_image, "script": script}],
        results=("colour",),
        workspaces={"s": {"secret": {"secretName": "creds"}}, "c": {"configMap": {"name": "settings"}}},
    )
    assert run_contained(tmp_path, engine, *documents, reads)["outputs"] == {"colour": "blue"}
