"""The layering of the code base, as a test: which package may import which, read from the source.

Every `import` and `from ... import` counts, wherever it is written: at module level, inside a
function (the CLI imports lazily), or under `if TYPE_CHECKING:`.

    shared base  <-  spec  <-  compiler  <-  executors, operator  <-  cli
                     spec  <-  api (the Kubernetes resources)  <-  operator, cli

- The shared base (`controller/__init__.py` and the small top-level modules and packages listed in
  BASE: settings, gitsafe, units, digests, protocol, resources, runref, serving) may be imported from
  anywhere and imports nothing but the base.
- Inside `controller/` a layer imports only the layers ALLOWED lists for it. `cli` is the only
  part of `controller/` that imports `stages/`, and only `stages.endpoints` (the local endpoint
  registry behind `sluice endpoints` and `sluice predict`; the local executor runs stages as
  processes and never imports them).
- `stages/` (the step programs) import only STAGES_MAY_IMPORT of `controller/`: never the spec, the
  compiler, the executors, the operator or the CLI.
- Nothing in `controller/` or `stages/` imports `tests`, `testsupport` or `benchmarks`;
  `benchmarks/` and `testsupport/` never import `tests`.
- No import cycles among the modules of `controller/executors/local`.

Also the compiler's purity (no environment, files, clock, randomness, processes) and the spec's
(no environment, clock, randomness, processes; files only in its loader functions), and that the
compiler passes `allow_local` to every `controller.gitsafe` check instead of letting it read the
environment.

The checker takes the root of a source tree, so the tests at the end run it on small throwaway
trees with an arrow pointing the wrong way and check that it is reported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TOPS = ("controller", "stages", "benchmarks", "testsupport", "tests")

# controller's shared base: importable from everywhere, importing only the base
BASE = {
    "controller",
    "controller.settings",
    "controller.gitsafe",
    "controller.units",
    "controller.digests",
    "controller.protocol",
    "controller.tracking_spool",
    "controller.resources",
    "controller.schedules",  # cron expressions and time zones (cronsim, zoneinfo)
    "controller.runref",  # what a RUN argument means, for local and cluster runs alike
    "controller.serving",  # the serving-manifest registry (a package)
}
# controller's layers: the subpackage a module is in
LAYERS = ("spec", "compiler", "api", "executors", "operator", "cli")
ALLOWED: dict[str, set[str]] = {
    "base": {"base"},
    "spec": {"base"},
    "compiler": {"base", "spec"},
    "api": {"base", "spec"},
    "executors": {"base", "spec", "compiler"},
    "operator": {"base", "spec", "compiler", "api"},
    "cli": {"base", "spec", "compiler", "api", "executors", "operator"},
}
# the one arrow from controller to stages: the CLI reads the local endpoint registry
CONTROLLER_MAY_IMPORT_FROM_STAGES = {"controller.cli": {"stages.endpoints"}}
# What stages import of controller, matching the code after the serving manifests moved out of
# controller.compiler into the controller.serving registry: the shared base and nothing above it.
STAGES_MAY_IMPORT = BASE
NO_CYCLES_IN = ("controller.executors.local",)

# --- purity -----------------------------------------------------------------------------------
PURE = ("controller.compiler", "controller.spec")
ENV_CALLS = {"os.environ", "os.getenv", "os.putenv", "os.unsetenv", "environ", "getenv"}
# controller.settings readers
EDGE_SETTINGS = {"allow_local_git", "allow_cluster_git_hosts", "stages_image", "sluice_home"}
IMPURE_MODULES = {
    "time": "clock",
    "datetime": "clock",
    "random": "randomness",
    "secrets": "randomness",
    "uuid": "randomness",
    "subprocess": "processes",
    "socket": "network",
    "urllib": "network",
    "http": "network",
    "tempfile": "files",
    "shutil": "files",
    "glob": "files",
}
FILE_METHODS = {
    "read_text",
    "read_bytes",
    "write_text",
    "write_bytes",
    "exists",
    "is_dir",
    "is_file",
    "glob",
    "rglob",
    "iterdir",
    "stat",
    "mkdir",
    "unlink",
    "touch",
}
# the spec's loader reads files (a workflow, the schema shipped in the package, extension files)
SPEC_MAY_READ_FILES = {
    "controller.spec.yamlload": {"read_limited"},
    "controller.spec.schema": {"workflow_schema", "generated_validator_code"},
    "controller.spec.extension_files": {"read_extension_files", "_description_files", "_read"},
}
# gitsafe functions that default to the environment without these keywords
GITSAFE_SWITCHED = {"validate_url": ("allow_local", "allow_cluster"), "git_env": ("allow_local",)}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (the most specific one that exists in the tree)
    line: int
    lazy: bool  # inside a function or under `if TYPE_CHECKING:`

    def __str__(self) -> str:
        return f"{self.source}:{self.line} imports {self.target}" + (" (lazily)" if self.lazy else "")


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for top in TOPS:
        for path in sorted((root / top).rglob("*.py")) if (root / top).is_dir() else ():
            if "__pycache__" not in path.parts:
                found[module_name(root, path)] = path
    return found


def _resolve(known: set[str], module: str, names: Iterable[str]) -> Iterator[str]:
    """`from module import name`: the submodule when `name` is one, else the module."""
    names = list(names)
    plain = False
    for name in names:
        if f"{module}.{name}" in known:
            yield f"{module}.{name}"
        else:
            plain = True
    if plain or not names:
        yield module


def imports(root: Path) -> list[Import]:
    modules = sources(root)
    known = set(modules)
    found: list[Import] = []
    for source, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        package = source if path.name == "__init__.py" else source.rpartition(".")[0]
        for node, lazy in _walk(tree, False):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.append(Import(source, alias.name, node.lineno, lazy))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                for target in _resolve(known, module, (a.name for a in node.names)):
                    found.append(Import(source, target, node.lineno, lazy))
    return found


def _walk(node: ast.AST, lazy: bool) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            inner = True
        yield child, inner
        yield from _walk(child, inner)


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _in(module: str, allowed: set[str]) -> bool:
    """`module` is one of `allowed` or inside one of them (`controller` itself only as itself)."""
    return any(module == m or (m != "controller" and _within(module, m)) for m in allowed)


def layer(module: str) -> str | None:
    """base, spec, compiler, api, executors, operator or cli for a module of controller."""
    if not _within(module, "controller"):
        return None
    if _in(module, BASE):
        return "base"
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LAYERS:
        return parts[1]
    return "unlisted"  # a new top-level module of controller: decide where it belongs


def top(module: str) -> str:
    return module.split(".")[0]


def layering_violations(root: Path) -> list[str]:
    problems = [
        f"{module} is in no layer (add it to BASE or LAYERS)"
        for module in sources(root)
        if layer(module) == "unlisted"
    ]
    for found in imports(root):
        source, target = found.source, found.target
        src_top, dst_top = top(source), top(target)
        if dst_top not in TOPS or src_top == "tests":
            continue
        if dst_top == "tests":
            problems.append(f"{found}: only tests import tests")
            continue
        if src_top == "controller":
            if dst_top in ("testsupport", "benchmarks"):
                problems.append(f"{found}: controller never imports {dst_top}")
            elif dst_top == "stages":
                allowed = next(
                    (mods for pkg, mods in CONTROLLER_MAY_IMPORT_FROM_STAGES.items() if _within(source, pkg)),
                    set(),
                )
                if not any(_within(target, m) for m in allowed):
                    problems.append(f"{found}: controller imports stages only in the CLI (stages.endpoints)")
            else:
                here, there = layer(source), layer(target)
                if "unlisted" in (here, there):
                    continue  # reported once, above
                if here is not None and there is not None and there != here and there not in ALLOWED[here]:
                    problems.append(f"{found}: {here} must not import {there}")
        elif src_top == "stages":
            if dst_top in ("testsupport", "benchmarks"):
                problems.append(f"{found}: stages never import {dst_top}")
            elif dst_top == "controller" and not _in(target, STAGES_MAY_IMPORT):
                problems.append(f"{found}: stages import only the shared base of controller")
        elif src_top == "testsupport" and dst_top == "benchmarks":
            problems.append(f"{found}: testsupport never imports benchmarks")
    for package in NO_CYCLES_IN:
        problems += [f"import cycle in {package}: {' -> '.join(c)}" for c in cycles(root, package)]
    return sorted(set(problems))


def cycles(root: Path, package: str) -> list[list[str]]:
    """One cycle per strongly connected component of the modules inside `package`."""
    graph: dict[str, set[str]] = {}
    for found in imports(root):
        inside = _within(found.source, package) and _within(found.target, package)
        if inside and found.target not in (found.source, package):
            graph.setdefault(found.source, set()).add(found.target)
    found_cycles: list[list[str]] = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []

    def connect(node: str) -> None:  # Tarjan
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found_cycles.append([*sorted(component), sorted(component)[0]])

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found_cycles


# --- purity -----------------------------------------------------------------------------------


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _functions(tree: ast.AST) -> Iterator[tuple[ast.AST, str]]:
    """Every node with the name of the outermost function it is in ('' at module level)."""

    def visit(node: ast.AST, where: str) -> Iterator[tuple[ast.AST, str]]:
        for child in ast.iter_child_nodes(node):
            inner = where
            if not where and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = child.name
            yield child, inner
            yield from visit(child, inner)

    return visit(tree, "")


def _env_reads(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Environment reads outside any function: they run when the module is imported."""
    for node, function in _functions(tree):
        if function or not isinstance(node, ast.Attribute | ast.Name):
            continue
        dotted = _dotted(node)
        if dotted in ENV_CALLS and (dotted.startswith("os.") or dotted in ("environ", "getenv")):
            yield node.lineno, dotted


