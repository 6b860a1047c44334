"""Each stage program's command line accepts exactly the catalog's parameters and outputs."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from controller.spec.stages import STAGES
from stages.arguments import param_names

CONTRACT_OPTIONS = {"--help", "--result", "--artifacts-dir"}


def parser_of(stage: str):
    return importlib.import_module(f"stages.{STAGES[stage].module}").build_parser()


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_parser_accepts_exactly_the_catalog_params(stage: str) -> None:
    assert param_names(parser_of(stage)) == set(STAGES[stage].params)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_required_params_match(stage: str) -> None:
    parser = parser_of(stage)
    required = {a.option_strings[0][2:] for a in parser._actions if a.required}
    assert required == {name for name, p in STAGES[stage].params.items() if p.required}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_catalog_output_is_a_result_and_nothing_else(stage: str) -> None:
    module = importlib.import_module(f"stages.{STAGES[stage].module}")
    assert set(module.OUTPUTS) == set(STAGES[stage].outputs)
    parser = module.build_parser()
    required = [arg for name, p in STAGES[stage].params.items() if p.required for arg in (f"--{name}", "/x")]
    results = [arg for output in STAGES[stage].outputs for arg in ("--result", f"{output}=/tmp/{output}")]
    args = parser.parse_args([*required, *results])
    assert {name for name, _ in args.result} == set(STAGES[stage].outputs)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args([*required, "--result", "no-such-output=/tmp/x"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_help_works_and_importing_does_not_load_tensorflow(stage: str) -> None:
    module = f"stages.{STAGES[stage].module}"
    code = (
        f"import sys, {module}; {module}.build_parser(); "
        "print('tensorflow' in sys.modules, 'kserve' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False False", done.stderr
    helped = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60
    )
    assert helped.returncode == 0
    for name in STAGES[stage].params:
        assert f"--{name}" in helped.stdout
