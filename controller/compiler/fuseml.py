"""FuseML steps keep FuseML's container contract, so its published step images run unchanged.

The contract (fuseml-core's Tekton backend):
- the container runs its `run` command;
- each value input NAME is a task param NAME and the env var `FUSEML_<NAME>`;
- `FUSEML_ENV_WORKFLOW_NAME` and `FUSEML_ENV_WORKFLOW_NAMESPACE` are set;
- `TASK_RESULT` names the output the step writes to `/tekton/results/$TASK_RESULT`;
- a codeset input is mounted at the step's `path`, which is also its working directory;
- an image taken from an earlier step's output arrives as the `IMAGE` param.
Unlike FuseML, this is Tekton v1 (no PipelineResources: an embedded clone task
checks codesets out) and tasks run in parallel wherever their references allow.
"""

from __future__ import annotations

from typing import Any

from controller.compiler.errors import Problems
from controller.compiler.naming import param_name
from controller.compiler.references import RunScope, TaskRenderer
from controller.compiler.tasks import (
    EnvList,
    RunInfo,
    TaskPlan,
    extension_env,
    secret_env,
    sluice_env,
    user_env,
    user_step_task,
)
from controller.spec.model import Step

IMAGE_PARAM = "IMAGE"
INPUT_PREFIX = "FUSEML_"
GLOBAL_PREFIX = "FUSEML_ENV_"
RESULT_ENV = "TASK_RESULT"
# FuseML's predictor steps (fuseml/extensions): they apply an InferenceService, Seldon deployment
# or OVMS server with the task pod's ServiceAccount token.
FUSEML_DEPLOYER_IMAGES = frozenset(
    f"ghcr.io/fuseml/{name}-predictor" for name in ("kserve", "kfserving", "seldon-core", "ovms")
)


def fuseml_env_name(input_name: str) -> str:
    """`FUSEML_` + the upper-cased input name, as fuseml-core spells it.

    A '-' becomes '_' (fuseml-core kept it, which no shell can read; its published images
    only use names without one).
    """
    return INPUT_PREFIX + input_name.upper().replace("-", "_")


def fuseml_task(step: Step, task_name: str, scope: RunScope, run: RunInfo, problems: Problems) -> TaskPlan:
    reserved = {param_name(name) for name, _ in step.fuseml_inputs} | {IMAGE_PARAM}
    renderer = TaskRenderer(scope, step, reserved=reserved)
    env = EnvList()
    for name, template in step.fuseml_inputs:
        path = problems.step_path(step.name, ".inputs")  # the model keeps no index of value inputs
        secret = scope.secret_of(template, step, path)
        if secret is not None:
            env.set(secret_env(fuseml_env_name(name), secret.name, secret.key))
            continue
        value = scope.pipeline_text(template, step, path)
        param = param_name(name)
        renderer.params[param] = value
        renderer.descriptions[param] = f"FuseML input {name}"
        env.set({"name": fuseml_env_name(name), "value": f"$(params.{param})"})
    _mark_artifact_use(step, scope, renderer)
    container: dict[str, Any] = {"name": task_name}
    if step.image is not None and step.image.refs:
        image_path = problems.step_path(step.name, ".image")
        renderer.params[IMAGE_PARAM] = scope.pipeline_text(step.image, step, image_path)
        renderer.descriptions[IMAGE_PARAM] = "Name (reference) of the image to run"
        container["image"] = f"$(params.{IMAGE_PARAM})"
    elif step.image is not None:
        container["image"] = step.image.raw
    container["command"] = list(step.command or ("run",))
    if step.args:
        container["args"] = [
            renderer.text(arg, problems.step_path(step.name, f".args[{i}]"))
            for i, arg in enumerate(step.args)
        ]
    if step.outputs:
        # FuseML sets TASK_RESULT once per output and the last one wins; a step has one in practice.
        env.set({"name": RESULT_ENV, "value": step.outputs[-1].name})
    env.extend(extension_env(step, scope))
    env.extend(user_env(step, scope, renderer, problems))
    env.set({"name": f"{GLOBAL_PREFIX}WORKFLOW_NAMESPACE", "value": run.namespace})
    env.set({"name": f"{GLOBAL_PREFIX}WORKFLOW_NAME", "value": run.workflow})
    env.extend(sluice_env(run))
    mounts: list[tuple[str, str, str | None]] = []
    after: list[str] = [scope.step_tasks[s] for s in step.run_after if s in scope.step_tasks]
    working_dir = None
    for mount in step.codesets:
        plan = scope.codesets.get(mount.input)
        if plan is None:
            continue
        workspace = "source" if not mounts else f"source-{plan.subdir}"
        mounts.append((workspace, plan.subdir, mount.path))
        after.append(scope.clone_tasks[mount.input])
        working_dir = mount.path or working_dir
    if step.working_dir is not None:
        working_dir = renderer.text(step.working_dir, problems.step_path(step.name, ".workingDir"))
    if working_dir:
        container["workingDir"] = working_dir
    task = user_step_task(step, task_name, container, env, renderer, run_after=after, mounts=mounts)
    task.deployer = is_fuseml_deployer(container.get("image"))
    return task


def is_fuseml_deployer(image: str | None) -> bool:
    """FuseML's published predictor images create serving resources with the pod's token, so they
    run as the deployer ServiceAccount; any other image (a user's included) never does."""
    if not image:
        return False
    repository = image.split("@", 1)[0]
    if ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    return repository in FUSEML_DEPLOYER_IMAGES


def _mark_artifact_use(step: Step, scope: RunScope, renderer: TaskRenderer) -> None:
    """FuseML steps get the artifact store only when they read a dataset/model output by path."""
    for _, template in step.fuseml_inputs:
        for ref in template.refs:
            producer = scope.workflow.step(getattr(ref, "step", ""))
            output = producer.output(getattr(ref, "output", "")) if producer else None
            if output is not None and output.is_artifact:
                renderer.uses_artifacts = True
