"""Property tests: whatever the input, loading ends as a valid Workflow or a SpecError -- nothing else.

Sizes are chosen so the whole module runs in well under 20 seconds.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.spec import SpecError, Workflow, load_workflow_bytes, load_workflow_text, validate_document
from tests.spec.helpers import EXAMPLES, json_paths

CODE_FAMILIES = ("yaml.", "file.", "schema.", "spec.", "expr.", "ref.", "when.", "dag.", "fuseml.")
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ends_cleanly(load: Callable[[], Workflow]) -> None:
    try:
        workflow = load()
    except SpecError as exc:
        assert exc.diagnostics
        assert exc.diagnostics == sorted(exc.diagnostics, key=lambda d: (d.line, d.col, d.path, d.code))
        for d in exc.diagnostics:
            assert d.code.startswith(CODE_FAMILIES), d
            assert d.message and "\n" not in d.message, d
            assert d.path == "" or d.path.startswith("$"), d
            assert d.line >= 0 and d.col >= 0, d
        return
    assert isinstance(workflow, Workflow)


# --- text --------------------------------------------------------------------------------------------------

YAML_TOKENS = [
    "apiVersion: sluice.dev/v1alpha1",
    "kind: Workflow",
    "metadata:",
    "name: demo",
    "spec:",
    "steps:",
    "- ",
    "  ",
    "    ",
    "\t",
    "a: ",
    "b:",
    "? ",
    ": ",
    "{",
    "}",
    "[",
    "]",
    ", ",
    "&x ",
    "*x",
    "!!python/object ",
    "!!int ",
    "!!str ",
    "!foo ",
    "'",
    '"',
    "#",
    "---",
    "...",
    "|",
    ">",
    "~",
    "null",
    "true",
    "1e9",
    "0x1F",
    "{{ inputs.n }}",
    "{{",
    "}}",
    "{{ steps.a.outputs.o }}",
    "%YAML 1.1",
    "\\u0000",
    "\x00",
    "\x07",
    "é",
    "<<: ",
    "uses: sluice/prepare",
    "image: busybox",
    "when: ",
    " <= ",
    " in [",
    "runAfter: [a]",
]
yamlish = st.lists(st.lists(st.sampled_from(YAML_TOKENS), max_size=8).map("".join), max_size=14).map(
    "\n".join
)


@FAST
@given(st.text(max_size=300))
def test_arbitrary_text(document: str) -> None:
    ends_cleanly(lambda: load_workflow_text(document, "prop.yaml"))


@FAST
@given(yamlish)
def test_yaml_like_text(document: str) -> None:
    ends_cleanly(lambda: load_workflow_text(document, "prop.yaml"))


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes(data: bytes) -> None:
    ends_cleanly(lambda: load_workflow_bytes(data, "prop.yaml"))


# --- JSON-like documents ------------------------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)

NAMES = st.sampled_from(["a", "b", "prepare", "train", "x", "Bad_Name", ""])
TEMPLATE_PARTS = st.sampled_from(
    [
        "{{ inputs.n }}",
        "{{ inputs.src.path }}",
        "{{ inputs.src }}",
        "{{ steps.a.outputs.o }}",
        "{{ steps.prepare.outputs.dataset }}",
        "{{ steps.b.outputs.model }}",
        "{{ extensions.e.url }}",
        "{{",
        "}}",
        "{{ }}",
        " <= ",
        " == ",
        " in [1, 2]",
        "1.5",
        "x",
        " ",
        "{{ inputs.x.revision }}",
    ]
)
templates = st.lists(TEMPLATE_PARTS, max_size=4).map("".join)
values = scalars | templates | st.lists(templates, max_size=3)
STEP_FIELDS = {
    "uses": st.sampled_from(
        ["sluice/prepare", "sluice/train-keras", "sluice/evaluate", "sluice/deploy", "sluice/x"]
    ),
    "image": st.sampled_from(["busybox", "{{ steps.a.outputs.o }}", ""]),
    "command": st.lists(templates, max_size=2),
    "args": st.lists(templates, max_size=2),
    "script": templates,
    "with": st.dictionaries(
        st.sampled_from(["generator", "dataset", "model", "samples", "layers", "zz"]), values
    ),
    "when": templates,
    "runAfter": st.lists(NAMES, max_size=2),
    "retries": st.integers(-2, 12),
    "timeout": st.sampled_from(["10m", "0s", "1h30m", "soon"]),
    "outputs": st.lists(
        st.fixed_dictionaries(
            {"name": st.sampled_from(["o", "dataset", "model", "rows", "url"])},
            optional={"type": st.sampled_from(["string", "number", "dataset", "model", "x"])},
        ),
        max_size=3,
    ),
    "resources": st.fixed_dictionaries(
        {},
        optional={
            "limits": st.dictionaries(
                st.sampled_from(["cpu", "memory"]), st.sampled_from(["1", "500m", "2Gi", "2GB", 3])
            )
        },
    ),
    "securityContext": st.just({}),
}
steps = st.fixed_dictionaries({"name": NAMES}, optional=STEP_FIELDS)
inputs = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["n", "src", "x"]),
        "type": st.sampled_from(["string", "integer", "number", "boolean", "codeset", "dataset", "model"]),
    },
    optional={"default": scalars},
)
native_documents = st.fixed_dictionaries(
    {
        "apiVersion": st.just("sluice.dev/v1alpha1"),
        "kind": st.just("Workflow"),
        "metadata": st.fixed_dictionaries({"name": NAMES}),
        "spec": st.fixed_dictionaries(
            {"steps": st.lists(steps, min_size=1, max_size=4)},
            optional={
                "inputs": st.lists(inputs, max_size=3),
                "outputs": st.lists(
                    st.fixed_dictionaries({"name": st.sampled_from(["r", "url"]), "value": templates}),
                    max_size=2,
                ),
            },
        ),
    }
)
fuseml_steps = st.fixed_dictionaries(
    {"name": NAMES},
    optional={
        "image": st.sampled_from(["busybox", "{{ steps.a.outputs.o }}", ""]),
        "inputs": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "name": st.sampled_from(["m", "src"]),
                    "value": templates | scalars,
                    "codeset": st.fixed_dictionaries(
                        {"name": templates}, optional={"path": st.just("/project")}
                    ),
                },
            ),
            max_size=3,
        ),
        "outputs": st.lists(st.fixed_dictionaries({"name": st.sampled_from(["o", "url"])}), max_size=2),
        "env": st.lists(
            st.fixed_dictionaries({"name": st.sampled_from(["A", "B"])}, optional={"value": templates}),
            max_size=2,
        ),
        "extensions": st.lists(st.fixed_dictionaries({"name": st.sampled_from(["e", "f"])}), max_size=2),
    },
)
fuseml_documents = st.fixed_dictionaries(
    {"name": NAMES, "steps": st.lists(fuseml_steps, min_size=1, max_size=3)},
    optional={
        "inputs": st.lists(
            st.fixed_dictionaries(
                {"name": st.sampled_from(["n", "src"])},
                optional={"type": st.sampled_from(["string", "codeset"])},
            ),
            max_size=2,
        ),
        "outputs": st.lists(st.fixed_dictionaries({"name": st.sampled_from(["o", "url"])}), max_size=2),
    },
)


@FAST
@given(json_like)
def test_arbitrary_json_documents(doc: Any) -> None:
    ends_cleanly(lambda: validate_document(doc, "api"))


@FAST
@given(native_documents | fuseml_documents)
def test_workflow_shaped_documents(doc: dict[str, Any]) -> None:
    ends_cleanly(lambda: validate_document(doc, "api"))
    ends_cleanly(lambda: load_workflow_text(yaml.safe_dump(doc), "dumped.yaml"))


# --- mutations of the valid examples ---------------------------------------------------------------

EXAMPLE_DOCS = [yaml.safe_load(p.read_text()) for p in EXAMPLES]


MUTATIONS = ["delete", "replace", "template", "rename"]


@st.composite
def mutated_examples(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(draw(st.sampled_from(EXAMPLE_DOCS)))
    for _ in range(draw(st.integers(1, 3))):
        paths = json_paths(doc)[1:]  # not the document itself
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        key, kind = path[-1], draw(st.sampled_from(MUTATIONS))
        if kind == "delete":
            del parent[key]
        elif kind == "replace":
            parent[key] = draw(json_like)
        elif kind == "template":
            parent[key] = draw(templates) + draw(st.text(max_size=5))
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = parent.pop(key)
    return doc


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_examples())
def test_mutated_examples(doc: Any) -> None:
    ends_cleanly(lambda: validate_document(doc, "api"))
    ends_cleanly(lambda: load_workflow_text(yaml.safe_dump(doc, allow_unicode=True), "mutated.yaml"))
