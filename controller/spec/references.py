"""What each `{{ }}` reference may name, and the type a reference gives where one is needed."""

from __future__ import annotations

import re

from controller.spec.diagnose import Collector
from controller.spec.errors import shorten, with_article
from controller.spec.model import ExtensionRef, InputRef, OutputPathRef, StepOutputRef, Workflow
from controller.spec.suggest import did_you_mean
from controller.spec.templates import Site

_STEP_FIELD = re.compile(r"^\$(?:\.spec)?\.steps\[\d+\]\.([A-Za-z]+)")
# where `{{ outputs.NAME.path }}` may appear: what the step's container runs and its environment
OUTPUT_PATH_FIELDS = ("script", "command", "args", "env")


class ReferenceChecker:
    """Reports, into `out`, each reference of a template site that names nothing or the wrong type."""

    def __init__(self, workflow: Workflow, out: Collector):
        self.wf = workflow
        self.out = out

    def references(self, site: Site) -> None:
        for ref in site.template.refs:
            if isinstance(ref, InputRef):
                self.input_ref(ref, site)
            elif isinstance(ref, StepOutputRef):
                self.step_ref(ref, site)
            elif isinstance(ref, ExtensionRef):
                self.extension_ref(ref, site)
            elif isinstance(ref, OutputPathRef):
                self.output_path_ref(ref, site)
        if site.expects == "when":
            return
        single = site.template.single_ref
        if site.expects in ("dataset", "model"):
            kind = self.ref_type(single) if single else None
            # a reference to an unknown input or output is already reported; its type is not a second error
            unresolved = isinstance(single, InputRef | StepOutputRef | OutputPathRef) and kind is None
            if kind != site.expects and not unresolved:
                self.out.error(
                    site.path,
                    "ref.type",
                    f"needs a reference to {with_article(site.expects)} (such as "
                    f"'{{{{ steps.STEP.outputs.{site.expects} }}}}')",
                )

    def ref_type(self, ref: object) -> str | None:
        if isinstance(ref, InputRef):
            item = self.wf.input(ref.name)
            return None if item is None else ("string" if ref.attr else item.type)
        if isinstance(ref, StepOutputRef):
            step = self.wf.step(ref.step)
            output = step.output(ref.output) if step else None
            return output.type if output else None
        return None

    def input_ref(self, ref: InputRef, site: Site) -> None:
        item = self.wf.input(ref.name)
        if item is None:
            known = ", ".join(i.name for i in self.wf.inputs) or "none declared"
            self.out.error(
                site.path,
                "ref.unknown-input",
                f"unknown input {shorten(ref.name)} (inputs: {known})"
                + did_you_mean(ref.name, (i.name for i in self.wf.inputs)),
            )
        elif ref.attr is not None and item.type != "codeset":
            self.out.error(
                site.path,
                "ref.input-attr",
                f"'.{ref.attr}' is only for codeset inputs; {ref.name!r} is {with_article(item.type)}",
            )
        elif ref.attr is None and item.type == "codeset" and self.wf.dialect == "native":
            self.out.error(
                site.path,
                "ref.codeset-attr",
                f"use '{{{{ inputs.{ref.name}.path }}}}' (or .revision, .url) for codeset {ref.name!r}",
            )

    def step_ref(self, ref: StepOutputRef, site: Site) -> None:
        step = self.wf.step(ref.step)
        if step is None:
            self.out.error(
                site.path,
                "ref.unknown-step",
                f"unknown step {shorten(ref.step)}" + did_you_mean(ref.step, (s.name for s in self.wf.steps)),
            )
        elif ref.step == site.step:
            self.out.error(
                site.path, "ref.self", f"step {ref.step!r} cannot use its own output {shorten(ref.output)}"
            )
        elif step.output(ref.output) is None:
            declared = ", ".join(o.name for o in step.outputs) or "none"
            self.out.error(
                site.path,
                "ref.unknown-output",
                f"step {ref.step!r} does not declare output {shorten(ref.output)} (declared: {declared})"
                + did_you_mean(ref.output, (o.name for o in step.outputs)),
            )

    def output_path_ref(self, ref: OutputPathRef, site: Site) -> None:
        """`{{ outputs.O.path }}`: only in what a native container step runs, for an output it declares."""
        name = ref.output if len(ref.output) <= 40 else ref.output[:39] + "…"
        shown = f"'{{{{ outputs.{name}.path }}}}'"
        step = self.wf.step(site.step) if site.step else None
        match = _STEP_FIELD.match(site.path)
        field = match.group(1) if match else ""
        if step is None:
            message = (
                f"{shown} is where a step writes its own output; a workflow output names a step's "
                f"output as '{{{{ steps.STEP.outputs.{name} }}}}'"
            )
        elif self.wf.dialect == "fuseml":
            message = f"{shown} is for native steps; a FuseML step writes /tekton/results/$TASK_RESULT"
        elif step.uses is not None:
            message = f"{shown} is for container steps; sluice/{step.uses} writes its outputs itself"
        elif field not in OUTPUT_PATH_FIELDS:
            message = (
                f"{shown} can be used only in {', '.join(OUTPUT_PATH_FIELDS)} of the step that declares "
                f"the output, not in '{field}'"
            )
        elif step.output(ref.output) is None:
            declared = ", ".join(o.name for o in step.outputs) or "none"
            others = [s.name for s in self.wf.steps if s.name != step.name and s.output(ref.output)]
            hint = (
                f"; to read step {others[0]!r}'s, use '{{{{ steps.{others[0]}.outputs.{name} }}}}'"
                if others
                else ""
            )
            self.out.error(
                site.path,
                "ref.unknown-output",
                f"step {step.name!r} does not declare output {shorten(ref.output)} "
                f"(declared: {declared}){hint}",
            )
            return
        else:
            return
        self.out.error(site.path, "ref.output-path", message)

    def extension_ref(self, ref: ExtensionRef, site: Site) -> None:
        step = self.wf.step(site.step) if site.step else None
        if step is None or not any(e.name == ref.extension for e in step.extensions):
            self.out.error(
                site.path,
                "ref.unknown-extension",
                f"extension {shorten(ref.extension)} is not required by this step",
            )
