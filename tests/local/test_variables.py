"""Tekton `$(...)` substitution rules."""

from __future__ import annotations

import pytest

from controller.executors.local.tekton import UnsupportedError, parse_duration
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


def test_go_durations() -> None:
    assert parse_duration("1h0m0s", "t") == 3600
    assert parse_duration("1.5m", "t") == 90
    assert parse_duration("250ms", "t") == 0.25
    assert parse_duration("0", "t") is None
    with pytest.raises(UnsupportedError):
        parse_duration("10 minutes", "t")
