"""`{{ ... }}` references -> Tekton variables.

Two places can hold a reference, and Tekton allows different variables in each:
- pipeline level (a pipeline task's param values, `when`, pipeline results):
  `$(params.INPUT)` and `$(tasks.TASK.results.RESULT)`;
- inside a task (args, env, script, workingDir, image): only the task's own
  `$(params.P)`, `$(results.R.path)` and `$(workspaces.W.path)`; a container step's
  `{{ outputs.O.path }}` is one of the latter two (`output_path`).
So a reference used inside a task becomes a task param whose value is its
pipeline-level expression (`TaskRenderer`), and references whose value is
known at compile time (a codeset URL, an extension's configuration) are written
as literals.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.compiler.errors import Problems
from controller.compiler.extensions import ExtensionError, ResolvedExtension
from controller.compiler.naming import UniqueNames, param_name
from controller.compiler.values import CodesetPlan
from controller.spec.expressions import ExpressionError, parse_template
from controller.spec.model import (
    ExtensionRef,
    InputRef,
    Literal_,
    Output,
    OutputPathRef,
    Ref,
    SecretKeyRef,
    Step,
    StepOutputRef,
    Template,
    Workflow,
)
from controller.spec.shelltext import REFUSED, is_path_ref, shell_contexts

# The run's one PersistentVolumeClaim-backed pipeline workspace. Tasks bind it as `artifacts`
# (subPath `artifacts`) and `source` (subPath `source`, the codeset checkouts): one claim per
# task, which every Tekton affinity-assistant mode admits (`coschedule: workspaces` refuses a
# TaskRun that binds two claims, see docs/compiler.md).
RUN_VOLUME = "run"
ARTIFACTS = "artifacts"
SOURCE = "source"
# Tekton mounts a task workspace at /workspace/<name>; with the subPaths above the run volume's
# root would be here, so a path under the artifacts mount relative to it is a path in the claim.
WORKSPACE_DIR = "/workspace"
CLONE_RESULT = "commit"
# Values referenced in shell text reach it as environment variables with this prefix.
SHELL_ENV_PREFIX = "SLUICE_REF_"


def artifact_dir(step: str, output: str) -> str:
    """Where a step's dataset/model output lives: `<artifacts>/<step>/<output>`, as the stages lay theirs."""
    return f"$(workspaces.{ARTIFACTS}.path)/{step}/{output}"


def output_path(step: Step, output: Output) -> str:
    """`{{ outputs.O.path }}`: a scalar output's result file, or a dataset/model output's directory."""
    return artifact_dir(step.name, output.name) if output.is_artifact else f"$(results.{output.name}.path)"


