"""Hostile YAML through `sluice validate`, `sluice compile` and `sluice run` (real subprocesses).

Each document is refused with its one-line error and exit 1, within the CPU budget, executing
nothing and writing nothing. Also hostile YAML where Sluice reads other files: a compiled
PipelineRun given to `sluice run`, FuseML extension descriptions and `--input` values.
"""

from __future__ import annotations

import pytest

from tests.adversarial.conftest import Sandbox, assert_clean_failure, run_sluice

HEAD = "apiVersion: sluice.dev/v1alpha1\nkind: Workflow\nmetadata: {name: demo}\n"
STEP = "spec:\n  steps:\n    - {name: a, image: busybox, script: echo hi}\n"


def alias_bomb() -> str:
    """Billion laughs: nine levels of nine aliases each (9**9 strings if expanded)."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 10):
        refs = ",".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return HEAD + "\n".join(lines) + "\n" + STEP


def deep(kind: str) -> str:
    if kind == "flow":
        return HEAD + "spec: " + "[" * 100_000 + "]" * 100_000 + "\n"
    return HEAD + "spec:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 200)) + " " * 200 + "x: 1\n"


def big_file() -> str:
    """2.5 MiB of otherwise valid YAML (a long description)."""
    return HEAD + "spec:\n  description: " + "x" * (2_621_440) + "\n" + STEP[6:]


# (case id, document, fragment of the message every command prints)
DOCUMENTS: list[tuple[str, str | bytes, str]] = [
    ("alias-bomb", alias_bomb(), "anchors (&name) are not allowed"),
    ("alias-without-anchor", HEAD + "spec: *lol\n", "aliases (*name) are not allowed"),
    ("merge-key", HEAD + "base: &b {x: 1}\nspec:\n  <<: *b\n", "anchors (&name) are not allowed"),
    ("nesting-100000-flow", deep("flow"), "nesting deeper than 64 levels"),
    ("nesting-200-block", deep("block"), "nesting deeper than 64 levels"),
    (
        "python-object-apply",
        HEAD + 'spec: !!python/object/apply:os.system ["touch ../PWNED"]\n',
        "is not allowed",
    ),
    ("python-name", HEAD + "spec: !!python/name:os.system ''\n", "is not allowed"),
    (
        "python-object-new",
        HEAD + "spec: !!python/object/new:subprocess.Popen [[touch, ../PWNED]]\n",
        "is not allowed",
    ),
    ("binary-tag", HEAD + "spec: !!binary aGVsbG8=\n", "is not allowed"),
    ("duplicate-key", HEAD + STEP + "spec: {}\n", "duplicate key 'spec'"),
    ("duplicate-nested-key", HEAD + "spec:\n  steps: []\n  steps: []\n", "duplicate key 'steps'"),
    ("several-documents", HEAD + STEP + "---\n" + HEAD + STEP, "exactly one YAML document is allowed"),
    ("file-2.5-MiB", big_file(), "file is larger than the limit of 1048576 bytes"),
    ("tab-indentation", HEAD + "spec:\n\tsteps: []\n", "tabs cannot indent YAML; use spaces"),
    ("invalid-utf8", (HEAD + "spec: {description: caf").encode() + b"\xe9\xff}\n", "file is not valid UTF-8"),
    ("utf16", (HEAD + STEP).encode("utf-16"), "file is not valid UTF-8"),
    ("nul-byte", HEAD + "spec: {description: a\x00b}\n", "file contains a NUL character"),
    ("control-character", HEAD + "spec: {description: a\x1bb}\n", "character #x001b is not allowed"),
    (
        "integer-of-5000-digits",
        HEAD + "spec: {steps: [{name: a, retries: " + "9" * 5000 + "}]}\n",
        "is not a valid int",
    ),
    ("complex-key", HEAD + "spec:\n  ? [a, b]\n  : 1\n", "mapping keys must be scalars"),
    ("empty-file", "", "the file holds no YAML document"),
    ("only-a-comment", "# nothing here\n", "the file holds no YAML document"),
    ("a-list-not-a-mapping", "- 1\n- 2\n", "a workflow must be a mapping"),
    ("unclosed-flow", HEAD + "spec: {steps: [\n", "YAML syntax error"),
]
COMMANDS = ("validate", "compile", "run")


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("case", "document", "fragment"), DOCUMENTS, ids=[d[0] for d in DOCUMENTS])
def test_hostile_yaml_is_refused_cleanly(
    sandbox: Sandbox, command: str, case: str, document: str | bytes, fragment: str
) -> None:
    path = sandbox.write(f"{case}.yaml", document)
    outcome = run_sluice(sandbox, command, str(path))
    assert_clean_failure(outcome, fragment)
    assert str(path) in outcome.stderr, "the error names the file"
    assert not (sandbox.home / "runs").exists() or not any((sandbox.home / "runs").iterdir())
    sandbox.assert_untouched()


def test_error_names_line_and_column_of_the_payload(sandbox: Sandbox) -> None:
    path = sandbox.write("tagged.yaml", HEAD + 'spec: !!python/object/apply:os.system ["touch ../PWNED"]\n')
    outcome = run_sluice(sandbox, "validate", "--format", "json", str(path))
    assert_clean_failure(outcome)
    assert (
        '"code": "yaml.tag"' in outcome.stdout + outcome.stderr
        and '"line": 4' in outcome.stdout + outcome.stderr
    )


def test_pipelinerun_file_with_python_tag_is_not_executed(sandbox: Sandbox) -> None:
    """`sluice run` also accepts compiled PipelineRuns: they go through the same hardened parser."""
    path = sandbox.write(
        "pr.yaml",
        "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata: !!python/object/apply:os.system "
        '["touch ../PWNED"]\nspec: {}\n',
    )
    outcome = run_sluice(sandbox, "run", str(path))
    assert_clean_failure(outcome, "is not allowed")
    sandbox.assert_untouched()


def test_pipelinerun_file_nested_100000_deep(sandbox: Sandbox) -> None:
    path = sandbox.write(
        "pr.yaml", "apiVersion: tekton.dev/v1\nkind: PipelineRun\nspec: " + "[" * 100_000 + "\n"
    )
    assert_clean_failure(run_sluice(sandbox, "run", str(path)), "nesting deeper than 64 levels")
    sandbox.assert_untouched()


@pytest.mark.parametrize("command", ("validate", "compile", "run"))
def test_a_folder_or_a_missing_file(sandbox: Sandbox, command: str) -> None:
    for target in (sandbox.root / "inputs", sandbox.root / "inputs" / "missing.yaml"):
        outcome = run_sluice(sandbox, command, str(target))
        assert_clean_failure(outcome)
    sandbox.assert_untouched()


FUSEML = """\
name: with-extension
steps:
  - name: trainer
    image: ghcr.io/fuseml/trainer:v1
    extensions:
      - {name: store, product: mlflow, service_resource: s3}
