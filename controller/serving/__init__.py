"""Serving targets: the manifests the deploy stage applies and `sluice deploy-manifest` prints.

The small library the step programs in `stages/` share with the compiler and the CLI: it
depends on `controller.settings`, `controller.units` and `controller.resources` only (standard
library otherwise), never on the compiler, the spec, the executors or the operator.

Every target serves the Triton model repository sluice/train-keras writes (`triton.py`) over
the Open Inference Protocol v2. One `ServingTarget` per platform (`target.py`) says which
resource it creates, where it reads the model (`storage_path`), under which name it serves it,
when it is Ready and at which URL; `TARGETS` (`registry.py`) lists them by name:
- `kserve`: KServe `InferenceService` (`kserve.py`);
- `seldon`: Seldon Core 2 `Model`, `seldon-v1`: Seldon Core 1 `SeldonDeployment` (`seldon.py`).
"""

from controller.serving.registry import (
    TARGETS,
    get_target,
    served_model_name,
    serving_manifest,
    storage_path,
    target_for_kind,
)
from controller.serving.target import (
    LABEL_MODEL,
    RUNTIMES,
    SERVING_LIMITS,
    SERVING_REQUESTS,
    SERVING_UID,
    SLUICE_RUNTIME,
    TRITON_RUNTIME,
    ManifestRequest,
    Readiness,
    ServingError,
    ServingTarget,
    StorageAccess,
    run_labels,
)
from controller.serving.triton import TRITON_MODEL_DIR, TRITON_MODEL_NAME, TRITON_REPOSITORY

__all__ = [
    "LABEL_MODEL",
    "RUNTIMES",
    "SERVING_LIMITS",
    "SERVING_REQUESTS",
    "SERVING_UID",
    "SLUICE_RUNTIME",
    "TARGETS",
    "TRITON_MODEL_DIR",
    "TRITON_MODEL_NAME",
    "TRITON_REPOSITORY",
    "TRITON_RUNTIME",
    "ManifestRequest",
    "Readiness",
    "ServingError",
    "ServingTarget",
    "StorageAccess",
    "get_target",
    "run_labels",
    "served_model_name",
    "serving_manifest",
    "storage_path",
    "target_for_kind",
]
