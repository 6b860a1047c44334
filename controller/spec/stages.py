"""The catalog of built-in stages (`uses: sluice/<name>`): their parameters and outputs.

The validator checks `with:` keys and declared outputs against it, the compiler
turns it into task params, and `tests/stages/test_catalog.py` checks that every
stage program's command line accepts exactly these parameters and results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ParamType = Literal["string", "integer", "number", "boolean", "list", "object", "dataset", "model", "any"]
# What a step can learn about the run's artifacts workspace: the claim's name, its mount path, or
# `root`: where the claim's root would be mounted (the artifacts workspace is a subPath of the
# run's one claim), so that a path under the mount relative to it is the path inside the claim.
WorkspaceFact = Literal["claim", "path", "root"]


@dataclass(frozen=True)
class StageParam:
    type: ParamType
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class StageSpec:
    name: str
    description: str
    params: dict[str, StageParam] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)  # output name -> output type
    # Environment of the stage's step beyond the run-wide SLUICE_* variables: variable name ->
    # the artifacts workspace's fact it carries (Tekton's `$(workspaces.artifacts.<fact>)`).
    artifacts_env: dict[str, WorkspaceFact] = field(default_factory=dict)
    # Whether the stage's task runs as the deployer ServiceAccount (the only one with API rights:
    # it manages serving resources); every other task runs as one with no rights and no token.
    deployer: bool = False
    # Whether the stage's step needs a network (`sluice run --containers` gives every other step
    # none): deploy talks to the cluster's API server.
    network: bool = False
    # Variables that get the stages image when the step sets a param: param -> variable name
    # (deploy's `runtime: sluice` serves the model in the stages image). A step that does not
    # set the param compiles exactly as without it.
    image_env: dict[str, str] = field(default_factory=dict)

    @property
    def module(self) -> str:
        """The stage's program, `python -m stages.<module>`: its name as a Python module name."""
        return self.name.replace("-", "_")


STAGES: dict[str, StageSpec] = {
    s.name: s
    for s in [
        StageSpec(
            name="prepare",
            description="Generate or ingest a dataset, split it and write its manifest.",
            params={
                "generator": StageParam(
                    "string", description="sum-of-two | sum-of-two-equal-pairs | three-body"
                ),
                "source": StageParam("string", description="CSV or NPZ file to ingest (e.g. in a codeset)"),
                "target": StageParam("string", description="label column(s) of an ingested CSV"),
                "samples": StageParam("integer"),
                "low": StageParam("number"),
                "high": StageParam("number"),
                "split": StageParam("list", description="train/validation/test fractions"),
                "seed": StageParam("integer"),
                "time-steps": StageParam("integer"),
                "duration": StageParam("number"),
            },
            outputs={"dataset": "dataset", "rows": "number"},
        ),
        StageSpec(
            name="train-keras",
            description="Train a Keras model from a layer list or a codeset script.",
            params={
                "dataset": StageParam("dataset", required=True),
                "layers": StageParam("list"),
                "script": StageParam("string", description="training script in a codeset"),
                "optimizer": StageParam("string"),
                "learning-rate": StageParam("number"),
                "loss": StageParam("string"),
                "metrics": StageParam("list"),
                "epochs": StageParam("integer"),
                "batch-size": StageParam("integer"),
                "early-stopping": StageParam("integer", description="patience in epochs; 0 disables"),
                "seed": StageParam("integer"),
                "register": StageParam(
                    "string", description="MLflow registered model name [the workflow's]; docs/mlflow.md"
                ),
            },
            outputs={"model": "model", "val-mae": "number", "val-loss": "number"},
        ),
        StageSpec(
            name="evaluate",
            description="Score a model on the held-out split, probe out-of-range inputs, check skew.",
            params={
                "model": StageParam("model", required=True),
                "dataset": StageParam("dataset", required=True),
                "probe": StageParam("list", description="extra input rows to probe"),
                "serving-stats": StageParam("string", description="serving-time feature statistics (JSON)"),
            },
            outputs={
                "mae": "number",
                "mse": "number",
                "r2": "number",
                "probe-mae": "number",
                "skew": "number",
            },
        ),
        StageSpec(
            name="promote",
            description="Point an MLflow registered-model alias (e.g. champion) at a trained model.",
            params={
                "model": StageParam("model", required=True),
                "alias": StageParam("string", required=True, description="e.g. champion"),
                "name": StageParam("string", description="registered model name [train-keras's register]"),
            },
            outputs={"version": "string"},
            # it talks to the MLflow tracking server (the registry)
            network=True,
        ),
        StageSpec(
            name="deploy",
            description="Serve a model: KServe, Seldon Core 2, Seldon Core 1, or a local KServe server.",
            params={
                "model": StageParam("model", required=True),
                "target": StageParam("string", description="kserve | seldon | seldon-v1 | local"),
                "name": StageParam("string"),
                "min-replicas": StageParam("integer"),
                "max-replicas": StageParam("integer"),
                "canary-traffic-percent": StageParam("integer"),
                "timeout": StageParam("string", description="wait this long for Ready, e.g. 300s, 10m"),
                "model-uri": StageParam(
                    "string", description="storage URI to serve instead of the run's PVC"
                ),
                "resources": StageParam("object", description="model server requests/limits"),
                "runtime": StageParam(
                    "string", description="kserve: triton | sluice (Sluice's model server, the stages image)"
                ),
            },
            outputs={"url": "string", "name": "string"},
            # A cluster serving runtime reads the model from the run's artifacts claim
            # (pvc://CLAIM/PATH, PATH relative to the claim's root).
            artifacts_env={"SLUICE_ARTIFACTS_PVC": "claim", "SLUICE_ARTIFACTS_ROOT": "root"},
            deployer=True,
            network=True,
            image_env={"runtime": "SLUICE_SERVING_IMAGE"},
        ),
    ]
}

# Internal stages the compiler emits that need a network: clone fetches the codeset, tracking_end
# ends the run's MLflow run on the tracking server.
INTERNAL_NETWORK_MODULES = frozenset({"clone", "tracking_end"})


def module_needs_network(module: str) -> bool:
    """Whether `python -m stages.<module>` needs a network (the catalog's `network`, or clone)."""
    return module in INTERNAL_NETWORK_MODULES or any(s.network for s in STAGES.values() if s.module == module)