"""


@pytest.mark.parametrize("command", ("compile", "run"))
@pytest.mark.parametrize(
    ("case", "document", "fragment"),
    [
        # read with the workflow loader's hardened parser: refused with file:line:col
        ("nesting-100000", "[" * 100_000 + "]" * 100_000, "description.yaml:1:1001: invalid YAML: nesting"),
        ("python-tag", 'name: !!python/object/apply:os.system ["touch ../../PWNED"]\n', "invalid YAML"),
        ("alias-bomb", alias_bomb(), "description.yaml:4:5: invalid YAML: anchors (&name) are not allowed"),
        ("invalid-utf8", b"name: \xff\xfe\n", "description.yaml:1:7: file is not valid UTF-8"),
        (
            "2.5-MiB",
            "name: x\ndescription: " + "y" * 2_621_440 + "\n",
            "larger than the limit of 1048576 bytes",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 20 else "",
)
def test_hostile_extension_descriptions(
    sandbox: Sandbox, command: str, case: str, document: str | bytes, fragment: str
) -> None:
    workflow = sandbox.write("wf.yaml", FUSEML)
    folder = sandbox.root / "inputs" / "extensions" / case
    folder.mkdir(parents=True)
    (folder / "description.yaml").write_bytes(document if isinstance(document, bytes) else document.encode())
    outcome = run_sluice(sandbox, command, str(workflow), "--extensions", str(folder))
    assert_clean_failure(outcome, fragment)
    sandbox.assert_untouched()


@pytest.mark.parametrize("command", ("compile", "run"))
def test_input_value_nested_50000_deep_is_just_a_wrong_value(sandbox: Sandbox, command: str) -> None:
    workflow = sandbox.write(
        "wf.yaml",
        HEAD + "spec:\n  inputs: [{name: n, type: integer, default: 1}]\n"
        "  steps: [{name: a, image: busybox, script: 'echo {{ inputs.n }}'}]\n",
    )
    outcome = run_sluice(sandbox, command, str(workflow), "--input", "n=" + "[" * 50_000)
    assert_clean_failure(outcome, "must be an integer")
    sandbox.assert_untouched()
