"""`sluice run FILE|DIR` on Tekton input as `kubectl apply -f` takes it (issue 15 part A): several
documents, references by name, TaskRuns, several runs, ConfigMaps, Secrets and claims.

Each test writes its own small documents and runs `sluice run` in process (typer's runner: real
steps, real files); the outcome is Tekton's documented one, refusals and failures included.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from controller.cli.main import app

TASK_ADD = """
apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: add
spec:
  params:
    - name: a
    - name: b
      default: "2"
  results:
    - name: sum
  steps:
    - name: add
      image: alpine
      script: |
        printf '%s' "$(( $(params.a) + $(params.b) ))" > $(results.sum.path)
"""
PIPELINE = """
apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: adder
spec:
  params:
    - name: first
  results:
    - name: total
      value: $(tasks.second.results.sum)
    - name: pipeline-name
      value: $(tasks.name.results.it)
  tasks:
    - name: first
      taskRef:
        name: add
      params:
        - name: a
          value: $(params.first)
    - name: second
      taskRef:
        name: add
      params:
        - name: a
          value: $(tasks.first.results.sum)
        - name: b
          value: "10"
    - name: name
      taskSpec:
        results:
          - name: it
        steps:
          - name: it
            image: alpine
            script: printf '%s' "$(context.pipeline.name)" > $(results.it.path)
"""
PIPELINERUN = """
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata:
  name: add-run
spec:
  pipelineRef:
    name: adder
  params:
    - name: first
      value: "5"
