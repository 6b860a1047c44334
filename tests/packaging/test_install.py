"""Sluice's declared dependencies are the ones its code imports: no more, no fewer.

The operator image installs the package without extras, the stages image with the `ml` extra, both
at the versions pinned in requirements.lock. A dependency that is only present because the
development venv happens to have it (pathspec came with mypy) breaks the image; one that nothing
imports (GitPython was) only makes it bigger.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from testsupport.processes import run_captured

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]

# Imports every module of the given packages; prints the failures, one per line.
IMPORT_ALL = """
import importlib, pkgutil, sys, traceback
failed = []
for package in sys.argv[1:]:
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        try:
            importlib.import_module(info.name)
        except Exception:
            failed.append(info.name + ": " + traceback.format_exc(limit=1).strip().splitlines()[-1])
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def requirement_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def third_party_imports(folder: Path) -> dict[str, set[str]]:
    """Top-level module name -> files importing it, for absolute imports outside the stdlib."""
    found: dict[str, set[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top not in sys.stdlib_module_names and top not in {"controller", "stages", "__future__"}:
                    found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def declared(*extras: str) -> set[str]:
    names = {canonical(requirement_name(r)) for r in PROJECT["dependencies"]}
    for extra in extras:
        names |= {canonical(requirement_name(r)) for r in PROJECT["optional-dependencies"][extra]}
    return names


def test_every_imported_package_is_declared_and_every_declared_one_imported() -> None:
    providers = metadata.packages_distributions()  # module -> distributions, in this (dev) venv
    imported = third_party_imports(REPO / "controller") | third_party_imports(REPO / "stages")
    wanted = declared("ml", "mlflow")  # what the images install, and the optional tracking extra
    undeclared = {
        module: sorted(files)
        for module, files in imported.items()
        if not {canonical(d) for d in providers.get(module, [module])} & wanted
    }
    assert not undeclared, f"imported but not declared in pyproject.toml (base, ml or mlflow): {undeclared}"
    provided = {canonical(d) for module in imported for d in providers.get(module, [])}
    unused = sorted(
        name
        for name in wanted
        if name not in provided
        and any(canonical(d.metadata["Name"]) == name for d in metadata.distributions())
    )
    assert not unused, f"declared in pyproject.toml but imported nowhere in controller/ or stages/: {unused}"


def test_the_operator_imports_need_only_the_base_dependencies() -> None:
    """What the operator image runs (controller/operator, controller/cli and what they import at
    module level) never needs the ml extra: that is checked for real by the next test; this one
    names the file when an ml-only package is imported by the operator's own folder."""
    ml_only = declared("ml") - declared()
    providers = metadata.packages_distributions()
    for folder in ("controller/operator", "controller/spec", "controller/compiler"):
        for module, files in third_party_imports(REPO / folder).items():
            dists = {canonical(d) for d in providers.get(module, [module])}
            assert not dists & ml_only, f"{folder} imports {module} (ml extra only): {sorted(files)}"


def test_a_fresh_venv_without_extras_imports_the_operator_and_runs_it(tmp_path: Path) -> None:
    """`pip install -c requirements.lock .` (no extras, dependencies resolved for real) in a new venv,
    then every module of controller.operator and controller.cli imports and `sluice operator --help`
    runs: the operator image's install, without building the image."""
    source = tmp_path / "src"  # a copy: building in the checkout would write build/ into it
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "requirements.lock"):
        shutil.copy2(REPO / name, source / name)
    for name in ("controller", "stages"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = run_captured(
        [
            *(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
            *("--only-binary=:all:", "--no-binary=sluice", "-c", source / "requirements.lock"),
            source,
        ],
        cwd=tmp_path,
        timeout=540,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    installed = {
        canonical(line.split("==")[0])
        for line in subprocess.run(
            [str(python), "-m", "pip", "freeze", "--disable-pip-version-check"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    }
    # The ml extra's (and the Kubernetes client, 130 MB the operator never imports) stay out.
    assert not installed & {"tensorflow-cpu", "tensorflow", "kserve", "kubernetes", "gitpython"}, installed

    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    every_module = [python, "-c", IMPORT_ALL, "controller.operator", "controller.cli"]
    # in tmp_path, not the source folder: the installed package is imported
    imports = run_captured(every_module, cwd=tmp_path, env=env, timeout=120)
    assert imports.returncode == 0, imports.stdout + imports.stderr
    helped = run_captured([venv / "bin" / "sluice", "operator", "--help"], cwd=tmp_path, env=env)
    assert helped.returncode == 0, helped.stdout + helped.stderr
    assert "--namespace" in helped.stdout, helped.stdout
