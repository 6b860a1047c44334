"""Checks the schema cannot express: names, types, stage parameters and outputs, the DAG; what each
`{{ }}` reference may name is `references.ReferenceChecker`'s."""

from __future__ import annotations

import re
from collections.abc import Iterable

from controller.protocol import MODEL_URI_PREFIX, parse_model_uri
from controller.spec.diagnose import Collector
from controller.spec.errors import shorten, with_article
from controller.spec.model import Step, StepOutputRef, Template, Workflow
from controller.spec.references import ReferenceChecker
from controller.spec.shelltext import check_code_texts
from controller.spec.stages import STAGES
from controller.spec.suggest import close_match, did_you_mean
from controller.spec.templates import Site

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NUMERIC = {"integer", "number"}
_TYPE_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "codeset": lambda v: isinstance(v, str) and bool(_DNS_LABEL.match(v)),
    "dataset": lambda v: isinstance(v, str),
    "model": lambda v: isinstance(v, str),
}


class Checker:
    def __init__(self, workflow: Workflow, sites: list[Site], out: Collector):
        self.wf = workflow
        self.sites = sites
        self.out = out
        self.base = "$.spec" if workflow.dialect == "native" else "$"
        self.index = {s.name: i for i, s in enumerate(workflow.steps)}
        self.refs = ReferenceChecker(workflow, out)

    def step_path(self, name: str) -> str:
        return f"{self.base}.steps[{self.index[name]}]"

    def run(self) -> None:
        self.names()
        self.inputs()
        for step in self.wf.steps:
            self.step(step)
        for site in self.sites:
            self.refs.references(site)
        self.dag()

    def names(self) -> None:
        seen: dict[str, int] = {}
        for index, step in enumerate(self.wf.steps):
            if step.name in seen:
                self.out.error(
                    f"{self.base}.steps[{index}].name",
                    "spec.duplicate-step",
                    f"step name {step.name!r} is already used by steps[{seen[step.name]}]",
                )
            seen.setdefault(step.name, index)
        self.index = {name: index for name, index in seen.items()}
        self._unique((i.name for i in self.wf.inputs), f"{self.base}.inputs", "input")
        self._unique((o.name for o in self.wf.outputs), f"{self.base}.outputs", "output")

    def _unique(self, names: Iterable[str], path: str, what: str) -> None:
        seen: set[str] = set()
        for index, name in enumerate(names):
            if name in seen:
                self.out.error(
                    f"{path}[{index}].name",
                    f"spec.duplicate-{what}",
                    f"{what.replace('-', ' ')} {name!r} is declared twice",
                )
            seen.add(name)

    def inputs(self) -> None:
        for index, item in enumerate(self.wf.inputs):
            if item.default is not None and not _TYPE_CHECKS[item.type](item.default):
                hint = " (the name of a Codeset)" if item.type == "codeset" else ""
                self.out.error(
                    f"{self.base}.inputs[{index}].default",
                    "spec.default-type",
                    f"default of input {item.name!r} is not a valid {item.type}{hint}",
                )

    def step(self, step: Step) -> None:
        path = self.step_path(step.name) if step.name in self.index else self.base
        self._unique((o.name for o in step.outputs), f"{path}.outputs", "step-output")
        for index, target in enumerate(step.run_after):
            if target == step.name:
                self.out.error(f"{path}.runAfter[{index}]", "dag.self", "a step cannot run after itself")
            elif target not in self.index:
                self.out.error(
                    f"{path}.runAfter[{index}]",
                    "dag.unknown-step",
                    f"runAfter names unknown step {shorten(target)}",
                )
        if self.wf.dialect == "fuseml":
            return
        if (step.uses is None) == (step.image is None):
            self.out.error(
                path, "spec.uses-or-image", "a step needs exactly one of 'uses' (a built-in stage) or 'image'"
            )
            return
        if step.uses is not None:
            self.stage_step(step, path)
        else:
            if step.script is not None and step.command is not None:
                self.out.error(
                    f"{path}.script",
                    "spec.script-and-command",
                    "a step has either 'script' or 'command', not both",
                )
            if step.command is None and step.script is None and not step.args:
                pass  # the image's own entrypoint runs, as in Tekton
            # a reference in text a shell or another interpreter reads must reach it as data
            check_code_texts(step, lambda field, code, message: self.out.error(path + field, code, message))

    def stage_step(self, step: Step, path: str) -> None:
        stage = STAGES.get(step.uses or "")
        if stage is None:
            known = [f"sluice/{n}" for n in STAGES]
            close = close_match(step.uses or "", STAGES)  # without the shared `sluice/`, which would match
            hint = f"; known: {', '.join(known)}" + (f"; did you mean 'sluice/{close}'?" if close else "")
            self.out.error(
                f"{path}.uses", "spec.unknown-stage", f"unknown built-in stage 'sluice/{step.uses}'{hint}"
            )
            return
        for field in ("command", "args", "script", "workingDir"):
            value = {
                "command": step.command,
                "args": step.args or None,
                "script": step.script,
                "workingDir": step.working_dir,
            }[field]
            if value is not None:
                self.out.error(
                    f"{path}.{field}", "spec.stage-field", f"'{field}' is for container steps, not for 'uses'"
                )
        for key, value in step.with_.items():
            param = stage.params.get(key)
            if param is None:
                self.out.error(
                    f"{path}.with.{key}",
                    "spec.unknown-param",
                    f"sluice/{stage.name} has no parameter {shorten(key)}"
                    + f"; known: {', '.join(stage.params)}{did_you_mean(key, stage.params)}",
                )
            elif not (isinstance(value, str) and "{{" in value) and not _param_ok(param.type, value):
                self.out.error(
                    f"{path}.with.{key}",
                    "spec.param-type",
                    f"parameter {key!r} must be {with_article(param.type)}",
                )
            elif (
                param.type == "model"
                and isinstance(value, str)
                and value.startswith(MODEL_URI_PREFIX)
                and parse_model_uri(value) is None
            ):
                self.out.error(
                    f"{path}.with.{key}",
                    "spec.model-uri",
                    f"{shorten(value)} is not a registered model: models:/NAME/VERSION or models:/NAME@ALIAS",
                )
        for key, param in stage.params.items():
            if param.required and key not in step.with_:
                self.out.error(
                    f"{path}.with", "spec.missing-param", f"sluice/{stage.name} needs parameter {key!r}"
                )
        for index, output in enumerate(step.outputs):
            produced = stage.outputs.get(output.name)
            if produced is None:
                self.out.error(
                    f"{path}.outputs[{index}].name",
                    "spec.unknown-output",
                    f"sluice/{stage.name} has no output {output.name!r}; "
                    f"it produces: {', '.join(stage.outputs)}",
                )
            elif output.type != produced:
                self.out.error(
                    f"{path}.outputs[{index}].type",
                    "spec.output-type",
                    f"output {output.name!r} of sluice/{stage.name} is {with_article(produced)}, "
                    f"not {with_article(output.type)}",
                )

    def when_types(self) -> None:
        for step in self.wf.steps:
            when = step.when
            if when is None or not when.numeric:
                continue
            for side in (when.left, *when.right):
                if not _numeric(side, self.refs.ref_type):
                    self.out.error(
                        f"{self.step_path(step.name)}.when",
                        "when.type",
                        f"'{when.op}' compares numbers; {shorten(side.raw)} is not a number",
                    )

    def dag(self) -> None:
        self.when_types()
        # `runAfter: [itself]` is reported as dag.self, not again as a cycle
        edges: dict[str, set[str]] = {
            s.name: (set(s.run_after) & set(self.index)) - {s.name} for s in self.wf.steps
        }
        for site in self.sites:
            if site.step is None:
                continue
            for ref in site.template.refs:
                if isinstance(ref, StepOutputRef) and ref.step in self.index and ref.step != site.step:
                    edges[site.step].add(ref.step)
        cycle = _find_cycle(edges)
        if cycle:
            self.out.error(
                f"{self.step_path(cycle[0])}.name",
                "dag.cycle",
                "steps form a cycle: " + " -> ".join([*cycle, cycle[0]]),
            )