"""


def write(folder: Path, name: str, *documents: str) -> Path:
    path = folder / name
    path.write_text("\n---\n".join(textwrap.dedent(d).strip() for d in documents) + "\n")
    return path


def taskrun(metadata: str, spec: str) -> str:
    """A TaskRun document: `metadata` its one metadata line (`name: x` or `generateName: x-`), `spec`
    the YAML under its spec (at any indentation). A document ends with its spec, so a test can append
    a spec field (`TASKRUN + "  retries: 1\n"`)."""
    body = textwrap.indent(textwrap.dedent(spec).strip("\n"), "  ")
    return f"apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata:\n  {metadata}\nspec:\n{body}\n"


def sluice(home: Path, *args: str) -> Any:
    result = CliRunner().invoke(app, list(args), env={"SLUICE_HOME": str(home), "SLUICE_MLFLOW": "off"})
    assert "Traceback" not in result.output
    return result


def refused(tmp_path: Path, name: str, *documents: str) -> tuple[Any, Path]:
    """`sluice run` of the documents written to the file `name`, which must fail (exit 1): its
    result and the file."""
    path = write(tmp_path, name, *documents)
    result = sluice(tmp_path / "home", "run", str(path))
    assert result.exit_code == 1, result.output
    return result, path


def refused_before_any_run(tmp_path: Path, name: str, message: str, *documents: str) -> None:
    """`refused`, with `message` at a position in the file (`FILE:LINE:COL: ...`), and not one step
    of any run started."""
    result, path = refused(tmp_path, name, *documents)
    assert message in result.stderr
    assert result.stderr.startswith(f"{path}:")
    assert nothing_ran(tmp_path / "home")


def run_json(home: Path, *args: str) -> Any:
    result = sluice(home, "run", "--json", *args)
    return result, (json.loads(result.stdout) if result.stdout.strip().startswith(("{", "[")) else None)


def nothing_ran(home: Path) -> bool:
    return not (home / "runs").exists() or not any((home / "runs").iterdir())


# ---- 1. documents in: one file of several, a folder, errors with positions -------------------------


def test_a_file_of_task_pipeline_and_pipelinerun_runs_with_references_resolved(tmp_path: Path) -> None:
    path = write(tmp_path, "all.yaml", TASK_ADD, PIPELINE, PIPELINERUN)
    result, data = run_json(tmp_path / "home", str(path))
    assert result.exit_code == 0, result.output
    assert data["kind"] == "PipelineRun" and data["phase"] == "Succeeded"
    assert data["run"].startswith("add-run-")
    # 5 + 2 = 7 (the Task's default b), then 7 + 10
    assert data["outputs"]["total"] == "17"
    # $(context.pipeline.name) of a referenced Pipeline is the Pipeline's name
    assert data["outputs"]["pipeline-name"] == "adder"


def test_a_folder_is_read_file_by_file_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "input"
    folder.mkdir()
    write(folder, "10-task.yaml", TASK_ADD)
    write(folder, "20-pipeline.yml", PIPELINE)
    write(folder, "30-run.yaml", PIPELINERUN)
    (folder / "notes.txt").write_text("not YAML: not read")
    result, data = run_json(tmp_path / "home", str(folder))
    assert result.exit_code == 0, result.output
    assert data["outputs"]["total"] == "17"


def test_a_yaml_error_in_a_later_document_names_its_file_line_and_column(tmp_path: Path) -> None:
    result, path = refused(
        tmp_path, "bad.yaml", TASK_ADD, "apiVersion: tekton.dev/v1\nkind: Pipeline\nkind: Task\n"
    )
    # the duplicate key is the last line of the second document, counted in the whole file
    line = len(path.read_text().splitlines())
    assert f"{path}:{line}:1: $: duplicate key 'kind' (first defined on line {line - 1})" in result.stderr


def test_aliases_are_refused_in_tekton_input_as_in_workflows(tmp_path: Path) -> None:
    result, _ = refused(tmp_path, "alias.yaml", TASK_ADD, PIPELINE, PIPELINERUN + "  x: &a [1]\n  y: *a\n")
    assert "anchors (&name) are not allowed" in result.stderr
    assert nothing_ran(tmp_path / "home")


def test_a_kind_with_no_local_meaning_is_refused_with_why(tmp_path: Path) -> None:
    binding = """
    apiVersion: rbac.authorization.k8s.io/v1
    kind: ClusterRoleBinding
    metadata:
      name: admin
    """
    result, path = refused(tmp_path, "rbac.yaml", binding, TASK_ADD, PIPELINE, PIPELINERUN)
    assert f"{path}:2:1: $.kind: ClusterRoleBinding cannot run locally: RBAC grants rights" in result.stderr


def test_an_input_without_runs_says_what_it_holds(tmp_path: Path) -> None:
    result, _ = refused(tmp_path, "defs.yaml", TASK_ADD, PIPELINE)
    assert "no PipelineRun or TaskRun to run (the input holds Pipeline, Task)" in result.stderr


# ---- 2. references: what a resolver would fetch, or a name not found, is refused before running ---


def _pipeline_with_ref(ref: str) -> str:
    return f"""
    apiVersion: tekton.dev/v1
    kind: PipelineRun
    metadata:
      name: refs
    spec:
      pipelineSpec:
        tasks:
          - name: first
            taskSpec:
              steps:
                - name: touch
                  image: alpine
                  script: touch "$HOME/should-not-exist"
          - name: remote
            taskRef:
              {ref}
    """


@pytest.mark.parametrize(
    ("ref", "path", "why"),
    [
        ("name: nope", "taskRef.name", "no Task named 'nope': the input holds add"),
        (
            "resolver: git",
            "taskRef.resolver",
            "the git resolver clones a Git repository: it needs a cluster or network",
        ),
        ("{resolver: hub, params: []}", "taskRef.resolver", "the hub resolver downloads"),
        ("{name: x, bundle: gcr.io/x}", "taskRef.bundle", "a Tekton bundle is pulled from a registry"),
        ("{name: add, kind: ClusterTask}", "taskRef.kind", "ClusterTask was removed in Tekton v1"),
        ("{apiVersion: example.dev/v1, kind: Wait}", "taskRef.apiVersion", "custom task example.dev/v1/Wait"),
    ],
)
def test_a_reference_the_input_cannot_satisfy_is_refused_before_any_step(
    tmp_path: Path, ref: str, path: str, why: str
) -> None:
    message = f"$.spec.pipelineSpec.tasks[1].{path}: {why}"
    refused_before_any_run(tmp_path, "refs.yaml", message, TASK_ADD, _pipeline_with_ref(ref))


def test_a_pipelineref_to_a_missing_pipeline_lists_the_pipelines(tmp_path: Path) -> None:
    result, path = refused(tmp_path, "run.yaml", PIPELINERUN)
    assert f"{path}:7:5: $.spec.pipelineRef.name: no Pipeline named 'adder': the input holds no Pipeline" in (
        result.stderr
    )


def test_an_unsupported_field_of_a_referenced_task_is_shown_in_the_task_document(tmp_path: Path) -> None:
    task = TASK_ADD.replace(
        "    - name: add\n      image", "    - name: add\n      stdinOnce: true\n      image"
    )
    result, path = refused(tmp_path, "all.yaml", task, PIPELINE, PIPELINERUN)
    line = path.read_text().splitlines().index("      stdinOnce: true") + 1
    assert f"{path}:{line}:7: $.spec.steps[0].stdinOnce: Tekton field not supported" in result.stderr


# ---- 3. a TaskRun runs on its own, reported as a TaskRun -----------------------------------------

TASKRUN = taskrun(
    "name: add-once",
    """
    taskRef:
      name: add
    params:
      - name: a
        value: "40"
    """,
)


def test_a_taskrun_runs_its_task_and_its_results_are_its_outputs(tmp_path: Path) -> None:
    path = write(tmp_path, "tr.yaml", TASK_ADD, TASKRUN)
    result, data = run_json(tmp_path / "home", str(path))
    assert result.exit_code == 0, result.output
    assert data["kind"] == "TaskRun" and data["phase"] == "Succeeded"
    assert data["outputs"] == {"sum": "42"}
    assert [s["name"] for s in data["steps"]] == ["add"]


def test_a_taskrun_sees_its_own_name_and_workspace(tmp_path: Path) -> None:
    named = taskrun(
        "generateName: named-",
        """
        workspaces:
          - name: scratch
            emptyDir: {}
        taskSpec:
          workspaces:
            - name: scratch
          results:
            - name: name
          steps:
            - name: write
              image: alpine
              script: |
                echo hi > $(workspaces.scratch.path)/f
                printf '%s' "$(context.taskRun.name)" > $(results.name.path)
        """,
    )
    result, data = run_json(tmp_path / "home", str(write(tmp_path, "tr.yaml", named)))
    assert result.exit_code == 0, result.output
    assert data["run"].startswith("named-") and len(data["run"]) == len("named-") + 5
    assert data["outputs"]["name"] == data["run"]


def test_a_taskrun_retries_and_its_timeout_fails_it(tmp_path: Path) -> None:
    flaky = taskrun(
        "name: flaky",
        """
        retries: 1
        taskSpec:
          steps:
            - name: second-time-lucky
              image: alpine
              script: test "$(context.task.retry-count)" = 1
        """,
    )
    slow = taskrun(
        "name: slow",
        """
        timeout: 1s
        taskSpec:
          steps:
            - name: sleep
              image: alpine
              script: sleep 20
        """,
    )
    result, data = run_json(tmp_path / "home", str(write(tmp_path, "tr.yaml", flaky, slow)))
    assert result.exit_code == 1
    assert [(r["run"].split("-")[0], r["phase"]) for r in data] == [
        ("flaky", "Succeeded"),
        ("slow", "Failed"),
    ]
    # Tekton's reason and message for a TaskRun out of time, naming the TaskRun itself
    assert data[1]["steps"][0]["reason"] == "TaskRunTimeout"
    assert data[1]["steps"][0]["message"] == f"TaskRun {data[1]['run']} failed to finish within 1s"


def test_a_cancelled_taskrun_is_refused(tmp_path: Path) -> None:
    taskrun = TASKRUN + "  status: TaskRunCancelled\n"
    result, _ = refused(tmp_path, "tr.yaml", TASK_ADD, taskrun)
    assert "$.spec.status: a TaskRun created cancelled does not run" in result.stderr


# ---- 4. several runs: each runs in order; --run picks one ----------------------------------------

FAILING = """
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata:
  generateName: broken-
