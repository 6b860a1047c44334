"""The typed model of a workflow, built only from validated input.

Both dialects (native `sluice.dev/v1alpha1` and FuseML) load into these types;
everything after the loader (compiler, executors, operator) reads only these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

Dialect = Literal["native", "fuseml"]
InputType = Literal["string", "integer", "number", "boolean", "codeset", "dataset", "model"]
OutputType = Literal["string", "number", "boolean", "integer", "dataset", "model"]
ARTIFACT_TYPES = frozenset({"dataset", "model"})
SCALAR_TYPES = frozenset({"string", "integer", "number", "boolean"})


# --- expressions -----------------------------------------------------------------


@dataclass(frozen=True)
class InputRef:
    """`{{ inputs.NAME }}` or `{{ inputs.NAME.ATTR }}` (ATTR: path, revision, url; FuseML: name, project)."""

    name: str
    attr: str | None = None


@dataclass(frozen=True)
class StepOutputRef:
    """`{{ steps.STEP.outputs.OUTPUT }}`."""

    step: str
    output: str


@dataclass(frozen=True)
class ExtensionRef:
    """FuseML `{{ extensions.EXT.FIELD[.FIELD...] }}` (e.g. `url`, `cfg.KEY`)."""

    extension: str
    path: tuple[str, ...]


@dataclass(frozen=True)
class OutputPathRef:
    """`{{ outputs.OUTPUT.path }}`: where a container step writes its own declared output."""

    output: str


Ref = InputRef | StepOutputRef | ExtensionRef | OutputPathRef


@dataclass(frozen=True)
class Literal_:
    text: str


@dataclass(frozen=True)
class Template:
    """A string that may contain `{{ ... }}` references, already parsed."""

    raw: str
    parts: tuple[Literal_ | Ref, ...]

    @cached_property
    def refs(self) -> tuple[Ref, ...]:
        return tuple(p for p in self.parts if not isinstance(p, Literal_))

    @property
    def is_literal(self) -> bool:
        return not self.refs

    @property
    def single_ref(self) -> Ref | None:
        """The reference when the whole string is exactly one `{{ ... }}`."""
        return self.parts[0] if len(self.parts) == 1 and not isinstance(self.parts[0], Literal_) else None


WhenOp = Literal["==", "!=", "<", "<=", ">", ">=", "in", "notin"]
NUMERIC_OPS = frozenset({"<", "<=", ">", ">="})


@dataclass(frozen=True)
class When:
    """`LEFT OP RIGHT`; for `in`/`notin` the right side is a list of values."""

    left: Template
    op: WhenOp
    right: tuple[Template, ...]
    raw: str

    @property
    def numeric(self) -> bool:
        return self.op in NUMERIC_OPS


# --- spec ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Input:
    name: str
    type: InputType
    default: Any = None  # typed value; for a codeset input, the name of a Codeset
    description: str = ""

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True)
class Output:
    name: str
    type: OutputType = "string"
    description: str = ""

    @property
    def is_artifact(self) -> bool:
        return self.type in ARTIFACT_TYPES


@dataclass(frozen=True)
class WorkflowOutput:
    name: str
    value: Template
    description: str = ""


@dataclass(frozen=True)
class SecretKeyRef:
    name: str
    key: str


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: Template | None = None
    secret: SecretKeyRef | None = None


@dataclass(frozen=True)
class Resources:
    requests: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CodesetMount:
    """A codeset checked out for a step (FuseML: at `path`; native: via `{{ inputs.X.path }}`)."""

    input: str
    path: str | None = None


@dataclass(frozen=True)
class ExtensionSelector:
    """FuseML's step extension requirement, resolved from the extension registry."""

    name: str
    extension_id: str | None = None
    product: str | None = None
    version: str | None = None  # a version constraint such as ">=1.0, <2"
    zone: str | None = None
    service_id: str | None = None
    service_resource: str | None = None
    service_category: str | None = None


@dataclass(frozen=True)
class Step:
    name: str
    uses: str | None = None  # built-in stage name, without the `sluice/` prefix
    image: Template | None = None
    command: tuple[str, ...] | None = None
    args: tuple[Template, ...] = ()
    script: str | None = None
    with_: Mapping[str, Any] = field(default_factory=dict)  # raw values; strings may hold templates
    env: tuple[EnvVar, ...] = ()
    resources: Resources = field(default_factory=Resources)
    retries: int = 0
    timeout_seconds: int | None = None
    when: When | None = None
    run_after: tuple[str, ...] = ()
    working_dir: Template | None = None
    outputs: tuple[Output, ...] = ()
    codesets: tuple[CodesetMount, ...] = ()
    # FuseML: value inputs become FUSEML_<NAME> environment variables
    fuseml_inputs: tuple[tuple[str, Template], ...] = ()
    extensions: tuple[ExtensionSelector, ...] = ()

    def output(self, name: str) -> Output | None:
        return next((o for o in self.outputs if o.name == name), None)


@dataclass(frozen=True)
class RunPolicy:
    concurrency: Literal["Allow", "Forbid", "Replace"] = "Allow"
    history_limit: int = 10
    trigger: Literal["onCodesetChange", "manual"] = "onCodesetChange"


@dataclass(frozen=True)
class Schedule:
    """`spec.schedule`: when the operator starts runs by itself (`sluice run` ignores it)."""

    cron: str  # five fields, macros expanded (controller.schedules.cron_fields)
    time_zone: str = "UTC"  # an IANA name
    starting_deadline_seconds: int | None = None
    suspend: bool = False


@dataclass(frozen=True)
class Workflow:
    name: str
    steps: tuple[Step, ...]
    inputs: tuple[Input, ...] = ()
    outputs: tuple[WorkflowOutput, ...] = ()
    description: str = ""
    dialect: Dialect = "native"
    namespace: str | None = None
    generation: int = 1
    run_policy: RunPolicy = field(default_factory=RunPolicy)
    schedule: Schedule | None = None
    artifacts_size: str | None = None  # PVC size of the run's artifact store
    labels: Mapping[str, str] = field(default_factory=dict)
    source_file: str = "<memory>"
    # JSON path -> (line, col) of every node, so later stages can point into the file
    positions: Mapping[str, tuple[int, int]] = field(default_factory=dict, compare=False, repr=False)

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)

    def input(self, name: str) -> Input | None:
        return next((i for i in self.inputs if i.name == name), None)

    @property
    def codeset_inputs(self) -> tuple[Input, ...]:
        return tuple(i for i in self.inputs if i.type == "codeset")

    def position(self, path: str) -> tuple[int, int]:
        """Line/column of a JSON path, or of its closest ancestor that has one."""
        from controller.spec.errors import closest_position

        return closest_position(self.positions, path)
