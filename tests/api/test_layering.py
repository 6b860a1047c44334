"""`controller/api` stands apart from the reconcilers, and the operator spells reasons only through it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from controller.api import conditions

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "controller" / "api"
OPERATOR = ROOT / "controller" / "operator"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_api_never_imports_the_operator_or_kopf() -> None:
    for path in sorted(API.glob("*.py")):
        bad = {n for n in _imports(path) if n == "kopf" or n.startswith(("kopf.", "controller.operator"))}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_generating_the_crds_loads_neither_the_operator_nor_kopf() -> None:
    code = (
        "import sys, controller.api.crds as c; c.render_all(); "
        "print(sorted(m for m in sys.modules if m == 'kopf' or m.startswith('controller.operator')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]"


def _reason_literals(path: Path) -> list[str]:
    """String constants passed as a reason: `reason="..."`, or first argument of the exceptions and
    helpers that carry one (`Waiting`, `Invalid`, `GitError`, `_write(..., health, reason, ...)`)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        for keyword in node.keywords:
            if keyword.arg == "reason" and isinstance(keyword.value, ast.Constant):
                found.append(f"{path.name}:{node.lineno}: reason={keyword.value.value!r}")
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        args = node.args
        position = {"Waiting": 0, "Invalid": 0, "GitError": 0, "_write": 3, "_event": 2, "_status": 3}
        index = position.get(str(name))
        if index is not None and len(args) > index and isinstance(args[index], ast.Constant):
            value = args[index].value
            if isinstance(value, str) and value:
                found.append(f"{path.name}:{node.lineno}: {name}(... {value!r})")
    return found


def test_operator_writes_reasons_through_the_api_constants() -> None:
    literals = [hit for path in sorted(OPERATOR.rglob("*.py")) for hit in _reason_literals(path)]
    assert literals == [], "use the constants of controller.api.conditions"


def test_reason_constants_are_distinct_camel_case_words() -> None:
    values = {k: v for k, v in vars(conditions).items() if k.isupper() and isinstance(v, str)}
    assert len(set(values.values())) == len(values), "two constants spell the same reason"
    for name, value in values.items():
        assert value[:1].isupper() and value.isalpha(), (name, value)
