"""Script injection (issue 16 item 1): a WorkflowRun input or a step output that holds shell syntax
is data in every place a shell reads it — `script` text (unquoted, in double quotes, in a
here-document), `command: [sh, -c, ...]` and `args` after a shell — never code. The compiler passes
such values as environment variables; the payloads try to create `sandbox.marker`, and each step
writes what it saw to a result that must equal the value exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from controller.spec.errors import SpecError
from controller.spec.load import load_workflow_text
from tests.adversarial.conftest import Sandbox, assert_clean_failure, run_sluice

WORKFLOW = """\
apiVersion: sluice.dev/v1alpha1
kind: Workflow
metadata: {name: injection}
spec:
  inputs:
    - {name: x, type: string}
  steps:
    - name: script
      image: busybox
      script: |
        printf '%s' {{ inputs.x }} > "{{ outputs.plain.path }}"
        printf '%s' "{{ inputs.x }}" > "{{ outputs.quoted.path }}"
        printf '%s' "value: {{ inputs.x }}${HOME:+}" > "{{ outputs.mixed.path }}"
        cat > "{{ outputs.heredoc.path }}" <<EOF
        {{ inputs.x }}
        EOF
      outputs: [{name: plain}, {name: quoted}, {name: mixed}, {name: heredoc}]
    - name: relay
      image: busybox
      script: |
        #!/bin/bash
        echo checked {{ steps.script.outputs.quoted }} >/dev/null
        printf '%s' "{{ steps.script.outputs.quoted }}" > "{{ outputs.relayed.path }}"
      outputs: [{name: relayed}]
    - name: shell-c
      image: busybox
      command: [sh, -c, "printf '%s' {{ inputs.x }} > {{ outputs.out.path }}"]
      outputs: [{name: out}]
    - name: bash-args
      image: busybox
      command: [/bin/bash]
      args:
        - -ec
        - printf '%s' "{{ steps.relay.outputs.relayed }}" > "{{ outputs.out.path }}"
        - ignored
      outputs: [{name: out}]
  outputs:
    - {name: plain, value: "{{ steps.script.outputs.plain }}"}
    - {name: quoted, value: "{{ steps.script.outputs.quoted }}"}
    - {name: mixed, value: "{{ steps.script.outputs.mixed }}"}
    - {name: heredoc, value: "{{ steps.script.outputs.heredoc }}"}
    - {name: relayed, value: "{{ steps.relay.outputs.relayed }}"}
    - {name: shell-c, value: "{{ steps.shell-c.outputs.out }}"}
    - {name: bash-args, value: "{{ steps.bash-args.outputs.out }}"}
"""

PAYLOADS = {
    "quote-semicolon": '"; touch {marker} #',
    "command-substitution": "$(touch {marker})",
    "backticks": "`touch {marker}`",
    "newline": "a\ntouch {marker}",
    "single-quote-breakout": "'; touch {marker}; echo '",
    "glob-and-spaces": "*  $HOME ${{IFS}} \\ {marker}",
    "variable-syntax": "$(SLUICE_RUN) $$ ${{SLUICE_RUN}} ; touch {marker}",
}


@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_a_hostile_value_is_data_in_scripts_and_shell_commands(sandbox: Sandbox, payload: str) -> None:
    value = payload.format(marker=sandbox.marker)
    workflow = sandbox.write("wf.yaml", WORKFLOW)
    outcome = run_sluice(sandbox, "run", str(workflow), "--input", f"x={value}", "--json", timeout=90)
    assert outcome.returncode == 0, outcome.stderr[-3000:]
    outputs = json.loads(outcome.stdout)["outputs"]
    expected = {
        "plain": value,
        "quoted": value,
        "mixed": f"value: {value}",
        "heredoc": value,
        "relayed": value,
        "shell-c": value,
        "bash-args": value,
    }
    assert outputs == expected
    sandbox.assert_untouched()


def _shell_texts(run: dict) -> list[str]:
    texts = []
    for task in run["spec"]["pipelineSpec"]["tasks"]:
        for step in task["taskSpec"]["steps"]:
            if "script" in step:
                texts.append(step["script"])
            argv = [*step.get("command", []), *step.get("args", [])]
            if argv and Path(argv[0]).name in ("sh", "bash"):
                texts.extend(a for a in argv[1:] if not a.startswith("-"))
    return texts


def test_the_compiled_shell_text_holds_no_tekton_value(sandbox: Sandbox) -> None:
    workflow = sandbox.write("wf.yaml", WORKFLOW)
    outcome = run_sluice(sandbox, "compile", str(workflow), "--input", "x=1")
    assert outcome.returncode == 0, outcome.stderr[-3000:]
    texts = _shell_texts(yaml.safe_load(outcome.stdout))
    assert len(texts) >= 5
    for text in texts:
        assert "$(params." not in text and "$(tasks." not in text, text
    sandbox.assert_untouched()


REFUSED = {
    "single-quotes": ("script: \"echo '{{ inputs.x }}'\"", "ref.shell-quoting", "single quotes"),
    "quoted-heredoc": (
        "script: |\n        cat <<'EOF'\n        {{ inputs.x }}\n        EOF",
        "ref.shell-quoting",
        "here-document",
    ),
    "arithmetic": ('script: "echo $(( 1 + {{ inputs.x }} ))"', "ref.shell-quoting", "arithmetic"),
    "python-script": (
        "script: |\n        #!/usr/bin/env python3\n        print('{{ inputs.x }}')",
        "ref.code-text",
        "pass it through env:",
    ),
    "python-c": (
        "command: [python3, -c, \"print('{{ inputs.x }}')\"]",
        "ref.code-text",
        "pass it through env:",
    ),
    "sh-c-single-quotes": (
        "command: [sh, -c, \"echo '{{ inputs.x }}'\"]",
        "ref.shell-quoting",
        "single quotes",
    ),
}

REFUSED_WORKFLOW = """\
apiVersion: sluice.dev/v1alpha1
kind: Workflow
metadata: {{name: refused}}
spec:
  inputs: [{{name: x, type: string}}]
  steps:
    - name: s
      image: busybox
      {field}
"""


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
@pytest.mark.parametrize("command", ("validate", "run"))
def test_a_reference_that_cannot_be_data_is_refused(
    sandbox: Sandbox, command: str, case: tuple[str, str, str]
) -> None:
    field, code, fragment = case
    workflow = sandbox.write("wf.yaml", REFUSED_WORKFLOW.format(field=field))
    args = [command, str(workflow)] + (["--input", "x=1"] if command == "run" else [])
    outcome = run_sluice(sandbox, *args)
    assert_clean_failure(outcome, fragment, "wf.yaml:9:")
    assert code in load_diagnostics(REFUSED_WORKFLOW.format(field=field))
    sandbox.assert_untouched()


def load_diagnostics(document: str) -> list[str]:
    try:
        load_workflow_text(document, "wf.yaml")
    except SpecError as exc:
        return [d.code for d in exc.diagnostics]
    return []


def test_paths_and_env_references_are_unchanged() -> None:
    """Compiler-made paths stay in the text (a Python script may use them); `env:` is the way in."""
    workflow = load_workflow_text(
        REFUSED_WORKFLOW.format(
            field="script: |\n        #!/usr/bin/env python3\n"
            "        import os; open('{{ outputs.o.path }}', 'w').write(os.environ['X'])\n"
            '      env: {X: "{{ inputs.x }}"}\n      outputs: [{name: o}]'
        )
    )
    assert workflow.steps[0].script is not None
