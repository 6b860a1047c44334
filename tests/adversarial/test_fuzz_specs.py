"""Property fuzzing of the whole front half: near-valid workflows -> load -> validate -> compile.

Hypothesis mutates the shipped example workflows (and the compiler's test workflows): it deletes,
replaces and adds fields, renames steps, rewires `{{ ... }}` references, swaps value types and
feeds odd input values. Every input must end as a typed error (SpecError, CompileError) or as a
PipelineRun that passes the upstream Tekton schemas, the restricted-pod rules, one claim per
TaskRun and least privilege per task. Anything else (another exception, an invalid or
unrestricted PipelineRun) is a crash.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.compiler import CodesetSource, CompileError, ExtensionRegistry, compile_run
from controller.compiler.containers import security_context
from controller.spec import SpecError, validate_document
from controller.spec.extension_files import read_extension_files
from tests.adversarial.conftest import REPO
from tests.compiler.test_run_pods import check_run_pods
from tests.compiler.upstream import shared
from tests.spec.helpers import json_paths

EXAMPLES = sorted((REPO / "workflows").glob("*.yaml")) + sorted(
    (REPO / "tests/compiler/workflows").glob("*.yaml")
)
DOCUMENTS = [yaml.safe_load(p.read_text()) for p in EXAMPLES]
REGISTRY = ExtensionRegistry.from_sources(read_extension_files([REPO / "tests" / "compiler" / "extensions"]))
SHA = "4f1c0a7e9b2d3c5a6e8f0b1d2c3a4e5f6a7b8c9d"
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
OUTCOMES: dict[str, int] = {"spec-error": 0, "compile-error": 0, "pipelinerun": 0}

NAMES = st.sampled_from(
    [
        "train",
        "prepare",
        "evaluate",
        "deploy",
        "x",
        "a-b",
        "summary",
        "clone-src",
        "Bad_Name",
        "",
        "-x",
        "a" * 70,
    ]
)
EXPRESSIONS = st.sampled_from(
    [
        "{{ inputs.samples }}",
        "{{ inputs.nope }}",
        "{{ steps.train.outputs.model }}",
        "{{ steps.nope.outputs.x }}",
        "{{ steps.prepare.outputs.dataset }}",
        "{{ inputs.src.path }}",
        "{{ extensions.mlflow-store.url }}",
        "{{ steps.train.outputs.val-mae }} <= 1",
        "{{",
        "}}",
        "$(params.x)",
        "$(tasks.a.results.b)",
        "{{ inputs.samples }} > {{ inputs.max-mae }}",
        "$(context.taskRun.namespace)",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    EXPRESSIONS,
    NAMES,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=12), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = st.sampled_from(
    [
        "name",
        "uses",
        "image",
        "command",
        "args",
        "script",
        "with",
        "env",
        "resources",
        "retries",
        "timeout",
        "when",
        "runAfter",
        "outputs",
        "inputs",
        "workingDir",
        "securityContext",
        "privileged",
        "volumes",
        "extensions",
        "description",
        "type",
        "default",
        "value",
        "steps",
        "runPolicy",
        "artifacts",
        "limits",
        "requests",
        "cpu",
        "memory",
        "codeset",
        "path",
        "hostNetwork",
    ]
)


def container_at(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


@st.composite
def near_valid(draw: st.DrawFn) -> dict[str, Any]:
    doc = copy.deepcopy(draw(st.sampled_from(DOCUMENTS)))
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):  # mostly one mutation: near-valid
        paths = json_paths(doc)
        path = draw(st.sampled_from(paths))
        if not path:
            continue
        parent, key = container_at(doc, path[:-1]), path[-1]
        action = draw(st.sampled_from(["delete", "replace", "add", "duplicate", "expression", "same-type"]))
        if action == "delete":
            del parent[key]
        elif action == "replace":
            parent[key] = draw(VALUES)
        elif action == "expression":
            parent[key] = draw(EXPRESSIONS)
        elif action == "add" and isinstance(parent, dict):
            parent[draw(FIELDS)] = draw(VALUES)
        elif action == "same-type" and isinstance(parent[key], str):
            parent[key] = draw(st.one_of(EXPRESSIONS, NAMES, st.text(max_size=20)))
        elif (
            action == "same-type"
            and isinstance(parent[key], int | float)
            and not isinstance(parent[key], bool)
        ):
            parent[key] = draw(st.one_of(st.integers(-5, 10**6), st.floats(-1e6, 1e6)))
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
        else:
            parent[key] = draw(NAMES)
    return doc


# The compiler's restricted step context (tests/compiler/test_mapping.py pins it key by key): no
# fuzzed spec may loosen any part of it.
RESTRICTED = security_context()
# the one volume a task has: its writable /tmp (never a workflow's own)
TMP_VOLUMES = [{"name": "tmp", "emptyDir": {}}]
TMP_MOUNTS = [{"name": "tmp", "mountPath": "/tmp"}]


def check_pipelinerun(run: dict[str, Any]) -> None:
    errors = shared().errors(run)
    assert errors == [], errors[:5]
    check_run_pods(run)  # one claim per task, restricted pods, least privilege, labelled claims
    spec = run["spec"]
    pod = (spec.get("taskRunTemplate") or {}).get("podTemplate") or {}
    assert pod.get("securityContext", {}).get("runAsNonRoot") is True
    assert "hostNetwork" not in pod and "volumes" not in pod
    pipeline = spec["pipelineSpec"]
    for task in pipeline.get("tasks", []) + pipeline.get("finally", []):
        task_spec = task["taskSpec"]
        assert task_spec.get("volumes") == TMP_VOLUMES and "sidecars" not in task_spec
        for step in task_spec["steps"]:
            assert step.get("volumeMounts") == TMP_MOUNTS, (task["name"], step["name"])
            context = step.get("securityContext") or {}
            for key, value in RESTRICTED.items():
                assert context.get(key) == value, (task["name"], step["name"], key, context)
            resources = step.get("computeResources") or {}
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(kind) or {}), (
                    task["name"],
                    step["name"],
                    resources,
                )


def front_half(doc: Any, inputs: dict[str, Any]) -> str:
    try:
        workflow = validate_document(doc, "fuzz.yaml")
    except SpecError as exc:
        assert exc.diagnostics and all(d.message for d in exc.diagnostics)
        return "spec-error"
    codesets = {
        i.name: CodesetSource(f"https://github.com/example/{i.name}.git", SHA)
        for i in workflow.codeset_inputs
    }
    try:
        run = compile_run(
            workflow, inputs=inputs, codesets=codesets, extensions=REGISTRY, run_name="fuzz-run"
        )
    except CompileError as exc:
        assert exc.diagnostics and all(d.message for d in exc.diagnostics)
        return "compile-error"
    check_pipelinerun(run)
    return "pipelinerun"


@FUZZ
@given(
    doc=near_valid(),
    inputs=st.dictionaries(
        st.sampled_from(["samples", "max-mae", "nope", "model-format"]), SCALARS, max_size=2
    ),
)
def test_near_valid_workflows_end_typed_or_compiled_and_restricted(
    doc: dict[str, Any], inputs: dict[str, Any]
) -> None:
    OUTCOMES[front_half(doc, inputs)] += 1


def test_unmutated_examples_compile_and_pass_the_checks() -> None:
    """The control: the harness accepts what it should (so the fuzz test can tell a crash)."""
    for path, doc in zip(EXAMPLES, DOCUMENTS, strict=True):
        assert front_half(copy.deepcopy(doc), {}) in ("pipelinerun", "compile-error"), path


def test_the_fuzzer_reaches_every_outcome() -> None:
    """Run after the property (file order): the mutations are neither all fatal nor all harmless."""
    if sum(OUTCOMES.values()) == 0:
        pytest.skip("run together with the property test")
    assert OUTCOMES["spec-error"] > 0 and OUTCOMES["pipelinerun"] > 0, OUTCOMES


def test_examples_are_present() -> None:
    assert len(EXAMPLES) >= 4 and all(Path(p).is_file() for p in EXAMPLES)