@dataclass
class RunScope:
    """What every task can refer to: inputs, other steps' tasks, codesets, resolved extensions."""

    workflow: Workflow
    problems: Problems
    input_params: dict[str, str]  # input name -> pipeline param name
    step_tasks: dict[str, str]  # step name -> pipeline task name
    codesets: dict[str, CodesetPlan]
    clone_tasks: dict[str, str]  # codeset input -> clone task name
    extensions: dict[str, dict[str, ResolvedExtension]] = field(
        default_factory=dict
    )  # step -> selector -> ...

    def mount_path(self, step: Step | None, input_name: str) -> str | None:
        """Where a step has the codeset mounted at a fixed path (FuseML's `codeset.path`)."""
        if step is None:
            return None
        return next((m.path for m in step.codesets if m.input == input_name and m.path), None)

    def extension_value(self, step: Step | None, ref: ExtensionRef, path: str) -> str | SecretKeyRef | None:
        resolved = self.extensions.get(step.name, {}).get(ref.extension) if step else None
        if resolved is None:
            self.problems.error(
                path, "ref.unknown-extension", f"extension {ref.extension!r} is not resolved here"
            )
            return None
        try:
            return resolved.field_value(ref.path)
        except ExtensionError as exc:
            self.problems.error(path, "ref.extension-field", f"extension {ref.extension!r} {exc}")
            return None

    def pipeline_ref(self, ref: Ref, step: Step | None, path: str) -> str | None:
        """The pipeline-level expression of a reference; None (and an error) when it has none."""
        if isinstance(ref, OutputPathRef):
            self.problems.error(
                path,
                "ref.output-path",
                f"{{{{ outputs.{ref.output}.path }}}} is a path inside the task of the step that declares "
                "it: use it in script, command, args or env",
            )
            return None
        if isinstance(ref, StepOutputRef):
            task = self.step_tasks.get(ref.step)
            if task is None:
                self.problems.error(path, "ref.unknown-step", f"unknown step {ref.step!r}")
                return None
            return f"$(tasks.{task}.results.{ref.output})"
        if isinstance(ref, ExtensionRef):
            value = self.extension_value(step, ref, path)
            if isinstance(value, SecretKeyRef):
                self.problems.error(
                    path,
                    "ref.secret",
                    f"{{{{ extensions.{ref.extension}.{'.'.join(ref.path)} }}}} is a credential: it can only "
                    "be the whole value of an environment variable (it never travels as a param)",
                )
                return None
            return value
        declared = self.workflow.input(ref.name)
        if declared is None:
            self.problems.error(path, "ref.unknown-input", f"unknown input {ref.name!r}")
            return None
        if declared.type != "codeset":
            return f"$(params.{self.input_params[ref.name]})"
        plan = self.codesets.get(ref.name)
        if plan is None:
            return None  # reported once by plan_codesets
        if ref.attr in (None, "name"):
            return plan.name
        if ref.attr == "project":
            return plan.project
        if ref.attr == "url":
            return plan.url
        if ref.attr in ("revision", "version"):  # FuseML's `version` is the commit
            return f"$(tasks.{self.clone_tasks[ref.name]}.results.{CLONE_RESULT})"
        mounted = self.mount_path(step, ref.name)
        if mounted is not None:
            return mounted
        self.problems.error(
            path,
            "ref.path-context",
            f"{{{{ inputs.{ref.name}.path }}}} is a path inside a task: use it in args, env, script or "
            "workingDir, not here",
        )
        return None

    def pipeline_text(self, template: Template, step: Step | None, path: str) -> str:
        parts = []
        for part in template.parts:
            if isinstance(part, Literal_):
                parts.append(part.text)
            else:
                parts.append(self.pipeline_ref(part, step, path) or "")
        return "".join(parts)

    def secret_of(self, template: Template, step: Step | None, path: str) -> SecretKeyRef | None:
        """The Secret when a template is exactly one extension credential reference."""
        ref = template.single_ref
        if isinstance(ref, ExtensionRef):
            value = self.extension_value(step, ref, path)
            if isinstance(value, SecretKeyRef):
                return value
        return None