def purity_violations(root: Path) -> list[str]:
    problems: list[str] = []
    for module, path in sources(root).items():
        if _in(module, BASE) and not any(_within(module, p) for p in PURE):
            # the shared base reads no environment at import: the edges call its functions
            text = path.read_text(encoding="utf-8")
            problems += [
                f"{module}:{line}: reads the environment at import ({what})"
                for line, what in _env_reads(ast.parse(text))
            ]
            continue
        if not any(_within(module, p) for p in PURE):
            continue
        compiler = _within(module, "controller.compiler")
        may_read = SPEC_MAY_READ_FILES.get(module, set())
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node, function in _functions(tree):
            at = f"{module}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for name in names:
                    kind = IMPURE_MODULES.get(name.split(".")[0])
                    if kind and not (kind == "files" and not compiler and function in may_read):
                        problems.append(f"{at}: imports {name} ({kind})")
                if isinstance(node, ast.ImportFrom) and node.module in ("os", "controller.settings"):
                    for alias in node.names:
                        if alias.name in ENV_CALLS | EDGE_SETTINGS:
                            problems.append(f"{at}: imports {node.module}.{alias.name} (the environment)")
            elif isinstance(node, ast.Attribute | ast.Name):
                dotted = _dotted(node)
                if dotted in ENV_CALLS and (dotted.startswith("os.") or dotted in ("environ", "getenv")):
                    problems.append(f"{at}: reads the environment ({dotted})")
                if isinstance(node, ast.Attribute) and node.attr in EDGE_SETTINGS and "settings" in dotted:
                    problems.append(f"{at}: calls the edge's settings.{node.attr} (pass it as an argument)")
            if isinstance(node, ast.Call):
                name = _dotted(node.func)
                method = node.func.attr if isinstance(node.func, ast.Attribute) else None
                reads_files = name in ("open", "io.open", "Path", "pathlib.Path") or method in FILE_METHODS
                if reads_files and (compiler or function not in may_read):
                    problems.append(f"{at}: file system access ({ast.unparse(node.func)}) outside the loader")
                switches = GITSAFE_SWITCHED.get(name.split(".")[-1], ()) if compiler else ()
                given = {k.arg for k in node.keywords}
                for switch in (s for s in switches if s not in given):
                    problems.append(f"{at}: {name}() without {switch}= reads the environment itself")
    return sorted(set(problems))