spec:
  pipelineSpec:
    tasks:
      - name: fail
        taskSpec:
          steps:
            - name: fail
              image: alpine
              script: exit 3
"""


def test_every_run_of_the_input_runs_and_one_failure_fails_the_command(tmp_path: Path) -> None:
    path = write(tmp_path, "runs.yaml", FAILING, TASK_ADD, PIPELINE, PIPELINERUN)
    result, data = run_json(tmp_path / "home", str(path))
    assert result.exit_code == 1
    assert [r["phase"] for r in data] == ["Failed", "Succeeded"]
    assert data[0]["run"].startswith("broken-")


def test_run_picks_one_run_by_name_or_generate_name(tmp_path: Path) -> None:
    path = write(tmp_path, "runs.yaml", FAILING, TASK_ADD, PIPELINE, PIPELINERUN)
    result, data = run_json(tmp_path / "home", str(path), "--run", "add-run")
    assert result.exit_code == 0 and data["outputs"]["total"] == "17"
    result, data = run_json(tmp_path / "home", str(path), "--run", "broken-")
    assert result.exit_code == 1 and data["phase"] == "Failed"
    result = sluice(tmp_path / "home", "run", str(path), "--run", "other")
    assert result.exit_code == 1
    assert "--run other: no such run; the input's runs are broken- (PipelineRun), add-run (PipelineRun)" in (
        result.stderr
    )


def test_a_refused_run_stops_the_input_before_any_run_starts(tmp_path: Path) -> None:
    bad = PIPELINERUN.replace("add-run", "bad-run").replace("name: adder", "name: missing")
    result = sluice(
        tmp_path / "home", "run", str(write(tmp_path, "r.yaml", TASK_ADD, PIPELINE, PIPELINERUN, bad))
    )
    assert result.exit_code == 1
    assert "no Pipeline named 'missing'" in result.stderr
    assert nothing_ran(tmp_path / "home")


# ---- 5. ConfigMaps, Secrets and claims of the input ----------------------------------------------

CONFIG = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  greeting: hello
  colour: blue
"""
SECRET = """
apiVersion: v1
kind: Secret
metadata:
  name: creds
type: Opaque
data:
  password: aHVudGVyMjAyNg==
stringData:
  user: alice
"""


