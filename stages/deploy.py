"""`sluice/deploy`: serve a trained model.

- Local (`--target local`, or any target when `SLUICE_EXECUTOR=local`): start the KServe model
  server on 127.0.0.1 as a detached process (stages/endpoints.py), register it, and output the
  v2 infer URL once the model is ready. In a container (`sluice run --containers`, which sets
  `SLUICE_SERVE_REQUEST`) the step cannot start a container beside itself: it writes a serve
  request there (`{"name", "model_dir", "timeout"}`) and outputs `name`; the executor starts the
  model server's container once the step has succeeded and writes the `url` result.
- Cluster (`--target kserve|seldon|seldon-v1`, the targets of `controller.serving.TARGETS`):
  server-side apply the target's serving manifest, wait until the target says Ready, output the
  URL it derives. Every cluster target serves the Triton model repository sluice/train-keras
  writes, read from the run's artifacts PVC unless `model-uri` names another location:
  `pvc://$SLUICE_ARTIFACTS_PVC/<model path under the artifacts mount>/<target's storage_path>`,
  `triton` (the repository: KServe, Seldon Core 1) or `triton/model` (the model folder: Seldon
  Core 2). With durable model storage (`SLUICE_MODEL_STORE`, set by the operator from the chart's
  `modelStorage`), the model is first published there (stages/publish.py) and served from it.
  `--runtime sluice` (kserve): Sluice's own model server instead of Triton, in the stages image the
  compiler names in `SLUICE_SERVING_IMAGE`, serving the whole model directory.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from controller.serving import (
    RUNTIMES,
    SLUICE_RUNTIME,
    TRITON_MODEL_DIR,
    StorageAccess,
    get_target,
    run_labels,
    storage_path,
    target_for_kind,
)
from controller.serving import TARGETS as SERVING_TARGETS
from stages import arguments
from stages.common import Results, StageError, run_stage
from stages.publish import publish, store_from_env

PROG = "sluice/deploy"
OUTPUTS = ("url", "name")
TARGETS = (*SERVING_TARGETS, "local")
DEFAULT_TIMEOUT_SECONDS = 600.0
LOCAL_TIMEOUT_SECONDS = 120.0
# The stages image, which runtime `sluice` serves in; the compiler sets it when the step sets runtime.
SERVING_IMAGE_ENV = "SLUICE_SERVING_IMAGE"


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.stage_parser(
        PROG, "Serve a model: KServe, Seldon Core 2, Seldon Core 1, or a local KServe server."
    )
    parser.add_argument(
        "--model",
        required=True,
        help="model directory (sluice/train-keras), or models:/NAME/VERSION | models:/NAME@ALIAS (MLflow)",
    )
    parser.add_argument("--target", choices=TARGETS, default="kserve", help="[kserve]")
    parser.add_argument("--name", help="served model name [workflow name, or 'model']")
    parser.add_argument("--min-replicas", type=arguments.non_negative_int, help="cluster targets")
    parser.add_argument("--max-replicas", type=arguments.positive_int, help="cluster targets")
    parser.add_argument(
        "--canary-traffic-percent",
        type=arguments.non_negative_int,
        help="kserve: traffic to the new revision",
    )
    parser.add_argument("--timeout", help="how long to wait for Ready: 90, 90s, 10m, 1h [10m; local 2m]")
    parser.add_argument("--model-uri", help="serve this storage URI instead of the run's artifacts PVC")
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        help="kserve: the model server, Triton or Sluice's own (the stages image) [triton]",
    )
    parser.add_argument(
        "--resources",
        type=arguments.json_object,
        help='model server resources {"requests":{...},"limits":{...}}',
    )
    arguments.add_contract_arguments(parser, OUTPUTS)
    return parser


def parse_duration(text: str | None, default: float) -> float:
    """`--timeout` in seconds: a Go duration (`10m`, `1h30m`, `90s`) or a number of seconds (`90`)."""
    from controller import units

    if text is None:
        return default
    try:
        return units.parse_duration(text, positive=True, bare_unit="s")
    except ValueError as exc:
        raise StageError(f"timeout: {exc}") from None


def model_name(given: str | None) -> str:
    from stages.endpoints import NAME_PATTERN

    name = given or os.environ.get("SLUICE_WORKFLOW") or "model"
    if not NAME_PATTERN.match(name):
        raise StageError(f"name {name!r} must be a DNS label: lower-case letters, digits and '-', at most 63")
    return name


def check_model_dir(path: Path) -> Path:
    model_dir = path.resolve()
    if not (model_dir / "model.json").is_file():
        raise StageError(
            f"model {model_dir} is not a model directory (no model.json; see sluice/train-keras)"
        )
    return model_dir


def resolve_model(given: str, artifacts_dir: Path | None) -> tuple[Path, str]:
    """The model directory to serve and, for an MLflow registry URI, the version it resolved to
    (`models:/NAME/VERSION`): the version's Sluice model directory is downloaded first."""
    from controller.protocol import MODEL_URI_PREFIX, parse_model_uri

    if not given.startswith(MODEL_URI_PREFIX):
        return check_model_dir(Path(given)), ""
    if parse_model_uri(given) is None:
        raise StageError(f"model {given!r} is not models:/NAME/VERSION or models:/NAME@ALIAS")
    from stages import tracking

    into = (artifacts_dir or tracking.temporary_dir("sluice-deploy-")) / "registered-model"
    try:
        local, record = tracking.resolve_model(given, into)
    except tracking.TrackingError as exc:
        raise StageError(str(exc)) from None
    version = f"models:/{record['name']}/{record['version']}"
    print(f"deploy: {given} is {version} (MLflow run {record['run_id']})")
    return check_model_dir(local), version


