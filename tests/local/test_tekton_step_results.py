"""Tekton step results run locally (docs/stepactions.md "Emitting Results", "Passing Results
between Steps"): a step writes `$(step.results.r.path)`, a later step of its task reads
`$(steps.s.results.r)` in env, command and args (arrays by `[*]` and `[i]`, objects by `.key`), a
StepAction param carries it, a task result takes its value from it. Each test runs `sluice run` on
its own documents (real steps, real files) and checks what Tekton's docs say the outcome is.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.executors.local.engines import Engine
from tests.local.helpers import pipelinerun
from tests.local.test_containers import engine, run_contained, stages_image  # noqa: F401  (fixtures)
from tests.local.test_tekton_documents import nothing_ran, refused, run_json, taskrun, write

# a step that writes a string, an array and an object result
PRODUCER = """
- name: produce
  image: alpine
  results:
    - name: word
    - name: list
      type: array
    - name: obj
      type: object
      properties: {url: {type: string}, digest: {type: string}}
  script: |
    printf 'foo' > $(step.results.word.path)
    printf '["a", "b c", "d"]' > $(step.results.list.path)
    printf '{"url": "u.example", "digest": "sha256"}' > $(step.results.obj.path)
"""
# a step that prints its arguments and $WORD, joined by |, into the task result `out`
PRINTER = """
- name: show
  image: alpine
  env:
    - name: WORD
      value: "word=$(steps.produce.results.word)"
  command: [sh, -c, 'printf "%s|" "$WORD" "$@" > "$0"', $(results.out.path)]
  args:
    - $(steps.produce.results.list[*])
    - $(steps.produce.results.list[1])
    - "url $(steps.produce.results.obj.url)"
    - $(steps.produce.results.obj.digest)
"""


def steps_spec(*steps: str, results: str = "- name: out") -> str:
    return (
        "taskSpec:\n  results:\n"
        + textwrap.indent(results, "    ")
        + "\n  steps:\n"
        + "".join(textwrap.indent(textwrap.dedent(s).strip("\n") + "\n", "    ") for s in steps)
    )


def succeeded(tmp_path: Path, *documents: str) -> Any:
    """`sluice run --json` of the documents, which must succeed: the run's JSON."""
    result, data = run_json(tmp_path / "home", str(write(tmp_path, "in.yaml", *documents)))
    assert result.exit_code == 0, result.output
    return data


def test_a_later_step_reads_string_array_and_object_step_results_in_env_and_args(tmp_path: Path) -> None:
    data = succeeded(tmp_path, taskrun("name: passing", steps_spec(PRODUCER, PRINTER)))
    # [*] is one argument per item, [1] one item, .key one value, inside a string too
    assert data["outputs"]["out"] == "word=foo|a|b c|d|b c|url u.example|sha256|"


def test_a_task_result_takes_its_value_and_type_from_a_step_result(tmp_path: Path) -> None:
    results = """
    - name: first
      value: $(steps.produce.results.word)
    - name: all
      type: array
      value: $(steps.produce.results.list)
    - name: image
      type: object
      properties: {url: {type: string}, digest: {type: string}}
      value: $(steps.produce.results.obj)
    """
    data = succeeded(tmp_path, taskrun("name: fetch", steps_spec(PRODUCER, results=textwrap.dedent(results))))
    assert data["outputs"] == {
        "first": "foo",
        "all": ["a", "b c", "d"],
        "image": {"url": "u.example", "digest": "sha256"},
    }