def _reader_run(workspaces: str, script: str, env: str = "") -> str:
    return f"""
    apiVersion: tekton.dev/v1
    kind: PipelineRun
    metadata:
      name: reader
    spec:
      workspaces:
{textwrap.indent(textwrap.dedent(workspaces).strip(), " " * 8)}
      pipelineSpec:
        workspaces:
          - name: data
        tasks:
          - name: read
            workspaces:
              - name: data
            taskSpec:
              workspaces:
                - name: data
              results:
                - name: out
              steps:
                - name: read
                  image: alpine
{textwrap.indent(textwrap.dedent(env).strip(), " " * 18)}
                  script: |
{textwrap.indent(textwrap.dedent(script).strip(), " " * 20)}
    """


def test_a_configmap_workspace_holds_its_items_at_their_paths_and_modes(tmp_path: Path) -> None:
    run = _reader_run(
        """
        - name: data
          configMap:
            name: settings
            defaultMode: 0600
            items:
              - key: greeting
                path: sub/hello.txt
        """,
        """
        D=$(workspaces.data.path)
        F=$D/sub/hello.txt
        printf '%s %s %s' "$(cat $F)" "$(stat -c %a $F)" "$(ls $D | tr '\\n' ' ')" > $(results.out.path)
        """,
    )
    result, data = run_json(tmp_path / "home", str(write(tmp_path, "cm.yaml", CONFIG, run)))
    assert result.exit_code == 0, result.output
    # only the listed key, at its path, with the default mode; the other key is not there
    assert data["steps"][0]["results"]["out"] == "hello 600 sub "


