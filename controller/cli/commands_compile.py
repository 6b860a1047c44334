"""`sluice compile` and `sluice deploy-manifest`: print what would run and what would serve."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from controller.cli.options import ExtensionsOption, InputsOption
from controller.serving import TARGETS

DEFAULT_REVISION = "HEAD"

if TYPE_CHECKING:
    TargetName = str
else:  # `--target` choices: the registry's targets, in its order
    TargetName = StrEnum("TargetName", {name.replace("-", "_"): name for name in TARGETS})


def name_value_pairs(values: list[str], option: str) -> dict[str, str]:
    """`NAME=VALUE` options -> a dict; a malformed or repeated name is a usage error (exit 2)."""
    pairs: dict[str, str] = {}
    for text in values:
        name, sep, value = text.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"expected NAME=VALUE, got {text!r}", param_hint=option)
        if name in pairs:
            raise typer.BadParameter(f"{name!r} is given twice", param_hint=option)
        pairs[name] = value
    return pairs


def _scalar(text: str) -> Any:
    """A command-line value as a YAML scalar (`20000` -> 20000, `true` -> True); text otherwise.

    Read with the workflow loader's own parser (libyaml events, depth checked before anything is
    built): PyYAML's pure-Python loader takes quadratic time on `[[[[...` before it gives up."""
    from controller.spec.yamlload import YamlError, parse_yaml

    try:
        value = parse_yaml(text, "--input").value
    except YamlError:
        return text
    return value if isinstance(value, str | int | float | bool) else text


def parse_inputs(raw: dict[str, str], workflow: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, text in raw.items():
        declared = workflow.input(name)
        keep_text = declared is not None and declared.type in ("string", "dataset", "model", "codeset")
        values[name] = text if keep_text else _scalar(text)
    return values


def _fail(lines: list[str]) -> None:
    for line in lines:
        print(line, file=sys.stderr)
    raise typer.Exit(1)


def _model_store() -> Any:
    """The durable model storage of SLUICE_MODEL_STORE* (as the operator reads it); exit 1 if it
    cannot work."""
    import os

    from controller.serving.store import ModelStore, ModelStoreError

    try:
        return ModelStore.from_env(os.environ)
    except ModelStoreError as exc:
        _fail([f"SLUICE_MODEL_STORE: {exc}"])


def compile_command(
    path: Annotated[Path, typer.Argument(help="Workflow file (native or FuseML).")],
    inputs: InputsOption = None,
    codesets: Annotated[
        list[str] | None,
        typer.Option("--codeset", metavar="NAME=URL", help="A codeset input's repository (repeatable)."),
    ] = None,
    revisions: Annotated[
        list[str] | None,
        typer.Option(
            "--codeset-revision",
            metavar="NAME=SHA",
            help=f"A codeset input's commit (repeatable; default {DEFAULT_REVISION}).",
        ),
    ] = None,
    extensions: ExtensionsOption = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="Namespace of the PipelineRun.")
    ] = None,
) -> None:
    """Print the Tekton PipelineRun (tekton.dev/v1, embedded pipelineSpec) a workflow compiles to."""
    import os

    from controller import settings
    from controller.compiler import (
        CodesetSource,
        CompileError,
        ExtensionError,
        ExtensionRegistry,
        compile_run,
        to_yaml,
    )
    from controller.serving.tracking import MlflowTracking
    from controller.spec import SpecError, load_workflow
    from controller.spec.extension_files import ExtensionFileError, read_extension_files

    raw_inputs = name_value_pairs(inputs or [], "--input")
    urls = name_value_pairs(codesets or [], "--codeset")
    pinned = name_value_pairs(revisions or [], "--codeset-revision")
    for name in pinned:
        if name not in urls:
            raise typer.BadParameter(f"{name!r} has no --codeset {name}=URL", param_hint="--codeset-revision")
    try:
        workflow = load_workflow(str(path))
    except SpecError as exc:
        _fail([d.format() for d in exc.diagnostics])
        return
    registry = None
    # MLflow tracking as the operator reads it (SLUICE_MLFLOW_*, the chart's `mlflow` values)
    mlflow = MlflowTracking.from_env(os.environ)
    try:
        documents = read_extension_files([extensions]) if extensions is not None else []
        if mlflow is not None:
            documents = mlflow.extension_documents(documents)
        registry = ExtensionRegistry.from_sources(documents) if documents else None
    except (ExtensionFileError, ExtensionError) as exc:
        _fail([f"{extensions}: {exc}" if str(extensions) not in str(exc) else str(exc)])
    sources = {name: CodesetSource(url, pinned.get(name, DEFAULT_REVISION)) for name, url in urls.items()}
    try:
        run = compile_run(
            workflow,
            inputs=parse_inputs(raw_inputs, workflow),
            codesets=sources,
            extensions=registry,
            namespace=namespace,
            # the command line is an edge: the environment's switches are read here, once
            stages_image=settings.stages_image(),
            allow_local_git=settings.allow_local_git(),
            allow_cluster_git_hosts=settings.allow_cluster_git_hosts(),
            model_store=_model_store(),
            mlflow=mlflow,
        )
    except CompileError as exc:
        _fail([d.format() for d in exc.diagnostics])
        return
    sys.stdout.write(to_yaml(run))


def deploy_manifest(
    target: Annotated[TargetName, typer.Option("--target", help="Serving platform.")],
    name: Annotated[str, typer.Option("--name", help="Name of the served model.")],
    model_uri: Annotated[
        str,
        typer.Option(
            "--model-uri",
            help="Where the model is (s3://, gs://, pvc://...): the Triton repository (.../triton) "
            "for kserve and seldon-v1, the model folder (.../triton/model) for seldon.",
        ),
    ],
    namespace: Annotated[str | None, typer.Option("--namespace", help="Namespace of the resource.")] = None,
    min_replicas: Annotated[int | None, typer.Option("--min-replicas", min=0)] = None,
    max_replicas: Annotated[int | None, typer.Option("--max-replicas", min=1)] = None,
    canary_traffic_percent: Annotated[
        int | None, typer.Option("--canary-traffic-percent", min=0, max=100, help="kserve only.")
    ] = None,
) -> None:
    """Print the serving manifest the deploy stage would apply (KServe, Seldon Core 2 or 1)."""
    from controller.compiler import to_yaml
    from controller.serving import ServingError, serving_manifest

    try:
        manifest = serving_manifest(
            str(target),
            name=name,
            model_uri=model_uri,
            namespace=namespace,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            canary_traffic_percent=canary_traffic_percent,
        )
    except ServingError as exc:
        _fail([f"sluice deploy-manifest: {exc}"])
        return
    sys.stdout.write(to_yaml(manifest))


def register(app: typer.Typer) -> None:
    app.command("compile")(compile_command)
    app.command("deploy-manifest")(deploy_manifest)