STEP_ACTIONS = """
apiVersion: tekton.dev/v1beta1
kind: StepAction
metadata:
  name: make
spec:
  image: alpine
  results:
    - name: tags
      type: array
    - name: image
      type: object
      properties: {url: {type: string}, digest: {type: string}}
    - name: note
  script: |
    printf '["v1", "v2"]' > $(step.results.tags.path)
    printf '{"url": "reg/app", "digest": "sha256:1"}' > $(step.results.image.path)
    printf 'made' > $(step.results.note.path)
---
apiVersion: tekton.dev/v1beta1
kind: StepAction
metadata:
  name: use
spec:
  params:
    - {name: tags, type: array}
    - {name: image, type: object, properties: {url: {}, digest: {}}}
    - {name: note}
  image: alpine
  env:
    - name: NOTE
      value: $(params.note)
  command: [sh, -c, 'printf "%s|" "$NOTE" "$@" > "$0"', $(results.out.path)]
  args: ["$(params.tags[*])", "$(params.tags[0])", "$(params.image.url)@$(params.image.digest)"]
"""


def test_stepaction_results_reach_a_later_stepactions_params(tmp_path: Path) -> None:
    steps = """
    - name: build
      ref: {name: make}
    - name: push
      ref: {name: use}
      params:
        - {name: tags, value: "$(steps.build.results.tags[*])"}
        - {name: image, value: "$(steps.build.results.image[*])"}
        - {name: note, value: "$(steps.build.results.note)"}
    """
    data = succeeded(tmp_path, STEP_ACTIONS, taskrun("name: chain", steps_spec(steps)))
    assert data["outputs"]["out"] == "made|v1|v2|v1|reg/app@sha256:1|"


def test_a_pipeline_passes_a_task_result_made_from_a_step_result_to_the_next_task(tmp_path: Path) -> None:
    producer = {
        "name": "make",
        "taskSpec": {
            "results": [{"name": "tags", "type": "array", "value": "$(steps.write.results.tags)"}],
            "steps": [
                {
                    "name": "write",
                    "image": "alpine",
                    "results": [{"name": "tags", "type": "array"}],
                    "script": 'printf \'["x", "y"]\' > $(step.results.tags.path)',
                },
                {
                    "name": "check",
                    "image": "alpine",
                    "command": ["test", "$(steps.write.results.tags[1])", "=", "y"],
                },
            ],
        },
    }
    consumer = {
        "name": "use",
        "params": [{"name": "tags", "value": "$(tasks.make.results.tags[*])"}],
        "taskSpec": {
            "params": [{"name": "tags", "type": "array"}],
            "results": [{"name": "joined"}],
            "steps": [
                {
                    "name": "join",
                    "image": "alpine",
                    "command": ["sh", "-c", 'printf "%s+" "$@" > "$0"', "$(results.joined.path)"],
                    "args": ["$(params.tags[*])"],
                }
            ],
        },
    }
    results = [{"name": "joined", "value": "$(tasks.use.results.joined)"}]
    run = pipelinerun("steps-to-tasks", [producer, consumer], results=results)
    data = succeeded(tmp_path, yaml.safe_dump(run))
    assert data["outputs"] == {"joined": "x+y+"}


@pytest.mark.parametrize(
    ("steps", "where", "message"),
    [
        (
            [PRINTER],
            "$.spec.taskSpec.steps[0].env[0].value",
            "$(steps.produce.results.word): the task has no step named 'produce'",
        ),
        (
            [PRINTER, PRODUCER],
            "$.spec.taskSpec.steps[0].env[0].value",
            "$(steps.produce.results.word): step 'produce' runs after this one",
        ),
        (
            [PRODUCER, PRINTER.replace("list[1]", "lists[1]")],
            "$.spec.taskSpec.steps[1].args[1]",
            "step 'produce' declares no result 'lists'",
        ),
        (
            [PRODUCER, "- {name: s, image: alpine, script: 'echo $(steps.produce.results.word)'}"],
            "$.spec.taskSpec.steps[1].script",
            "step results can be used only in a step's env, command and args",
        ),
        (
            ["- {name: s, image: alpine, script: 'echo > $(step.results.nope.path)'}"],
            "$.spec.taskSpec.steps[0].script",
            "$(step.results.nope.path): this step declares no result 'nope'",
        ),
        (
            [
                PRODUCER,
                "- {name: s, image: alpine, command: [env], "
                "env: [{name: A, value: '$(steps.produce.results.list[*])'}]}",
            ],
            "$.spec.taskSpec.steps[1].env[0].value",
            "is an array or object",
        ),
    ],
)
def test_a_step_result_reference_tekton_would_not_resolve_is_refused_before_any_step(
    tmp_path: Path, steps: list[str], where: str, message: str
) -> None:
    result, path = refused(tmp_path, "bad.yaml", taskrun("name: bad", steps_spec(*steps)))
    line = result.stderr.strip()
    assert "\n" not in line and re.search(rf"{re.escape(str(path))}:\d+:\d+: {re.escape(where)}: ", line), (
        line
    )
    assert message in line
    assert nothing_ran(tmp_path / "home")