def test_secret_and_projected_workspaces_and_key_refs_feed_steps_redacted(tmp_path: Path) -> None:
    run = _reader_run(
        """
        - name: data
          projected:
            sources:
              - configMap:
                  name: settings
              - secret:
                  name: creds
                  items:
                    - key: password
                      path: pw
        """,
        """
        D=$(workspaces.data.path)
        echo "password is $(cat $D/pw), user $USER_NAME, colour $COLOUR"
        test "$(cat $D/pw)" = hunter2026 && test "$(cat $D/greeting)" = hello
        printf '%s' "$COLOUR" > $(results.out.path)
        """,
        """
        env:
          - name: USER_NAME
            valueFrom:
              secretKeyRef: {name: creds, key: user}
          - name: COLOUR
            valueFrom:
              configMapKeyRef: {name: settings, key: colour}
        """,
    )
    home = tmp_path / "home"
    result, data = run_json(home, str(write(tmp_path, "s.yaml", CONFIG, SECRET, run)))
    assert result.exit_code == 0, result.output
    assert data["steps"][0]["results"]["out"] == "blue"
    log = next((home / "runs").iterdir()) / "logs" / "read.log"
    text = log.read_text()
    assert "password is ***, user ***, colour blue" in text
    assert "hunter2026" not in text and "alice" not in text


def test_a_missing_configmap_is_refused_with_its_path(tmp_path: Path) -> None:
    run = _reader_run(
        """
        - name: data
          emptyDir: {}
        """,
        "echo $COLOUR",
        """
        env:
          - name: COLOUR
            valueFrom:
              configMapKeyRef: {name: nowhere, key: colour}
        """,
    )
    message = (
        "$.spec.pipelineSpec.tasks[0].taskSpec.steps[0].env[0].valueFrom.configMapKeyRef.name: "
        "no ConfigMap 'nowhere' in the input (ConfigMaps: settings)"
    )
    refused_before_any_run(tmp_path, "cm.yaml", message, CONFIG, run)


def test_a_missing_secret_for_a_workspace_is_refused_before_any_step(tmp_path: Path) -> None:
    run = _reader_run(
        """
        - name: data
          secret:
            secretName: absent
        """,
        "touch $HOME/should-not-run",
    )
    result = sluice(tmp_path / "home", "run", "--json", str(write(tmp_path, "s.yaml", run)))
    assert result.exit_code == 1 and not result.stdout.strip()
    assert "$.spec.workspaces[0].secret: secret 'absent' is neither in the input nor in local secrets" in (
        result.stderr
    )
    assert nothing_ran(tmp_path / "home")


def test_a_missing_secret_key_for_env_is_refused_before_the_first_run_starts(tmp_path: Path) -> None:
    first = _reader_run("- {name: data, emptyDir: {}}", "touch $HOME/should-not-run")
    second = _reader_run(
        "- {name: data, emptyDir: {}}",
        "echo $TOKEN",
        "env: [{name: TOKEN, valueFrom: {secretKeyRef: {name: creds, key: token}}}]",
    ).replace("name: reader", "name: second")
    message = (
        "$.spec.pipelineSpec.tasks[0].taskSpec.steps[0].env[0].valueFrom.secretKeyRef: secret 'creds' key "
        "'token' not found"
    )
    refused_before_any_run(tmp_path, "s.yaml", message, SECRET, first, second)


def test_a_claim_of_the_input_is_one_folder_shared_by_its_runs(tmp_path: Path) -> None:
    claim = """
    apiVersion: v1
    kind: PersistentVolumeClaim
    metadata:
      name: shared
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Mi}}
    """

    def step(name: str, script: str) -> str:
        return taskrun(
            f"name: {name}",
            f"""
            workspaces:
              - name: store
                persistentVolumeClaim:
                  claimName: shared
            taskSpec:
              workspaces:
                - name: store
              results:
                - name: seen
              steps:
                - name: s
                  image: alpine
                  script: {script}
            """,
        )

    writer = step("writer", "echo -n kept > $(workspaces.store.path)/file")
    reader = step("reader", "cat $(workspaces.store.path)/file > $(results.seen.path)")
    result, data = run_json(tmp_path / "home", str(write(tmp_path, "pvc.yaml", claim, writer, reader)))
    assert result.exit_code == 0, result.output
    assert data[1]["outputs"] == {"seen": "kept"}