def deploy_local(model_dir: Path, name: str, timeout: float, registered: str = "") -> str:
    from stages.endpoints import EndpointError, start_endpoint

    try:
        endpoint = start_endpoint(name, model_dir, timeout=timeout, registered=registered)
    except EndpointError as exc:
        raise StageError(str(exc)) from None
    print(f"deploy: serving {name!r} from {model_dir} at {endpoint.url} (pid {endpoint.pid})")
    return endpoint.url


def check_triton_repository(model_dir: Path) -> None:
    """Cluster runtimes serve the Triton repository; a model directory without one (trained by
    an older Sluice) would only fail later, inside the model server."""
    model = model_dir / TRITON_MODEL_DIR
    if not (model / "config.pbtxt").is_file() or not (model / "1/model.savedmodel/saved_model.pb").is_file():
        raise StageError(
            f"model {model_dir} has no Triton model repository ({TRITON_MODEL_DIR}/config.pbtxt and "
            f"{TRITON_MODEL_DIR}/1/model.savedmodel/): train it again with sluice/train-keras"
        )


def artifacts_root(model_dir: Path) -> Path:
    """The root of the run's volume as mounted: SLUICE_ARTIFACTS_ROOT, else two levels above the
    model directory (artifacts-dir is <mount>/<step>, and the model output <mount>/<step>/model)."""
    return Path(os.environ.get("SLUICE_ARTIFACTS_ROOT") or model_dir.parents[1])


def cluster_model_uri(model_dir: Path, target: str, runtime: str | None = None) -> str:
    """Where the cluster serving runtime finds this model on the run's artifacts PVC."""
    claim = os.environ.get("SLUICE_ARTIFACTS_PVC")
    if not claim:
        raise StageError("cluster deploy needs model-uri or SLUICE_ARTIFACTS_PVC (the run's artifacts claim)")
    root = artifacts_root(model_dir)
    try:
        relative = model_dir.relative_to(root)
    except ValueError:
        raise StageError(f"model {model_dir} is not under the artifacts mount {root}") from None
    path = storage_path(target, runtime)
    return f"pvc://{claim}/{relative.as_posix()}" + (f"/{path}" if path else "")


def runtime_image(target: str, runtime: str | None) -> str | None:
    """The image runtime `sluice` serves in (SLUICE_SERVING_IMAGE); None for other runtimes.
    StageError, before anything is published or applied, for a runtime the target cannot run."""
    if runtime is not None and runtime not in get_target(target).runtimes:
        takers = " and ".join(t.name for t in SERVING_TARGETS.values() if runtime in t.runtimes)
        raise StageError(f"runtime {runtime!r} is only supported by the {takers} target")
    if runtime != SLUICE_RUNTIME:
        return None
    image = os.environ.get(SERVING_IMAGE_ENV)
    if not image:
        raise StageError(
            f"runtime {runtime!r} needs the stages image in {SERVING_IMAGE_ENV} "
            "(the compiler sets it for a deploy step that sets runtime)"
        )
    return image


# ---- cluster targets ----

FIELD_MANAGER = "sluice-deploy"


def apply_and_wait(
    target: str, name: str, uri: str, namespace: str, options: dict[str, Any], timeout: float
) -> str:
    serving = get_target(target)
    labels = run_labels(os.environ.get("SLUICE_WORKFLOW"), os.environ.get("SLUICE_RUN"))
    manifest = serving.manifest(name=name, model_uri=uri, namespace=namespace, labels=labels, **options)
    api = _custom_objects_api()
    applied = server_side_apply(api, manifest)
    kind, resource = applied["kind"], f"{applied['kind']} {namespace}/{name}"
    print(f"deploy: applied {resource} serving {uri}; waiting up to {timeout:g}s for Ready", flush=True)
    status = wait_ready(api, manifest, timeout)
    url = serving_url(kind, manifest, status, name, namespace)
    headers = "".join(
        f" with header '{key}: {value}'" for key, value in serving.request_headers(name).items()
    )
    print(f"deploy: {resource} is Ready at {url}{headers}")
    return url


def _custom_objects_api() -> Any:
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:  # KUBECONFIG read now: the client reads it only once, when first imported
            config.load_kube_config(config_file=os.environ.get("KUBECONFIG") or None)
        except (config.ConfigException, OSError) as exc:
            raise StageError(f"no Kubernetes configuration (in-cluster or KUBECONFIG): {exc}") from None
    return client.CustomObjectsApi()


