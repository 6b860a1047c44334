"""Tekton `$(...)` substitution rules."""

from __future__ import annotations

import pytest

from controller.executors.local.variables import (
    Scope,
    VariableError,
    check_resolved,
    substitute,
    substitute_list,
)


def _scope() -> Scope:
    return Scope(
        {"params.x": "1", "params.arr": ["a", "b"], "tasks.t.results.r": "R"}, ("params", "tasks"), (), "here"
    )


def test_strings_arrays_and_bracket_names() -> None:
    scope = _scope()
    assert substitute("$(params.x)-$(params['x'])-$(params[\"x\"])-$(tasks.t.results.r)", scope) == "1-1-1-R"
    assert substitute_list(["--a", "$(params.arr[*])", "$(params.arr[1])"], scope) == ["--a", "a", "b", "b"]
    assert substitute("echo $(date) $(results.r.path)", scope) == "echo $(date) $(results.r.path)"


def test_errors_name_the_variable() -> None:
    with pytest.raises(VariableError, match=r"\$\(params.y\)"):
        substitute("$(params.y)", _scope())
    with pytest.raises(VariableError, match="whole array element"):
        substitute("x $(params.arr[*]) y", _scope())
    with pytest.raises(VariableError, match="out of range"):
        substitute("$(params.arr[5])", _scope())
    with pytest.raises(VariableError, match=r"\$\(steps.s.exitCode.path\)"):
        check_resolved({"a": ["$(steps.s.exitCode.path)"]}, "here")