# ---- StepActions: a step `ref` inlined with its params -------------------------------------------

STEP_ACTION = """
apiVersion: tekton.dev/v1beta1
kind: StepAction
metadata:
  name: echo-all
spec:
  params:
    - name: words
      type: array
      default: [x]
    - name: who
      default: world
    - name: greeting
      default: "hello $(params.who)"
    - name: obj
      type: object
      properties: {k: {type: string}, j: {type: string}}
      default: {k: kd, j: jd}
  image: alpine
  command: [sh, -c, 'printf "%s|" "$@" > "$0"', $(results.out.path)]
  args:
    ["$(params.words[*])", "$(params.greeting)", "$(params.obj.k)", "$(params.obj.j)", "$(params.words[0])"]
"""


def ref_run(**step: Any) -> str:
    """A TaskRun `act` of one step `act` that refers to the StepAction echo-all (`step`: its other
    fields), declaring the result `out` that echo-all writes."""
    task_spec = {
        "results": [{"name": "out"}],
        "steps": [{"name": "act", "ref": {"name": "echo-all"}, **step}],
    }
    run = {"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": {"name": "act"}}
    return yaml.safe_dump({**run, "spec": {"taskSpec": task_spec}}, sort_keys=False)


def test_a_step_ref_runs_its_stepaction_with_params_and_defaults(tmp_path: Path) -> None:
    run = ref_run(params=[{"name": "words", "value": ["a", "b c"]}, {"name": "obj", "value": {"j": "given"}}])
    result, data = run_json(tmp_path / "home", str(write(tmp_path, "sa.yaml", STEP_ACTION, run)))
    assert result.exit_code == 0, result.output
    # [*] expands into separate arguments; a default uses another param; an object's keys not
    # given keep the default's (Tekton merges them)
    assert data["outputs"]["out"] == "a|b c|hello world|kd|given|a|"


def test_a_step_ref_with_its_own_image_or_script_is_refused(tmp_path: Path) -> None:
    run = ref_run(script="echo no")
    result, _ = refused(tmp_path, "sa.yaml", STEP_ACTION, run)
    assert "$.spec.taskSpec.steps[0].script: script cannot be used with a StepAction ref" in result.stderr


# ---- a Sluice workflow file is read as before ----------------------------------------------------


def test_a_workflow_file_still_runs_as_a_workflow_and_takes_no_run_option(tmp_path: Path) -> None:
    workflow = """
    apiVersion: sluice.dev/v1alpha1
    kind: Workflow
    metadata:
      name: hello
    spec:
      steps:
        - name: say
          image: python:3.11
          script: |
            #!/bin/sh
            printf hi > "$(results.said.path)"
          outputs: [{name: said, type: string}]
      outputs:
        - {name: said, value: "{{ steps.say.outputs.said }}"}
    """
    path = write(tmp_path, "wf.yaml", workflow)
    result, data = run_json(tmp_path / "home", str(path))
    assert result.exit_code == 0, result.output
    assert data["run"].startswith("hello-") and data["outputs"] == {"said": "hi"}
    result = sluice(tmp_path / "home", "run", str(path), "--run", "hello")
    assert result.exit_code == 1
    assert "--run picks a run of Tekton input; a workflow file has one" in result.stderr


def test_a_taskrun_field_error_is_shown_in_the_taskrun_document(tmp_path: Path) -> None:
    taskrun = TASKRUN + "  retries: many\n"
    result, path = refused(tmp_path, "tr.yaml", TASK_ADD, taskrun)
    line = len(path.read_text().splitlines())
    assert result.stderr.startswith(f"{path}:{line}:3: $.spec.retries")


# ---- malformed input: one line naming the path, never a traceback --------------------------------

_STEP = "{name: s, image: a, script: 'true'}"


