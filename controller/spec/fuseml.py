"""FuseML workflows (no apiVersion/kind) -> the same typed model, with FuseML's semantics.

FuseML steps are containers that keep FuseML's contract: value inputs become
`FUSEML_<NAME>` variables, codeset inputs are checked out at the step's
`path`, and a workflow output is the output of the same name of the last
step that declares one.
"""

from __future__ import annotations

from typing import Any

from controller.spec.build import build_resources, scalar_text
from controller.spec.diagnose import Collector
from controller.spec.model import (
    CodesetMount,
    EnvVar,
    ExtensionSelector,
    Input,
    InputRef,
    Output,
    Step,
    StepOutputRef,
    Template,
    Workflow,
    WorkflowOutput,
)
from controller.spec.templates import TemplateReader


def _step(
    raw: dict[str, Any], path: str, reader: TemplateReader, out: Collector, input_types: dict[str, str]
) -> Step:
    name = raw["name"]
    image = None
    if "image" not in raw or not raw["image"]:
        out.error(
            f"{path}.image" if "image" in raw else path, "fuseml.no-image", "a FuseML step needs an image"
        )
    else:
        image = reader.template(raw["image"], f"{path}.image", name)
    values: list[tuple[str, Template]] = []
    codesets: list[CodesetMount] = []
    for index, item in enumerate(raw.get("inputs", [])):
        item_path = f"{path}.inputs[{index}]"
        if ("value" in item) == ("codeset" in item):
            out.error(item_path, "fuseml.input", "a step input needs exactly one of 'value' or 'codeset'")
            continue
        if "value" in item:
            if "name" not in item:
                out.error(
                    item_path, "fuseml.input", "a value input needs a 'name' (its FUSEML_<NAME> variable)"
                )
                continue
            # FuseML read values into strings, so `value: false` or `value: 1` are text
            text = scalar_text(item["value"])
            values.append((item["name"], reader.template(text, f"{item_path}.value", name)))
            continue
        ref_path = f"{item_path}.codeset.name"
        ref = reader.template(item["codeset"]["name"], ref_path, name).single_ref
        if not isinstance(ref, InputRef) or ref.attr is not None:
            out.error(ref_path, "fuseml.codeset", "a codeset input's name must be '{{ inputs.NAME }}'")
            continue
        if (
            input_types.get(ref.name, "codeset") != "codeset"
        ):  # an undeclared input is reported as ref.unknown-input
            out.error(ref_path, "fuseml.codeset", f"input {ref.name!r} is not of type codeset")
            continue
        codesets.append(CodesetMount(ref.name, item["codeset"].get("path")))
    env = tuple(
        EnvVar(
            e["name"], value=reader.template(scalar_text(e.get("value", "")), f"{path}.env[{i}].value", name)
        )
        for i, e in enumerate(raw.get("env", []))
    )
    extensions = tuple(
        ExtensionSelector(
            name=e["name"],
            extension_id=e.get("extension_id"),
            product=e.get("product"),
            version=e.get("version"),
            zone=e.get("zone"),
            service_id=e.get("service_id"),
            service_resource=e.get("service_resource"),
            service_category=e.get("service_category"),
        )
        for e in raw.get("extensions", [])
    )
    return Step(
        name=name,
        image=image,
        command=("run",),
        env=env,
        resources=build_resources(raw.get("resources"), f"{path}.resources", out),
        outputs=tuple(Output(o["name"], "string") for o in raw.get("outputs", [])),
        codesets=tuple(codesets),
        fuseml_inputs=tuple(values),
        extensions=extensions,
    )


def build_fuseml(
    doc: dict[str, Any], out: Collector, positions: dict[str, tuple[int, int]]
) -> tuple[Workflow, TemplateReader]:
    reader = TemplateReader(out, fuseml=True)
    input_types = {i["name"]: i.get("type", "string") for i in doc.get("inputs", [])}
    steps = tuple(_step(raw, f"$.steps[{i}]", reader, out, input_types) for i, raw in enumerate(doc["steps"]))
    outputs = []
    for index, raw in enumerate(doc.get("outputs", [])):
        producer = next((s for s in reversed(steps) if s.output(raw["name"])), None)
        if producer is None:
            out.error(
                f"$.outputs[{index}].name",
                "fuseml.output",
                f"workflow output {raw['name']!r} is not an output of any step",
            )
            continue
        ref = StepOutputRef(producer.name, raw["name"])
        text = f"{{{{ steps.{producer.name}.outputs.{raw['name']} }}}}"
        outputs.append(WorkflowOutput(raw["name"], Template(text, (ref,)), raw.get("description", "")))
    inputs = tuple(
        Input(i["name"], i.get("type", "string"), i.get("default"), i.get("description", ""))
        for i in doc.get("inputs", [])
    )
    workflow = Workflow(
        name=doc["name"],
        description=doc.get("description", ""),
        dialect="fuseml",
        inputs=inputs,
        outputs=tuple(outputs),
        steps=steps,
        source_file=out.file,
        positions=positions,
    )
    return workflow, reader
