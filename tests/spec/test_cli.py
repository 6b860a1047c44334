"""`sluice validate` and `sluice schema` as a user runs them: a real subprocess, exit codes, stderr lines."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.spec.helpers import EXAMPLES, HEAD, REPO, native

LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<path>\$\S*): (?P<message>.+)$")


def sluice(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "controller.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


MANY_ERRORS = native("""
    spec:
      inputs:
        - {name: n, type: integer, default: 1}
        - {name: n, type: integer, default: 2}
      steps:
        - name: a
          image: busybox
          args: ["{{ inputs.missing }}"]
          runAfter: [zz, b]
        - name: b
          image: busybox
          args: ["{{ steps.a.outputs.nothing }}"]
          outputs: [{name: o}]
    """)


def test_the_examples_validate_on_the_command_line() -> None:
    result = sluice("validate", *(str(p.relative_to(REPO)) for p in EXAMPLES))
    assert result.returncode == 0, result.stderr
    for path in EXAMPLES:
        assert f"{path.relative_to(REPO)}: ok" in result.stdout
    assert result.stderr == ""


def test_a_folder_is_searched_for_workflows() -> None:
    result = sluice("validate", "workflows")
    assert result.returncode == 0
    assert result.stdout.count(": ok (") == len(EXAMPLES)


def test_every_error_of_a_file_is_one_line_on_stderr_sorted_by_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(MANY_ERRORS)
    result = sluice("validate", str(bad))
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert [(int(m["line"]), m["path"]) for m in parsed] == [  # type: ignore[index]
        (7, "$.spec.inputs[1].name"),
        (11, "$.spec.steps[0].args[0]"),
        (12, "$.spec.steps[0].runAfter[0]"),
        (13, "$.spec.steps[1].name"),
        (15, "$.spec.steps[1].args[0]"),
    ]
    assert {m["file"] for m in parsed} == {str(bad)}  # type: ignore[index]
    assert "input 'n' is declared twice" in lines[0]
    assert "steps form a cycle" in lines[3]


def test_json_format_is_machine_readable(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(MANY_ERRORS)
    result = sluice("validate", "--format", "json", str(bad), str(EXAMPLES[0]))
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    invalid, valid = report["files"]
    assert (invalid["file"], invalid["valid"], valid["valid"]) == (str(bad), False, True)
    assert [e["code"] for e in invalid["errors"]] == [
        "spec.duplicate-input",
        "ref.unknown-input",
        "dag.unknown-step",
        "dag.cycle",
        "ref.unknown-output",
    ]
    assert set(invalid["errors"][0]) == {"file", "line", "col", "path", "code", "message"}
    assert valid["errors"] == []


def test_syntax_errors_have_no_path(tmp_path: Path) -> None:
    bad = tmp_path / "syntax.yaml"
    bad.write_text(HEAD + "spec: {steps: [\n")
    result = sluice("validate", str(bad))
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert re.match(rf"^{re.escape(str(bad))}:\d+:\d+: YAML syntax error: ", line), line


def test_errors_are_capped_and_the_rest_counted(tmp_path: Path) -> None:
    bad = tmp_path / "many.yaml"
    steps = "".join(f"    - {{name: s{i}, image: busybox, colour: red}}\n" for i in range(60))
    bad.write_text(HEAD + "spec:\n  steps:\n" + steps)
    result = sluice("validate", "--format", "json", str(bad))
    (entry,) = json.loads(result.stdout)["files"]
    assert (len(entry["errors"]), entry["omitted"]) == (50, 10)
    assert [e["line"] for e in entry["errors"]] == list(range(6, 56))
    text = sluice("validate", str(bad))
    assert text.returncode == 1
    assert text.stderr.splitlines()[-1] == f"{bad}: ... and 10 more error(s)"


def test_a_long_bad_value_is_never_echoed_in_full(tmp_path: Path) -> None:
    bad = tmp_path / "long.yaml"
    name = "X" * 10_000
    bad.write_text(
        f"apiVersion: sluice.dev/v1alpha1\nkind: Workflow\nmetadata: {{name: {name}}}\n"
        "spec: {steps: [{name: a, image: busybox}]}\n"
    )
    result = sluice("validate", str(bad))
    assert result.returncode == 1
    assert "X" * 100 not in result.stderr
    assert all(len(line) < 300 for line in result.stderr.splitlines())
    assert "$.metadata.name" in result.stderr


def test_hostile_files_end_in_a_clean_exit(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("spec: " + "[" * 100_000 + "]" * 100_000)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a: " + b"x" * int(2.5 * 1024 * 1024))
    result = sluice("validate", str(deep), str(big), "--format", "json")
    assert result.returncode == 1  # not killed by a signal (a segfault would be negative)
    codes = [f["errors"][0]["code"] for f in json.loads(result.stdout)["files"]]
    assert codes == ["yaml.too-deep", "file.too-large"]


def test_usage_errors_exit_2() -> None:
    assert sluice("validate").returncode == 2
    assert sluice("validate", "--format", "xml", str(EXAMPLES[0])).returncode == 2
    assert sluice("validate", "--no-such-option", str(EXAMPLES[0])).returncode == 2


def test_a_missing_file_is_an_invalid_input(tmp_path: Path) -> None:
    result = sluice("validate", str(tmp_path / "nope.yaml"))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"{tmp_path / 'nope.yaml'}:0:0: No such file or directory"]


def test_schema_command_prints_the_draft_2020_12_schema() -> None:
    result = sluice("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema == json.loads((REPO / "controller/spec/schema/workflow.schema.json").read_text())


@pytest.mark.parametrize("argv", [["--help"], ["validate", "workflows/sum-of-two.yaml"], ["schema"]])
def test_help_validate_and_schema_never_import_tensorflow_or_kubernetes(argv: list[str]) -> None:
    # the commands people run most must start fast: none of the heavy libraries
    probe = (
        "import sys, runpy\n"
        f"sys.argv = ['sluice', *{argv!r}]\n"
        "try:\n"
        "    runpy.run_module('controller.cli.main', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = {'tensorflow', 'keras', 'kserve', 'kubernetes', 'kopf'}\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & heavy)\n"
        "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert "HEAVY=\n" in result.stderr or result.stderr.rstrip().endswith("HEAVY="), result.stderr[-500:]