@pytest.mark.parametrize(
    ("documents", "message"),
    [
        (
            [
                STEP_ACTION,
                "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: r}\nspec:\n"
                "  taskSpec: {steps: [{name: s, ref: {name: echo-all}, params: oops}]}",
            ],
            "$.spec.taskSpec.steps[0].params: expected a list",
        ),
        (
            [
                "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: r}\nspec:\n"
                f"  workspaces: oops\n  taskSpec: {{steps: [{_STEP}]}}"
            ],
            "$.spec.workspaces: expected a list of bindings, each with a name",
        ),
        (
            [
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: [x]",
                "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: r}\nspec:\n"
                f"  taskSpec: {{steps: [{_STEP}]}}",
            ],
            "$.data: expected a mapping of keys to values",
        ),
        (
            [
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: v}",
                "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: r}\nspec:\n"
                "  workspaces: [{name: w, configMap: {name: c, items: [{key: k, path: ../x}]}}]\n"
                f"  taskSpec: {{workspaces: [{{name: w}}], steps: [{_STEP}]}}",
            ],
            "$.spec.workspaces[0].configMap.items[0].path: a relative path without '..' is needed",
        ),
    ],
)
def test_malformed_documents_are_refused_in_one_line(
    tmp_path: Path, documents: list[str], message: str
) -> None:
    result, path = refused(tmp_path, "bad.yaml", *documents)
    assert message in result.stderr and str(path) in result.stderr
    assert "internal error" not in result.stderr


def test_taskrun_step_and_sidecar_specs_must_name_a_step_or_sidecar_of_the_task(tmp_path: Path) -> None:
    ok = TASKRUN + "  stepSpecs: [{name: add, computeResources: {limits: {memory: 64Mi}}}]\n"
    result, data = run_json(tmp_path / "home", str(write(tmp_path, "ok.yaml", TASK_ADD, ok)))
    assert result.exit_code == 0 and data["outputs"] == {"sum": "42"}
    bad = TASKRUN + "  sidecarSpecs: [{name: db, computeResources: {}}]\n"
    result, _ = refused(tmp_path, "bad.yaml", TASK_ADD, bad)
    assert "$.spec.sidecarSpecs[0].name: the task has no sidecar 'db'" in result.stderr


ENV_FROM = taskrun(
    "name: env-from",
    """
        taskSpec:
          results:
            - name: out
          steps:
            - name: show
              image: alpine
              envFrom:
                - configMapRef: {name: settings}
                  prefix: CM_
                - secretRef: {name: creds}
              env:
                - {name: CM_colour, value: red}
              script: |
                echo "password $password"
                test "$user" = alice
                printf '%s %s' "$CM_greeting" "$CM_colour" > $(results.out.path)
        """,
)


