"""How errors are reported: all at once, sorted, capped, formatted, and never echoing a value in full."""

from __future__ import annotations

import pytest

from controller.spec import Diagnostic, SpecError
from controller.spec.errors import MAX_ERRORS
from tests.spec.helpers import HEAD, diagnostics, native, text


def test_all_errors_of_a_document_at_once_sorted_by_line() -> None:
    found = diagnostics(
        native("""
            spec:
              inputs:
                - {name: n, type: integer, default: x}
              steps:
                - name: b
                  uses: sluice/prepare
                  with: {generator: sum-of-two, samples: "{{ inputs.m }}"}
                  timeout: 0s
                - name: a
                  uses: sluice/evaluate
                  with: {model: "{{ steps.b.outputs.model }}", dataset: "{{ steps.b.outputs.dataset }}"}
                  when: "{{ inputs.n }} >> 2"
            """)
    )
    assert [(d.line, d.code) for d in found] == [
        (6, "spec.default-type"),
        (10, "ref.unknown-input"),
        (11, "spec.duration"),
        (14, "ref.unknown-output"),
        (14, "ref.unknown-output"),
        (15, "when.syntax"),
    ]
    assert found == sorted(found, key=lambda d: (d.line, d.col, d.path, d.code))


def test_errors_are_capped() -> None:
    steps = "".join(f"    - {{name: s{i}, image: busybox, bogus: 1}}\n" for i in range(MAX_ERRORS + 7))
    with pytest.raises(SpecError) as caught:
        from controller.spec import load_workflow_text

        load_workflow_text(HEAD + "spec:\n  steps:\n" + steps, "many.yaml")
    assert len(caught.value.diagnostics) == MAX_ERRORS
    assert caught.value.omitted == 7
    assert caught.value.diagnostics[0].path == "$.spec.steps[0].bogus"
    assert str(caught.value).splitlines()[0] == (
        "many.yaml:6:34: $.spec.steps[0].bogus: unknown field 'bogus'; known fields: name, description, "
        "uses, image, command, args, script, workingDir, with, env, resources, retries, timeout, when, "
        "runAfter, outputs"
    )


def test_format_with_and_without_a_path() -> None:
    assert (
        Diagnostic("f.yaml", 3, 7, "$.spec", "schema.required", "missing").format()
        == "f.yaml:3:7: $.spec: missing"
    )
    assert Diagnostic("f.yaml", 2, 1, "", "yaml.syntax", "bad").format() == "f.yaml:2:1: bad"


LONG = "k" * 1000


def steps(*flows: str) -> str:
    """A native workflow whose steps are these YAML flow mappings."""
    return native("spec:\n  steps:\n" + "".join(f"    - {{{flow}}}\n" for flow in flows))


LONG_VALUES = [
    text(f"{LONG}: 1\n{LONG}: 2\n"),  # duplicate key
    steps(f"name: a, uses: sluice/prepare, with: {{{LONG}: 1}}"),  # unknown parameter
    steps(f'name: a, image: b, args: ["{{{{ inputs.{LONG}. }}}}"]'),  # malformed reference
    steps(f'name: a, image: b, args: ["{{{{ {LONG}.x }}}}"]'),  # unknown root
    steps(f'name: a, image: b, args: ["{{{{ inputs.{LONG} }}}}"]'),  # unknown input
    steps(f'name: a, image: b, args: ["{{{{ steps.{LONG}.outputs.o }}}}"]'),  # unknown step
    # unknown output
    steps("name: a, image: b", f'name: c, image: b, args: ["{{{{ steps.a.outputs.{LONG} }}}}"]'),
    steps(f'name: a, image: b, when: "{LONG[:900]} > 1"'),  # when.type
    steps(f'name: a, image: b, env: {{X: "{{{{ extensions.{LONG}.url }}}}"}}'),  # unknown extension
    steps(f"name: a, image: !{LONG} b"),  # tag
    steps(f"name: a, image: b, {LONG}: 1"),  # unknown field
]


@pytest.mark.parametrize("document", LONG_VALUES)
def test_a_long_value_is_shortened_in_messages(document: str) -> None:
    for found in diagnostics(document):
        assert LONG[:100] not in found.message, found.code
        assert len(found.message) < 300, found.code
