"""Tekton step results (docs/stepactions.md "Emitting Results", "Passing Results between Steps").

A step (inline, or the StepAction it refers to) declares `results`; it writes each to
`$(step.results.<name>.path)`, which is `/tekton/steps/step-<step>/results/<name>` in a pod (here
under the task attempt's `steps/` folder for host processes). A later step of the same task reads
one as `$(steps.<step>.results.<name>)` (`[*]`, `[i]`, `.key` for arrays and objects) in its `env`,
`command` and `args` only, as Tekton's validation allows; a StepAction param given such a value
carries it to where the StepAction uses the param. Tekton's entrypoint substitutes these when the
step starts (they exist only then): so does `StepResultReader`, with the executor's one
substitution engine. A task result may take its value from a step result
(`value: $(steps.<step>.results.<name>)`).

Where Tekton's entrypoint logs a failed substitution and runs the step with the literal text (a
result not written, an index out of range), the step fails here, saying why.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from controller.executors.local.process import Step
from controller.executors.local.secrets import Redactor
from controller.executors.local.tekton import UnsupportedError
from controller.executors.local.typed import ResultTypeError, check_results, declared_type, parse_result
from controller.executors.local.variables import (
    Scope,
    Value,
    VariableError,
    references,
    substitute_list,
    substitute_string,
)
from controller.protocol import MAX_RESULTS_BYTES

_REF = re.compile(r"\$\(([^()\s]+)\)")
# steps.<step>.results.<result> and what follows it ([*], [i], .key)
_STEP_REF = re.compile(r"steps\.([^.\[]+)\.results\.([^.\[]+)(.*)")
_OWN_REF = re.compile(r"step\.results\.([^.\[]+)\.path")
# Tekton's result name rule (pkg/apis/pipeline/v1 ResultNameFormat)
_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_ALLOWED_IN = re.compile(r"^\.(env\[\d+\]\.value|command\[\d+\]|args\[\d+\])$")


def declared(step: dict[str, Any]) -> list[dict[str, Any]]:
    results = step.get("results")
    return results if isinstance(results, list) else []


def step_name(step: dict[str, Any]) -> str:
    return str(step.get("name") or "")


def own_paths(step: dict[str, Any], folder: str) -> dict[str, Value]:
    """`step.results.<r>.path` of one step, its results folder being `folder`."""
    return {f"step.results.{r['name']}.path": f"{folder}/{r['name']}" for r in declared(step)}


def pending(steps: list[dict[str, Any]]) -> tuple[str, ...]:
    """The `steps.<s>.results` prefixes left for when each step starts."""
    return tuple(f"steps.{step_name(s)}.results" for s in steps if declared(s) and step_name(s))


# ---- before the run: declarations and references, with Tekton's rules --------------------------


def check_task(spec: dict[str, Any], path: str) -> None:
    """Raise UnsupportedError on a step result declaration or reference Tekton would refuse, or
    one that could not be resolved (a step that does not run before, a result not declared)."""
    steps = [s if isinstance(s, dict) else {} for s in spec.get("steps") or []]
    for j, step in enumerate(steps):
        at = f"{path}.steps[{j}]"
        _check_declarations(step, f"{at}.results")
        for where, ref in _refs(step, at):
            _check_ref(ref, where, at, steps, j)
    for i, result in enumerate(spec.get("results") or []):
        if isinstance(result, dict) and "value" in result:
            _check_task_result(result["value"], f"{path}.results[{i}].value", steps)


def _check_declarations(step: dict[str, Any], at: str) -> None:
    results = step.get("results")
    if results is None:
        return
    if not isinstance(results, list):
        raise UnsupportedError(f"{at}: expected a list")
    names: set[str] = set()
    for i, decl in enumerate(results):
        where = f"{at}[{i}]"
        name = decl.get("name") if isinstance(decl, dict) else None
        if not isinstance(name, str) or not _NAME.match(name):
            raise UnsupportedError(f"{where}.name: a result name is letters, digits, '-', '_' and '.'")
        if name in names:
            raise UnsupportedError(f"{where}.name: result {name!r} is declared twice")
        names.add(name)
        unknown = sorted(set(decl) - {"name", "type", "description", "properties"})
        if unknown:
            raise UnsupportedError(f"{where}.{unknown[0]}: a step result has no field {unknown[0]}")
        kind = declared_type(decl)
        if kind not in ("string", "array", "object"):
            raise UnsupportedError(f"{where}.type: {kind!r} is not string, array or object")
        if kind == "object" and not isinstance(decl.get("properties"), dict):
            raise UnsupportedError(f"{where}.properties: an object result declares its properties")


def _refs(obj: Any, path: str) -> list[tuple[str, str]]:
    """(JSON path, reference) of every `$(steps.*)` / `$(step.*)` in `obj`."""
    if isinstance(obj, str):
        found = [m.group(1) for m in _REF.finditer(obj)]
        return [(path, r) for r in found if r.startswith(("steps.", "step."))]
    if isinstance(obj, list):
        return [f for i, item in enumerate(obj) for f in _refs(item, f"{path}[{i}]")]
    if isinstance(obj, dict):
        return [f for k, v in obj.items() if k != "results" for f in _refs(v, f"{path}.{k}")]
    return []


def _check_ref(ref: str, where: str, at: str, steps: list[dict[str, Any]], j: int) -> None:
    own = _OWN_REF.fullmatch(ref)
    if own:
        if own.group(1) not in {r.get("name") for r in declared(steps[j])}:
            raise UnsupportedError(f"{where}: $({ref}): this step declares no result {own.group(1)!r}")
        return
    match = _STEP_REF.fullmatch(ref)
    if not match:
        return  # exitCode paths and unknown variables: refcheck.py's
    if not _ALLOWED_IN.match(where[len(at) :]):
        raise UnsupportedError(
            f"{where}: $({ref}): step results can be used only in a step's env, command and args "
            "(Tekton refuses them elsewhere)"
        )
    _producer(match.group(1), match.group(2), ref, where, steps[:j], steps[j:])


def _producer(
    name: str, result: str, ref: str, where: str, before: list[dict[str, Any]], after: list[dict[str, Any]]
) -> dict[str, Any]:
    """The declaration of result `result` of the step `name` among `before`, else why not."""
    step = next((s for s in before if step_name(s) == name), None)
    if step is None:
        later = any(step_name(s) == name for s in after)
        why = f"step {name!r} runs after this one" if later else f"the task has no step named {name!r}"
        raise UnsupportedError(f"{where}: $({ref}): {why}")
    decl = next((r for r in declared(step) if r.get("name") == result), None)
    if decl is None:
        raise UnsupportedError(f"{where}: $({ref}): step {name!r} declares no result {result!r}")
    return decl


def _check_task_result(value: Any, where: str, steps: list[dict[str, Any]]) -> None:
    whole = _REF.fullmatch(value) if isinstance(value, str) else None
    match = _STEP_REF.fullmatch(whole.group(1)) if whole else None
    if match is None or match.group(3):
        raise UnsupportedError(f"{where}: a task result's value is $(steps.<step>.results.<result>)")
    _producer(match.group(1), match.group(2), whole.group(1) if whole else "", where, steps, [])


# ---- while the steps run: values read from the files the steps wrote ---------------------------


@dataclass
class StepResultReader:
    """The results a task attempt's steps wrote under `folder` (`<dir>/results/<result>`, `dirs`
    the steps' folders), read, typed and checked as Tekton reads them; `secrets()`: the values no
    result may hold."""

    folder: Path
    steps: list[dict[str, Any]]
    dirs: list[str]
    secrets: Callable[[], set[str]]

    @property
    def used(self) -> bool:
        return any(declared(s) for s in self.steps)

    def texts(self, step: dict[str, Any]) -> dict[str, str]:
        """What one step wrote, checked: declared types and keys, size, no secret."""
        name, decls = step_name(step), declared(step)
        texts: dict[str, str] = {}
        for decl in decls:
            path = self.folder / self.dirs[self.steps.index(step)] / "results" / decl["name"]
            if path.is_file():
                texts[decl["name"]] = path.read_text(encoding="utf-8", errors="replace")
        try:
            check_results(texts, decls)
        except ResultTypeError as exc:
            raise ResultTypeError(f"step {name!r}: {exc}") from None
        size = sum(len(v.encode()) for v in texts.values())
        if size > MAX_RESULTS_BYTES:  # each step's results are its own termination message
            raise ValueError(f"step {name!r} results total {size} bytes, over Tekton's {MAX_RESULTS_BYTES}")
        redactor = Redactor(self.secrets())
        leaking = sorted(r for r, v in texts.items() if redactor.found_in(v))
        if leaking:
            raise ValueError(f"step {name!r} result {', '.join(leaking)} holds a secret value: not used")
        return texts

    def value(self, name: str, result: str) -> Value:
        step = next(s for s in self.steps if step_name(s) == name)
        texts = self.texts(step)
        if result not in texts:
            raise ValueError(f"step {name!r} did not write its result {result!r}")
        return _typed(texts[result], step, result)

    def start(self, step: Step) -> Step:
        """`step` with the step results its env, command and args name substituted (Tekton's
        entrypoint does this as the step starts); ValueError says why it cannot start."""
        refs = references([step.argv, list(step.env.values())])
        values: dict[str, Value] = {}
        for ref in refs:
            match = _STEP_REF.fullmatch(ref)
            if match and any(step_name(s) == match.group(1) for s in self.steps):
                key = f"steps.{match.group(1)}.results.{match.group(2)}"
                values[key] = values.get(key) or self.value(match.group(1), match.group(2))
        if not values:
            return step
        scope = Scope(values, pending(self.steps), (), f"step {step.name}")
        try:
            argv = substitute_list(step.argv, scope)
            env = {k: substitute_string(v, scope) for k, v in step.env.items()}
        except VariableError as exc:
            raise ValueError(str(exc)) from None
        return replace(step, argv=argv, env=env)

    def task_results(self, spec_results: list[dict[str, Any]]) -> dict[str, str]:
        """Task results whose `value` is a step result: each step's results checked first."""
        for step in self.steps:
            self.texts(step)
        out: dict[str, str] = {}
        for decl in spec_results:
            match = _STEP_REF.fullmatch(str(decl.get("value", ""))[2:-1])
            if match is None:
                continue
            step = next(s for s in self.steps if step_name(s) == match.group(1))
            texts = self.texts(step)
            if match.group(2) in texts:
                out[decl["name"]] = texts[match.group(2)]
        return out


def _typed(text: str, step: dict[str, Any], result: str) -> Value:
    """A result as Tekton types it: a declared string as written, else as JSON when it parses."""
    decl = next(r for r in declared(step) if r["name"] == result)
    return text if declared_type(decl) == "string" else parse_result(text)
