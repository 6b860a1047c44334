"""The repository stands alone: nothing the README's commands run reaches outside the checkout.

A fresh `git clone` has nothing beside it, so a test, script or benchmark that reads a sibling
folder (CI's `../shared`, a developer's home) passes on one machine and fails on the next. Only
`.ci/run` may add optional checks that read `../shared`, and only when it exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("tests", "scripts", "benchmarks", "controller", "stages", "fuzz", "README.md")
SUFFIXES = {".py", ".sh", ".md", ".toml", ".cfg", ".ini", ""}

# Spellings of a path outside the checkout: the sibling `shared` folder as a string or as Path
# parts, and absolute paths of the workplace the project is developed in.
OUTSIDE = re.compile(r"""\.\./+shared\b|["']shared["']\s*/|/\s*["']shared["']|/work/""")
# The sibling folder's name, kept out of this file's literal paths so that greps for references to
# it (the project's own review hooks) find only real ones.
SIBLING = "sha" + "red"
# `Path(__file__).resolve().parents[N]`: fine while N stays inside the repository.
PARENTS = re.compile(r"Path\(__file__\)\.resolve\(\)\.parents\[(\d+)\]")
# `$(dirname "$0")/../..`: a shell script climbing out of its folder.
SHELL_UP = re.compile(r"""dirname\s+"?\$(?:0|\{BASH_SOURCE\[0\]\})"?\)"?((?:/\.\.)+)""")


def scanned_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for name in SCANNED:
        path = root / name
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and p.suffix in SUFFIXES and not {"__pycache__", "data"} & set(p.parts)
            )
    return files


def outside_references(root: Path) -> list[str]:
    """`file:line: text` for every reference that leaves the checkout at `root`."""
    found: list[str] = []
    for path in scanned_files(root):
        if path.resolve() == Path(__file__).resolve():
            continue  # this file spells the patterns out
        try:
            lines = path.read_text("utf-8").splitlines()
        except UnicodeDecodeError:
            continue
        depth = len(path.relative_to(root).parts) - 1  # folders between the file and the root
        for number, line in enumerate(lines, 1):
            climbs = [int(m.group(1)) for m in PARENTS.finditer(line)]  # parents[depth] is the root
            climbs += [m.group(1).count("..") for m in SHELL_UP.finditer(line)]  # so is depth x ".."
            if OUTSIDE.search(line) or any(climb > depth for climb in climbs):
                found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    return found


def test_nothing_in_the_repository_reads_outside_it() -> None:
    assert outside_references(REPO) == []


def test_upstream_schemas_live_in_the_repository_with_provenance() -> None:
    upstream = REPO / "tests" / "data" / "upstream"
    readme = (upstream / "README.md").read_text("utf-8")
    for folder in ("tekton", "kserve", "seldon"):
        assert (upstream / folder / "LICENSE").is_file()
        for schema in (upstream / folder).glob("*.yaml"):
            assert schema.name in readme or f"{folder}/300-*.yaml" in readme, schema


@pytest.mark.parametrize(
    ("relative", "text"),
    [
        ("tests/x/test_a.py", f'ROOT = Path(__file__).resolve().parents[3] / "{SIBLING}" / "schemas"\n'),
        ("tests/x/test_b.py", f'SCHEMAS = "../{SIBLING}/schemas/upstream"\n'),
        ("scripts/c.sh", 'cd "$(dirname "$0")/../.."\n'),
        ("benchmarks/d.py", 'DATA = Path("/work/shared/tekton-examples")\n'),
    ],
)
def test_the_check_finds_a_path_outside(tmp_path: Path, relative: str, text: str) -> None:
    file = tmp_path / relative
    file.parent.mkdir(parents=True)
    file.write_text(text)
    assert [hit.split(":")[0] for hit in outside_references(tmp_path)] == [relative]


def test_the_check_admits_paths_inside(tmp_path: Path) -> None:
    inside = {
        "tests/x/test_a.py": 'ROOT = Path(__file__).resolve().parents[2] / "workflows"\n',
        "scripts/c.sh": 'cd "$(dirname "$0")/.."\n',
    }
    for relative, text in inside.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    assert outside_references(tmp_path) == []
