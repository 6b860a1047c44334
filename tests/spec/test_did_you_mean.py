"""`did you mean` for a mistyped stage, stage parameter, input, step or output: in the loader's
diagnostics (FILE:LINE:COL: $.path: message kept), and for `--input NAME` on the command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.spec.helpers import REPO, diagnostics, native

GOOD = native("""
    spec:
      inputs:
        - {name: samples, type: integer, default: 10}
      steps:
        - name: prepare
          uses: sluice/prepare
          with: {generator: sum-of-two, samples: "{{ inputs.samples }}"}
          outputs: [{name: dataset, type: dataset}]
        - name: train
          uses: sluice/train-keras
          with: {dataset: "{{ steps.prepare.outputs.dataset }}", layers: [{dense: 1}], epochs: 1}
          outputs: [{name: model, type: model}]
    """)


@pytest.mark.parametrize(
    ("typo", "path", "line", "message"),
    [
        (
            ("uses: sluice/train-keras", "uses: sluice/trian-keras"),
            "$.spec.steps[1].uses",
            13,
            "unknown built-in stage 'sluice/trian-keras'; known: sluice/prepare, sluice/train-keras, "
            "sluice/evaluate, sluice/promote, sluice/deploy; did you mean 'sluice/train-keras'?",
        ),
        (
            ("epochs: 1", "epoch: 1"),
            "$.spec.steps[1].with.epoch",
            14,
            "did you mean 'epochs'?",
        ),
        (
            ('samples: "{{ inputs.samples }}"', 'samples: "{{ inputs.sample }}"'),
            "$.spec.steps[0].with.samples",
            10,
            "unknown input 'sample' (inputs: samples); did you mean 'samples'?",
        ),
        (
            ("steps.prepare.outputs.dataset", "steps.prepaer.outputs.dataset"),
            "$.spec.steps[1].with.dataset",
            14,
            "unknown step 'prepaer'; did you mean 'prepare'?",
        ),
        (
            ("steps.prepare.outputs.dataset", "steps.prepare.outputs.datset"),
            "$.spec.steps[1].with.dataset",
            14,
            "step 'prepare' does not declare output 'datset' (declared: dataset); did you mean 'dataset'?",
        ),
    ],
    ids=["stage", "stage-parameter", "input", "step", "output"],
)
def test_a_close_name_is_suggested(typo: tuple[str, str], path: str, line: int, message: str) -> None:
    assert typo[0] in GOOD
    (found,) = diagnostics(GOOD.replace(typo[0], typo[1]))
    assert (found.path, found.line) == (path, line)
    assert found.message.endswith(message), found.message
    assert found.format().startswith(f"wf.yaml:{line}:")


def test_nothing_is_suggested_when_no_name_is_close() -> None:
    (found,) = diagnostics(GOOD.replace("uses: sluice/train-keras", "uses: sluice/xgboost"))
    assert "did you mean" not in found.message
    assert "known: sluice/prepare" in found.message  # the list instead


def test_an_unknown_input_on_the_command_line_gets_a_suggestion() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "controller.cli.main",
            "compile",
            "workflows/sum-of-two.yaml",
            "--input",
            "sample=5",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 1
    assert done.stderr.strip().endswith(
        "$.inputs.sample: unknown input 'sample' (inputs: samples, max-mae); did you mean 'samples'?"
    )
    assert done.stderr.startswith("workflows/sum-of-two.yaml:")