def _param_ok(kind: str, value: object) -> bool:
    checks = {
        "list": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
        "any": lambda v: True,
        "dataset": lambda v: isinstance(v, str),
        "model": lambda v: isinstance(v, str),
    }
    check = checks.get(kind) or _TYPE_CHECKS.get(kind)
    return bool(check and check(value))


def _numeric(side: Template, ref_type) -> bool:  # type: ignore[no-untyped-def]
    ref = side.single_ref
    if ref is not None:
        return ref_type(ref) in _NUMERIC | {None}  # unknown refs are reported elsewhere
    try:
        float(side.raw)
        return True
    except ValueError:
        return False


def _find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle in dependency order, found iteratively (no recursion on user input)."""
    state: dict[str, int] = {}
    for start in edges:
        if state.get(start):
            continue
        stack: list[tuple[str, list[str]]] = [(start, sorted(edges[start]))]
        trail = [start]
        state[start] = 1
        while stack:
            node, pending = stack[-1]
            if not pending:
                state[node] = 2
                stack.pop()
                trail.pop()
                continue
            nxt = pending.pop()
            if state.get(nxt) == 1:
                return list(reversed(trail[trail.index(nxt) :]))
            if not state.get(nxt):
                state[nxt] = 1
                trail.append(nxt)
                stack.append((nxt, sorted(edges.get(nxt, ()))))
    return None


def check_semantics(workflow: Workflow, sites: list[Site], out: Collector) -> None:
    Checker(workflow, sites, out).run()