def _coordinates(manifest: dict[str, Any]) -> tuple[str, str, str, str, str]:
    group, _, version = manifest["apiVersion"].rpartition("/")
    metadata = manifest["metadata"]
    plural = target_for_kind(manifest["kind"]).plural
    return group, version, metadata.get("namespace", "default"), plural, metadata["name"]


def server_side_apply(api: Any, manifest: dict[str, Any]) -> dict[str, Any]:
    from kubernetes.client.exceptions import ApiException

    group, version, namespace, plural, name = _coordinates(manifest)
    try:
        return dict(
            api.patch_namespaced_custom_object(
                group,
                version,
                namespace,
                plural,
                name,
                manifest,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type="application/apply-patch+yaml",
            )
        )
    except ApiException as exc:
        raise StageError(
            f"applying {manifest['kind']} {namespace}/{name} failed: {_api_reason(exc)}"
        ) from None


def _api_reason(exc: Any) -> str:
    import json

    try:
        return str(json.loads(exc.body).get("message") or exc.reason)
    except (TypeError, ValueError, AttributeError):
        return f"HTTP {exc.status} {exc.reason}"


def ready_state(kind: str, status: dict[str, Any]) -> tuple[bool, str]:
    """(ready, description of the Ready condition) from a serving resource's status."""
    readiness = target_for_kind(kind).readiness(status)
    return readiness.ready, readiness.description


def wait_ready(api: Any, manifest: dict[str, Any], timeout: float) -> dict[str, Any]:
    import time

    from kubernetes.client.exceptions import ApiException

    group, version, namespace, plural, name = _coordinates(manifest)
    resource = f"{manifest['kind']} {namespace}/{name}"
    deadline = time.monotonic() + timeout
    description = "not observed"
    while True:
        try:
            current = api.get_namespaced_custom_object(group, version, namespace, plural, name)
        except ApiException as exc:
            raise StageError(f"reading {resource} failed: {_api_reason(exc)}") from None
        status = current.get("status") or {}
        ready, description, failed = target_for_kind(manifest["kind"]).readiness(status)
        if ready:
            return dict(status)
        if failed:
            raise StageError(f"{resource} failed: {description}")
        if time.monotonic() >= deadline:
            raise StageError(f"{resource} not Ready after {timeout:g}s: {description}")
        time.sleep(min(2.0, max(0.05, deadline - time.monotonic())))


def serving_url(
    kind: str, manifest: dict[str, Any], status: dict[str, Any], name: str, namespace: str
) -> str:
    """The prediction URL: v2 infer, under the name the runtime knows the model by."""
    return target_for_kind(kind).url(manifest, status, name, namespace)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    results = Results(args.result, args.artifacts_dir)

    def body() -> None:
        name = model_name(args.name)
        model_dir, registered = resolve_model(args.model, args.artifacts_dir)
        local = args.target == "local" or os.environ.get("SLUICE_EXECUTOR") == "local"
        request = os.environ.get("SLUICE_SERVE_REQUEST")
        if local and request:
            timeout = parse_duration(args.timeout, LOCAL_TIMEOUT_SECONDS)
            fields = {"name": name, "model_dir": str(model_dir), "timeout": timeout}
            Path(request).write_text(json.dumps(fields), encoding="utf-8")
            print(f"deploy: asked the executor to serve {name!r} from {model_dir} in a container")
            results.write("name", name)
            return
        if local:
            timeout = parse_duration(args.timeout, LOCAL_TIMEOUT_SECONDS)
            url = deploy_local(model_dir, name, timeout, registered)
        else:
            runtime = args.runtime
            image = runtime_image(args.target, runtime)
            if not args.model_uri and runtime != SLUICE_RUNTIME:
                check_triton_repository(model_dir)
            store = None if args.model_uri else store_from_env()
            access: StorageAccess | None = None
            if store is not None:  # durable model storage: publish, then serve from there
                step = args.artifacts_dir.name if args.artifacts_dir else "deploy"
                published = publish(model_dir, store, root=artifacts_root(model_dir), step=step)
                uri, access = published.serving_uri(args.target, runtime), published.access(args.target)
            else:
                uri = args.model_uri or cluster_model_uri(model_dir, args.target, runtime)
            options: dict[str, Any] = {
                "min_replicas": args.min_replicas,
                "max_replicas": args.max_replicas,
                "canary_traffic_percent": args.canary_traffic_percent,
                "resources": args.resources,
                "storage": access,
            }
            if runtime is not None:  # only then: manifests without it stay as they were
                options.update(runtime=runtime, runtime_image=image)
            namespace = os.environ.get("SLUICE_NAMESPACE") or "default"
            timeout = parse_duration(args.timeout, DEFAULT_TIMEOUT_SECONDS)
            url = apply_and_wait(args.target, name, uri, namespace, options, timeout)
        results.write("url", url)
        results.write("name", name)

    run_stage(PROG, body)


if __name__ == "__main__":
    main()