def test_env_from_gives_every_key_prefixed_the_step_env_winning_and_secrets_redacted(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result, data = run_json(home, str(write(tmp_path, "ef.yaml", CONFIG, SECRET, ENV_FROM)))
    assert result.exit_code == 0, result.output
    assert data["outputs"] == {"out": "hello red"}
    log = next((home / "runs").iterdir()) / "logs"
    text = "".join(p.read_text() for p in log.iterdir())
    assert "password ***" in text and "hunter2026" not in text


def test_env_from_a_missing_configmap_is_refused_before_the_run(tmp_path: Path) -> None:
    run = ENV_FROM.replace("configMapRef: {name: settings}", "configMapRef: {name: elsewhere}")
    message = "$.spec.taskSpec.steps[0].envFrom[0].configMapRef.name: no ConfigMap 'elsewhere' in the input"
    refused_before_any_run(tmp_path, "ef.yaml", message, CONFIG, SECRET, run)


def test_a_taskrun_workspace_propagates_into_its_embedded_task_but_not_a_referenced_one(
    tmp_path: Path,
) -> None:
    embedded = taskrun(
        "name: propagated",
        """
        workspaces:
          - {name: undeclared, emptyDir: {}}
        taskSpec:
          results: [{name: out}]
          steps:
            - name: use
              image: alpine
              script: |
                echo x > $(workspaces.undeclared.path)/f && printf ok > $(results.out.path)
        """,
    )
    result, data = run_json(tmp_path / "home", str(write(tmp_path, "e.yaml", embedded)))
    assert result.exit_code == 0, result.output
    assert data["outputs"] == {"out": "ok"}
    referenced = TASKRUN + "  workspaces:\n    - {name: undeclared, emptyDir: {}}\n"
    result, _ = refused(tmp_path, "r.yaml", TASK_ADD, referenced)
    assert "the task declares no workspace 'undeclared'" in result.stderr


def test_a_workflow_among_tekton_documents_is_refused_saying_how_to_run_it(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    write(folder, "a.yaml", TASK_ADD, TASKRUN)
    write(folder, "b.yaml", "apiVersion: sluice.dev/v1alpha1\nkind: Workflow\nmetadata: {name: w}\n")
    result = sluice(tmp_path / "home", "run", str(folder))
    assert result.exit_code == 1
    assert (
        f"{folder / 'b.yaml'}:2:1: $.kind: 'Workflow' ('sluice.dev/v1alpha1') cannot run locally: a Sluice"
        in (result.stderr)
    )


def test_a_fuseml_workflow_in_a_folder_of_tekton_documents_is_refused_saying_how_to_run_it(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    write(folder, "a.yaml", "name: fuseml\nsteps:\n  - {name: s, image: busybox}\n")
    write(folder, "b.yaml", TASK_ADD, TASKRUN)
    result = sluice(tmp_path / "home", "run", str(folder))
    assert result.exit_code == 1
    assert f"{folder / 'a.yaml'}:1:1: $: a FuseML workflow runs on its own (sluice run FILE)" in result.stderr
    assert nothing_ran(tmp_path / "home")


def test_a_list_as_kubectl_get_prints_it_is_read_item_by_item(tmp_path: Path) -> None:
    items = "\n".join(
        "  - " + textwrap.indent(textwrap.dedent(d).strip(), "    ").lstrip() for d in (TASK_ADD, TASKRUN)
    )
    path = tmp_path / "list.yaml"
    path.write_text(f"apiVersion: v1\nkind: List\nitems:\n{items}\n")
    result, data = run_json(tmp_path / "home", str(path))
    assert result.exit_code == 0, result.output
    assert data["kind"] == "TaskRun" and data["outputs"] == {"sum": "42"}
    bad = path.read_text().replace("kind: TaskRun", "kind: Nope")
    path.write_text(bad)
    result = sluice(tmp_path / "home", "run", str(path))
    line = bad.splitlines().index("    kind: Nope") + 1
    assert f"{path}:{line}:5: $.kind: 'Nope' ('tekton.dev/v1') cannot run locally" in result.stderr


def test_a_stepaction_object_param_merges_its_default_with_the_task_object_it_is_given(
    tmp_path: Path,
) -> None:
    """Tekton's object replacements: the StepAction's default keys, then the task param's (its own
    default merged with the TaskRun's value)."""
    run = taskrun(
        "name: merged",
        """
        params:
          - name: obj
            value: {j: from-taskrun}
        taskSpec:
          params:
            - name: obj
              properties: {k: {type: string}, j: {type: string}}
              default: {k: from-task-default, j: task-j}
          results:
            - name: out
          steps:
            - name: act
              ref: {name: echo-all}
              params:
                - {name: words, value: [w]}
                - {name: obj, value: "$(params.obj[*])"}
        """,
    )
    action = (
        STEP_ACTION.replace("j: {type: string}}", "j: {type: string}, extra: {type: string}}")
        .replace("default: {k: kd, j: jd}", "default: {k: kd, j: jd, extra: ed}")
        .replace('"$(params.obj.j)",', '"$(params.obj.j)", "$(params.obj.extra)",')
    )
    result, data = run_json(tmp_path / "home", str(write(tmp_path, "m.yaml", action, run)))
    assert result.exit_code == 0, result.output
    assert data["outputs"]["out"] == "w|hello world|from-task-default|from-taskrun|ed|w|"
