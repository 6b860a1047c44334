"""The steps around a native container step that declares outputs (`stages.outputs`).

The user's program writes output NAME to `{{ outputs.NAME.path }}` (`references.output_path`): a
scalar's Tekton result file, or a dataset/model's directory `<artifacts>/<step>/<output>`. Other
steps read a dataset/model output as a path, from its result, so the task must also write that
path into the result file although the program only writes into the directory. Two small steps
in the stages image, in the same task (so the same pod, the same mounts and the same order under
Tekton, the local executor's host processes and containers), do it:

- `prepare-outputs`, before the program, only when there are dataset/model outputs: creates each
  directory, empty, so the program can write into it at once (also after a failed attempt);
- `check-outputs`, after it: fails with one line naming each output not written (an empty
  directory, a missing result file), writes each directory's path into its result and drops a
  trailing newline from scalar results.
"""

from __future__ import annotations

from typing import Any

from controller.compiler.containers import internal_resources, security_context
from controller.compiler.references import output_path
from controller.spec.model import Step

PREPARE_STEP = "prepare-outputs"
CHECK_STEP = "check-outputs"


def _container(
    name: str, task_name: str, image: str, args: list[str], env: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "name": name if name != task_name else f"sluice-{name}",  # step names are unique in a task
        "image": image,
        "command": ["python", "-m", "stages.outputs"],
        "args": args,
        "env": env,
        "computeResources": internal_resources(),
        "securityContext": security_context(),
    }


def output_steps(
    step: Step, task_name: str, stages_image: str, env: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(steps before the user's container, steps after it); none when the step declares no output."""
    if not step.outputs:
        return [], []
    directories = [["--directory", f"{o.name}={output_path(step, o)}"] for o in step.outputs if o.is_artifact]
    check = ["check", "--step", step.name]
    for output in step.outputs:
        check += ["--result", f"{output.name}=$(results.{output.name}.path)"]
        if output.is_artifact:
            check += ["--directory", f"{output.name}={output_path(step, output)}"]
    after = [_container(CHECK_STEP, task_name, stages_image, check, env)]
    if not directories:
        return [], after
    prepare = ["prepare", *(arg for pair in directories for arg in pair)]
    return [_container(PREPARE_STEP, task_name, stages_image, prepare, env)], after
