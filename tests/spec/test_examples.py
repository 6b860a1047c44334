"""Every example in workflows/ validates, and loads into the model the examples describe."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.spec import load_workflow
from controller.spec.model import InputRef, StepOutputRef
from tests.spec.helpers import EXAMPLES


def test_the_examples_of_the_issue_exist() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"sum-of-two.yaml", "three-body.yaml", "sum-of-two-equal-pairs.yaml"} <= names
    assert any(load_workflow(str(p)).dialect == "fuseml" for p in EXAMPLES)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_validates(path: Path) -> None:
    workflow = load_workflow(str(path))
    native = any(line.startswith("apiVersion:") for line in path.read_text().splitlines())
    assert workflow.dialect == ("native" if native else "fuseml")
    assert workflow.steps
    assert workflow.source_file == str(path)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_points_editors_at_the_schema(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../controller/spec/schema/workflow.schema.json"
    assert (path.parent / "../controller/spec/schema/workflow.schema.json").resolve().is_file()


def test_sum_of_two_model() -> None:
    wf = load_workflow(str(Path(EXAMPLES[0].parent, "sum-of-two.yaml")))
    assert [s.name for s in wf.steps] == ["prepare", "train", "evaluate", "deploy"]
    assert [(i.name, i.type, i.default) for i in wf.inputs] == [
        ("samples", "integer", 20000),
        ("max-mae", "number", 1.0),
    ]
    prepare, train, _, deploy = wf.steps
    assert prepare.uses == "prepare" and prepare.image is None
    assert prepare.output("dataset") is not None and prepare.output("dataset").is_artifact
    assert train.output("val-mae").type == "number"
    assert train.with_["epochs"] == 20
    assert deploy.when is not None and deploy.when.op == "<=" and deploy.when.numeric
    assert deploy.when.left.single_ref == StepOutputRef("evaluate", "mae")
    assert deploy.when.right[0].single_ref == InputRef("max-mae")
    (output,) = wf.outputs
    assert output.name == "prediction-url"
    assert output.value.single_ref == StepOutputRef("deploy", "url")
    # every node keeps its position, so later stages can point into the file
    lines = Path(wf.source_file).read_text().splitlines()
    when_line = next(n for n, line in enumerate(lines, 1) if line.strip().startswith("when:"))
    assert wf.position("$.spec.steps[3].when") == (when_line, 7)


def test_three_body_resources_and_timeouts() -> None:
    wf = load_workflow(str(Path(EXAMPLES[0].parent, "three-body.yaml")))
    simulate, train = wf.steps[0], wf.steps[1]
    assert simulate.resources.limits == {"cpu": "2", "memory": "2Gi"}
    assert simulate.timeout_seconds == 30 * 60
    assert (train.retries, train.timeout_seconds) == (1, 3600)
    assert wf.artifacts_size == "2Gi"


def test_generated_schema_validator_is_up_to_date() -> None:
    from controller.spec.schema import GENERATED_VALIDATOR, generated_validator_code

    def without_version(code: str) -> str:  # the generator stamps its own version
        return "\n".join(line for line in code.splitlines() if not line.startswith("VERSION = "))

    on_disk = (Path(__file__).resolve().parents[2] / GENERATED_VALIDATOR).read_text()
    assert without_version(on_disk) == without_version(generated_validator_code()), (
        "the workflow schema changed: run `python scripts/generate_schema_validator.py`"
    )