def test_a_task_result_from_a_step_result_of_another_type_fails_as_tekton_fails_it(tmp_path: Path) -> None:
    """Tekton fails the TaskRun with reason FailedValidation when a result is not of its type."""
    step = "- {name: w, image: alpine, results: [{name: r}], script: 'printf plain > $(step.results.r.path)'}"
    results = "- {name: r, type: array, value: $(steps.w.results.r)}"
    result, data = run_json(
        tmp_path / "home",
        str(write(tmp_path, "in.yaml", taskrun("name: typed", steps_spec(step, results=results)))),
    )
    assert result.exit_code == 1
    task = data["steps"][0]  # the TaskRun's one task
    assert task["reason"] == "FailedValidation", data
    assert "result 'r' is declared array but was written as string" in task["message"]


def test_a_step_result_written_as_another_type_fails_the_step_that_reads_it(tmp_path: Path) -> None:
    wrong = PRODUCER.replace("""'["a", "b c", "d"]'""", "'a b'")
    result, _ = run_json(
        tmp_path / "home", str(write(tmp_path, "in.yaml", taskrun("name: typed", steps_spec(wrong, PRINTER))))
    )
    assert result.exit_code == 1
    log = next((tmp_path / "home" / "runs").glob("*/logs/*.log")).read_text()
    assert "--- step show cannot start: step 'produce': result 'list' is declared array" in log
    assert "word=" not in log  # the reading step never ran


def test_a_step_result_holding_a_secret_fails_the_task(tmp_path: Path) -> None:
    secret = (
        "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {token: s3cr3t-t0ken-value}\n"
    )
    step = """
    - name: leak
      image: alpine
      results: [{name: r}]
      env: [{name: TOKEN, valueFrom: {secretKeyRef: {name: creds, key: token}}}]
      script: printf '%s' "$TOKEN" > $(step.results.r.path)
    """
    result, data = run_json(
        tmp_path / "home",
        str(
            write(
                tmp_path,
                "in.yaml",
                secret,
                taskrun(
                    "name: leaky", steps_spec(step, results="- {name: r, value: $(steps.leak.results.r)}")
                ),
            )
        ),
    )
    assert result.exit_code == 1
    assert "holds a secret value" in result.output
    assert "s3cr3t-t0ken-value" not in result.output
    assert "s3cr3t-t0ken-value" not in json.dumps(data)


@pytest.mark.slow
def test_step_results_pass_between_steps_in_containers(
    tmp_path: Path,
    engine: Engine,  # noqa: F811
    stages_image: str,  # noqa: F811
) -> None:
    spec: dict[str, Any] = yaml.safe_load(steps_spec(PRODUCER, PRINTER))["taskSpec"]
    for step in spec["steps"]:
        step["image"] = stages_image
    run = {
        "apiVersion": "tekton.dev/v1",
        "kind": "TaskRun",
        "metadata": {"name": "boxed"},
        "spec": {"taskSpec": spec},
    }
    data = run_contained(tmp_path, engine, run)
    # in its container a step writes /tekton/steps/step-<name>/results/<name>, as in a pod
    assert data["outputs"]["out"] == "word=foo|a|b c|d|b c|url u.example|sha256|"
