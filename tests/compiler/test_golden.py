"""Every example compiles to its golden file, validates strictly upstream and lints clean.

`SLUICE_UPDATE_GOLDEN=1 pytest tests/compiler/test_golden.py` rewrites the golden files;
review the diff before committing it.
"""

from __future__ import annotations

import os

import pytest

from controller.compiler import to_yaml
from tests.compiler.conftest import EXAMPLES, GOLDEN, compile_example
from tests.compiler.tektonlint import errors_only

UPDATE = os.environ.get("SLUICE_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_compiles_to_golden_file(name, registry):
    text = to_yaml(compile_example(name, registry))
    golden = GOLDEN / f"{name}.yaml"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"no golden file for {name}: run with SLUICE_UPDATE_GOLDEN=1"
    assert text == golden.read_text(encoding="utf-8"), f"{name} compiles differently from {golden}"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_validates_against_upstream_schemas(name, registry, upstream):
    assert upstream.errors(compile_example(name, registry)) == []


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_tekton_lint_reports_no_errors(name, registry, tekton_lint):
    problems = tekton_lint(compile_example(name, registry))
    assert errors_only(problems) == []


def test_golden_files_have_no_stale_entries():
    stale = sorted(p.stem for p in GOLDEN.glob("*.yaml") if p.stem not in EXAMPLES)
    assert stale == []