# --- the rules, on this repository ---------------------------------------------------------------


def test_arrows_point_one_way() -> None:
    assert layering_violations(REPO) == []


def test_the_compiler_and_the_spec_are_pure() -> None:
    assert purity_violations(REPO) == []


def test_the_checker_sees_this_repository() -> None:
    """Guard against a checker that passes because it found nothing."""
    found = imports(REPO)
    assert any(
        i.source.startswith("controller.compiler") and i.target.startswith("controller.spec") for i in found
    )
    assert any(i.source.startswith("controller.cli") and i.lazy for i in found)
    assert any(i.source.startswith("stages") and i.target.startswith("controller") for i in found)
    assert any(i.source.startswith("benchmarks") and i.target.startswith("testsupport") for i in found)
    assert {layer(m) for m in sources(REPO) if m.startswith("controller")} == {"base", *LAYERS}


def test_benchmarks_do_not_import_tests() -> None:
    assert [i for i in imports(REPO) if top(i.source) == "benchmarks" and top(i.target) == "tests"] == []


# --- the checker, on throwaway trees with an arrow the wrong way -------------------------------


def tree(root: Path, files: dict[str, str]) -> Path:
    for top_package in TOPS:
        (root / top_package).mkdir(parents=True, exist_ok=True)
        (root / top_package / "__init__.py").touch()
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(root).parents:
            if str(parent) != ".":
                (root / parent / "__init__.py").touch()
        path.write_text(text)
    return root


# the throwaway trees, as the code they hold: a clean tree and cases that break it
CASES = yaml.safe_load((REPO / "tests" / "data" / "layering_cases.yaml").read_text(encoding="utf-8"))
FINE: dict[str, str] = CASES["fine_tree"]


def cases(group: str) -> list[tuple[str, str, str]]:
    return [(case["file"], case["code"], case["reported"]) for case in CASES[group]]


def test_a_tree_whose_arrows_point_one_way_passes(tmp_path: Path) -> None:
    assert layering_violations(tree(tmp_path, FINE)) == []


# the first case is the throwaway wrong-way import: the spec importing the compiler
@pytest.mark.parametrize(("name", "text", "reported"), cases("wrong_way_arrows"))
def test_a_wrong_way_arrow_is_reported(tmp_path: Path, name: str, text: str, reported: str) -> None:
    files = {**FINE, name: FINE.get(name, "") + text}
    problems = layering_violations(tree(tmp_path, files))
    assert any(reported in p for p in problems), problems


@pytest.mark.parametrize(("name", "text", "reported"), cases("impure"))
def test_an_impure_compiler_or_spec_is_reported(tmp_path: Path, name: str, text: str, reported: str) -> None:
    pure: dict[str, str] = CASES["pure_tree"]
    root = tree(tmp_path, pure)
    assert purity_violations(root) == []
    problems = purity_violations(tree(tmp_path, {name: text}))
    assert any(reported in p for p in problems), problems
