"""Native `sluice.dev/v1alpha1` documents -> the typed model.

Runs only on schema-valid documents, so shapes are known; it still reports
what the schema cannot express (expressions, quantities, durations) and keeps
going, so one pass finds every error.
"""

from __future__ import annotations

from typing import Any

from controller.schedules import ScheduleError, cron_fields, time_zone
from controller.spec.diagnose import Collector
from controller.spec.model import (
    EnvVar,
    Input,
    Output,
    Resources,
    RunPolicy,
    Schedule,
    SecretKeyRef,
    Step,
    Workflow,
    WorkflowOutput,
)
from controller.spec.stages import STAGES
from controller.spec.templates import TemplateReader
from controller.units import parse_duration, parse_quantity


def scalar_text(value: Any) -> str:
    """Scalars as they travel as Tekton params: JSON spelling for booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def build_schedule(raw: dict[str, Any] | None, out: Collector) -> Schedule | None:
    """`spec.schedule`, its cron expression and time zone checked (the schema checks the shape)."""
    if raw is None:
        return None
    cron = str(raw["cron"])
    try:
        cron = cron_fields(cron)
    except ScheduleError as exc:
        out.error("$.spec.schedule.cron", "spec.schedule", str(exc))
    zone = raw.get("timeZone", "UTC")
    try:
        time_zone(zone)
    except ScheduleError as exc:
        out.error("$.spec.schedule.timeZone", "spec.schedule", str(exc))
    return Schedule(
        cron=cron,
        time_zone=zone,
        starting_deadline_seconds=raw.get("startingDeadlineSeconds"),
        suspend=bool(raw.get("suspend", False)),
    )


def build_resources(raw: dict[str, Any] | None, path: str, out: Collector) -> Resources:
    raw = raw or {}
    sections: dict[str, dict[str, str]] = {}
    for section in ("requests", "limits"):
        values = {}
        for name, value in (raw.get(section) or {}).items():
            try:
                parse_quantity(value)
            except ValueError as exc:
                out.error(f"{path}.{section}.{name}", "spec.quantity", str(exc))
            values[name] = scalar_text(value)
        sections[section] = values
    return Resources(requests=sections["requests"], limits=sections["limits"])


def build_timeout(raw: str | None, path: str, out: Collector) -> int | None:
    if raw is None:
        return None
    try:
        return int(parse_duration(raw, minimum=1))  # whole seconds; the schema's grammar has no sign
    except ValueError as exc:
        out.error(path, "spec.duration", str(exc))
        return None


def _outputs(raw: list[dict[str, Any]], uses: str | None) -> tuple[Output, ...]:
    catalog = STAGES[uses].outputs if uses in STAGES else {}
    return tuple(
        Output(o["name"], o.get("type") or catalog.get(o["name"], "string"), o.get("description", ""))  # type: ignore[arg-type]
        for o in raw
    )


def _env(raw: dict[str, Any], path: str, step: str, reader: TemplateReader) -> tuple[EnvVar, ...]:
    env = []
    for name, value in raw.items():
        if isinstance(value, dict):
            ref = value["secretKeyRef"]
            env.append(EnvVar(name, secret=SecretKeyRef(ref["name"], ref["key"])))
        else:
            env.append(EnvVar(name, value=reader.template(scalar_text(value), f"{path}.{name}", step)))
    return tuple(env)


def _step(raw: dict[str, Any], path: str, reader: TemplateReader, out: Collector) -> Step:
    name = raw["name"]
    uses = raw["uses"].removeprefix("sluice/") if "uses" in raw else None
    stage = STAGES.get(uses) if uses else None
    with_ = raw.get("with", {})
    for key, value in with_.items():
        expects = stage.params[key].type if stage and key in stage.params else None
        reader.nested(value, f"{path}.with.{key}", name, expects)
    when = reader.when(raw["when"], f"{path}.when", name) if "when" in raw else None
    for index, item in enumerate(raw.get("command", [])):
        # Tekton substitutes in command as in args, so its references are checked (and make DAG edges) too
        reader.nested(item, f"{path}.command[{index}]", name)
    return Step(
        name=name,
        uses=uses,
        image=reader.template(raw["image"], f"{path}.image", name) if "image" in raw else None,
        command=tuple(raw["command"]) if "command" in raw else None,
        args=tuple(reader.template(a, f"{path}.args[{i}]", name) for i, a in enumerate(raw.get("args", []))),
        script=raw.get("script"),
        with_=with_,
        env=_env(raw.get("env", {}), f"{path}.env", name, reader),
        resources=build_resources(raw.get("resources"), f"{path}.resources", out),
        retries=raw.get("retries", 0),
        timeout_seconds=build_timeout(raw.get("timeout"), f"{path}.timeout", out),
        when=when,
        run_after=tuple(raw.get("runAfter", [])),
        working_dir=reader.template(raw["workingDir"], f"{path}.workingDir", name)
        if "workingDir" in raw
        else None,
        outputs=_outputs(raw.get("outputs", []), uses),
    )


def build_native(
    doc: dict[str, Any], out: Collector, positions: dict[str, tuple[int, int]]
) -> tuple[Workflow, TemplateReader]:
    reader = TemplateReader(out, fuseml=False)
    meta, spec = doc["metadata"], doc["spec"]
    steps = []
    for index, raw in enumerate(spec["steps"]):
        path = f"$.spec.steps[{index}]"
        step = _step(raw, path, reader, out)
        if step.script is not None:
            reader.nested(step.script, f"{path}.script", step.name)
        steps.append(step)
    outputs = tuple(
        WorkflowOutput(
            o["name"],
            reader.template(o["value"], f"$.spec.outputs[{i}].value", None),
            o.get("description", ""),
        )
        for i, o in enumerate(spec.get("outputs", []))
    )
    inputs = tuple(
        Input(i["name"], i["type"], i.get("default"), i.get("description", ""))
        for i in spec.get("inputs", [])
    )
    policy = spec.get("runPolicy", {})
    size = spec.get("artifacts", {}).get("size")
    if size is not None:
        try:
            parse_quantity(size)
        except ValueError as exc:
            out.error("$.spec.artifacts.size", "spec.quantity", str(exc))
    workflow = Workflow(
        name=meta["name"],
        namespace=meta.get("namespace"),
        generation=meta.get("generation") or 1,
        labels=meta.get("labels", {}),
        description=spec.get("description", ""),
        dialect="native",
        inputs=inputs,
        outputs=outputs,
        steps=tuple(steps),
        run_policy=RunPolicy(
            concurrency=policy.get("concurrency", "Allow"),
            history_limit=policy.get("historyLimit", 10),
            trigger=policy.get("trigger", "onCodesetChange"),
        ),
        schedule=build_schedule(spec.get("schedule"), out),
        artifacts_size=scalar_text(size) if size is not None else None,
        source_file=out.file,
        positions=positions,
    )
    return workflow, reader