class TaskRenderer:
    """Renders templates inside one task, collecting the task params they need."""

    def __init__(self, scope: RunScope, step: Step | None, reserved: set[str] | None = None):
        self.scope = scope
        self.step = step
        self.params: dict[str, str] = {}  # task param -> pipeline-level value
        self.descriptions: dict[str, str] = {}
        self._by_ref: dict[Ref, str] = {}
        self._names = UniqueNames(set(reserved or ()))
        self.uses_source = False
        self.uses_artifacts = False
        self.after: set[str] = set()  # tasks this one must run after (codeset checkouts)
        self.shell_env: dict[str, str] = {}  # env var -> value, for references in shell text
        self._shell_by_ref: dict[Ref, str] = {}

    def add_param(self, name: str, value: str, description: str = "") -> str:
        claimed = self._names.claim(name)
        self.params[claimed] = value
        if description:
            self.descriptions[claimed] = description
        return claimed

    def _param_for(self, ref: Ref, path: str) -> str:
        if ref in self._by_ref:
            return f"$(params.{self._by_ref[ref]})"
        value = self.scope.pipeline_ref(ref, self.step, path)
        if value is None:
            return ""
        if isinstance(ref, StepOutputRef):
            base, description = f"{ref.step}-{ref.output}", f"output {ref.output} of step {ref.step}"
            producer = self.scope.workflow.step(ref.step)
            output = producer.output(ref.output) if producer else None
            if output is not None and output.is_artifact:
                self.uses_artifacts = True
        elif isinstance(ref, InputRef) and ref.attr:
            base, description = f"{ref.name}-{ref.attr}", f"{ref.attr} of codeset {ref.name}"
        else:
            base, description = getattr(ref, "name", "value"), f"input {getattr(ref, 'name', '')}"
        name = self.add_param(param_name(base), value, description)
        self._by_ref[ref] = name
        return f"$(params.{name})"

    def ref(self, ref: Ref, path: str) -> str:
        if isinstance(ref, InputRef):
            declared = self.scope.workflow.input(ref.name)
            if declared is not None and declared.type == "codeset":
                plan = self.scope.codesets.get(ref.name)
                if plan is None:
                    return ""
                if ref.attr == "path":
                    mounted = self.scope.mount_path(self.step, ref.name)
                    if mounted is not None:
                        return mounted
                    self.uses_source = True
                    self.after.add(self.scope.clone_tasks[ref.name])
                    return f"$(workspaces.{SOURCE}.path)/{plan.subdir}"
                if ref.attr not in ("revision", "version"):
                    return self.scope.pipeline_ref(ref, self.step, path) or ""
        if isinstance(ref, ExtensionRef):
            return self.scope.pipeline_ref(ref, self.step, path) or ""
        if isinstance(ref, OutputPathRef):
            return self._output_path(ref, path)
        return self._param_for(ref, path)

    def _output_path(self, ref: OutputPathRef, path: str) -> str:
        step = self.step
        native = self.scope.workflow.dialect == "native"
        output = step.output(ref.output) if step and step.uses is None and native else None
        if step is None or output is None:
            return self.scope.pipeline_ref(ref, step, path) or ""  # reports it
        if output.is_artifact:
            self.uses_artifacts = True
        return output_path(step, output)

    def text(self, template: Template, path: str) -> str:
        return "".join(
            part.text if isinstance(part, Literal_) else self.ref(part, path) for part in template.parts
        )

    def shell_text(self, template: Template, path: str) -> str:
        """Shell text (a script, a `sh -c` string): each value becomes an environment variable.

        Tekton pastes `$(params.X)` into the text, where a shell would parse the value as code;
        `"${VAR}"` (or `${VAR}` inside double quotes and here-documents) is expanded once, as data.
        Compiler-made paths stay in the text. Quoting where a value cannot be data is refused by
        the validator (`ref.shell-quoting`, controller/spec/shelltext.py).
        """
        contexts = iter(shell_contexts(template))
        out = []
        for part in template.parts:
            if isinstance(part, Literal_):
                out.append(part.text)
                continue
            ref, context = next(contexts)
            if is_path_ref(ref):
                out.append(self.ref(ref, path))
            elif context in REFUSED:
                self.scope.problems.error(path, "ref.shell-quoting", f"a reference {REFUSED[context][0]}")
            else:
                var = self._shell_var(ref, path)
                out.append(f'"${{{var}}}"' if context == "unquoted" else f"${{{var}}}")
        return "".join(out)

    def _shell_var(self, ref: Ref, path: str) -> str:
        if ref in self._shell_by_ref:
            return self._shell_by_ref[ref]
        if isinstance(ref, InputRef):
            base = ref.name + (f"_{ref.attr}" if ref.attr else "")
        elif isinstance(ref, StepOutputRef):
            base = f"{ref.step}_{ref.output}"
        elif isinstance(ref, ExtensionRef):
            base = "_".join((ref.extension, *ref.path))
        else:
            base = "value"
        stem = SHELL_ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", base).upper()
        name, n = stem, 1
        while name in self.shell_env:  # `a-b` and `a_b` are one stem
            n += 1
            name = f"{stem}_{n}"
        self.shell_env[name] = self.ref(ref, path)
        self._shell_by_ref[ref] = name
        return name

    def value(self, value: Any, path: str) -> Any:
        """A free-form `with:` value with every string's references rendered (structure kept)."""
        if isinstance(value, str):
            if "{{" not in value:
                return value
            try:
                template = parse_template(value, fuseml=self.scope.workflow.dialect == "fuseml")
            except ExpressionError as exc:
                self.scope.problems.error(path, "expr.syntax", exc.message)
                return value
            return self.text(template, path)
        if isinstance(value, Mapping):
            return {key: self.value(item, f"{path}.{key}") for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item, f"{path}[{i}]") for i, item in enumerate(value)]
        return value

    def task_params(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(taskSpec params, pipeline task params)."""
        specs = []
        for name in self.params:
            spec: dict[str, Any] = {"name": name, "type": "string"}
            if name in self.descriptions:
                spec["description"] = self.descriptions[name]
            specs.append(spec)
        return specs, [{"name": name, "value": value} for name, value in self.params.items()]
