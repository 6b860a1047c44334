"""Every error class the loader emits: each invalid document reports its code, line, JSON path and message."""

from __future__ import annotations

import pytest

from controller.spec import SpecError, load_workflow_object
from tests.spec.helpers import REPO, Case, diagnostics, native
from tests.spec.invalid_cases import ALL_CASES


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_invalid_document_reports_its_error(case: Case) -> None:
    found = diagnostics(case.document)
    assert sorted({d.code for d in found}) == sorted({case.code, *case.also}), [d.format() for d in found]
    (diagnostic,) = [d for d in found if d.code == case.code]
    assert (diagnostic.line, diagnostic.path) == (case.line, case.path), diagnostic.format()
    assert case.fragment in diagnostic.message
    if case.col is not None:
        assert diagnostic.col == case.col, diagnostic.format()
    assert diagnostic.file == "wf.yaml"


def test_the_table_covers_every_error_class() -> None:
    """The issue's list of error classes, each with at least one invalid document above."""
    required = {
        "yaml.syntax",
        "yaml.duplicate-key",
        "yaml.alias",
        "yaml.anchor",
        "yaml.tag",
        "yaml.multiple-documents",
        "yaml.empty",
        "yaml.value",
        "yaml.complex-key",
        "schema.unknown-field",
        "schema.required",
        "schema.enum",
        "schema.const",
        "schema.type",
        "schema.pattern",
        "schema.maxLength",
        "schema.minimum",
        "schema.minItems",
        "spec.forbidden-field",
        "spec.duplicate-step",
        "spec.duplicate-input",
        "spec.duplicate-step-output",
        "spec.duplicate-output",
        "spec.uses-or-image",
        "spec.unknown-stage",
        "spec.unknown-param",
        "spec.param-type",
        "spec.missing-param",
        "spec.unknown-output",
        "spec.output-type",
        "spec.stage-field",
        "spec.script-and-command",
        "spec.default-type",
        "spec.quantity",
        "spec.duration",
        "expr.syntax",
        "ref.unknown-input",
        "ref.unknown-step",
        "ref.unknown-output",
        "ref.self",
        "ref.input-attr",
        "ref.codeset-attr",
        "ref.type",
        "ref.unknown-extension",
        "when.syntax",
        "when.type",
        "dag.unknown-step",
        "dag.self",
        "dag.cycle",
        "fuseml.no-image",
        "fuseml.input",
        "fuseml.codeset",
        "fuseml.output",
    }
    assert len(ALL_CASES) >= 45
    assert required <= {c.code for c in ALL_CASES}


def test_forbidden_field_inside_stage_parameters_is_data_not_a_pod_setting() -> None:
    """`with:` is free-form stage input: a key named like a pod field there is a stage error."""
    found = diagnostics(
        native("""
            spec:
              steps:
                - name: a
                  uses: sluice/prepare
                  with: {generator: sum-of-two, privileged: true}
            """)
    )
    assert [d.code for d in found] == ["spec.unknown-param"]


def test_kubernetes_object_errors_keep_their_paths_without_positions() -> None:
    """A Workflow read from the API server has no file positions: line and column are 0, the path is exact."""
    obj = {
        "apiVersion": "sluice.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "demo"},
        "spec": {"steps": [{"name": "a", "image": "busybox", "runAfter": ["nope"]}]},
    }
    with pytest.raises(SpecError) as caught:
        load_workflow_object(obj, "ml/demo")
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.file, diagnostic.line, diagnostic.col) == ("ml/demo", 0, 0)
    assert (diagnostic.path, diagnostic.code) == ("$.spec.steps[0].runAfter[0]", "dag.unknown-step")


def test_every_error_class_is_documented() -> None:
    documented = (REPO / "docs/workflow-language.md").read_text()
    codes = {c.code for c in ALL_CASES} | {
        "file.too-large",
        "file.encoding",
        "file.unreadable",
        "yaml.too-deep",
    }
    missing = sorted(code for code in codes if f"`{code}`" not in documented)
    assert not missing, f"error classes without a row in docs/workflow-language.md: {missing}"
