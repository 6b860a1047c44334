"""The model directory, format `sluice.model/v1`: written by train-keras, read by evaluate and the
model server (docs/stages.md).

`model.keras` (the Keras model, uncompiled), `saved_model/1/` (the TensorFlow SavedModel in TF
Serving's layout), `triton/` (a Triton model repository holding the same export as model
`model`), `model.json` (features, targets, normalisation, training configuration, versions),
`training-manifest.json`, `serving-reference.json` (the
serving skew guard's reference, stages/serving_guard.py), `metrics.json`, `history.json`, `loss.png`.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stages.common import StageError, quiet_tensorflow, read_json, write_json
from stages.serving_guard import REFERENCE_FILE, reference_from_training
from stages.triton_export import SAVED_MODEL, write_triton_repository

if TYPE_CHECKING:  # numpy and the network's module stay unimported for evaluate and serve
    from stages.datasets.store import Dataset
    from stages.keras_network import TrainConfig

MODEL_FORMAT = "sluice.model/v1"
KERAS_FILE = "model.keras"


@dataclass(frozen=True)
class TrainedModel:
    """What a training run produced: the model directory saves it, the MLflow logger records it."""

    model: Any  # the Keras model, compiled with the standardised loss
    dataset: Dataset
    config: TrainConfig
    metrics: dict[str, Any]  # metrics.json's content
    history: dict[str, list[float]]  # per epoch, as Keras' fit returns it


def save_model_dir(directory: Path, trained: TrainedModel) -> None:
    import keras
    import tensorflow as tf

    model, dataset, history = trained.model, trained.dataset, trained.history

    for stale in ("saved_model", "triton"):  # a retried step starts clean
        shutil.rmtree(directory / stale, ignore_errors=True)
    # Save an uncompiled twin: the compiled loss is a closure that need not travel with the model.
    plain = keras.Model(model.inputs[0], model.outputs[0], name=model.name)
    plain.save(directory / KERAS_FILE)
    plain.export(str(directory / SAVED_MODEL), format="tf_saved_model", verbose=False)
    triton_model = write_triton_repository(directory)
    write_json(directory / "training-manifest.json", dataset.manifest)
    # The model server's skew guard: the training range, spread and deciles of each feature.
    write_json(
        directory / REFERENCE_FILE, reference_from_training(dataset.x("train"), dataset.manifest["features"])
    )
    write_json(directory / "metrics.json", trained.metrics)
    write_json(directory / "history.json", {k: [float(v) for v in vs] for k, vs in history.items()})
    write_json(
        directory / "model.json",
        {
            "format": MODEL_FORMAT,
            "keras_file": KERAS_FILE,
            "saved_model": SAVED_MODEL,
            "triton_model": triton_model,
            "features": dataset.feature_names,
            "targets": dataset.target_names,
            "dataset": {
                "path": str(dataset.path),
                "sha256": dataset.manifest["sha256"],
                "generator": dataset.manifest["generator"],
            },
            "normalization": {
                "features": {
                    f["name"]: {"mean": f["mean"], "std": f["std"]} for f in dataset.manifest["features"]
                },
                "targets": {
                    t["name"]: {"mean": t["mean"], "std": t["std"]} for t in dataset.manifest["targets"]
                },
            },
            "training": asdict(trained.config),
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        },
    )
    _plot_loss(directory / "loss.png", history)


def _plot_loss(path: Path, history: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    epochs = range(1, len(history["loss"]) + 1)
    axes.plot(epochs, history["loss"], label="training loss")
    axes.plot(epochs, history["val_loss"], label="validation loss")
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss (standardised targets)")
    if min(min(history["loss"]), min(history["val_loss"])) > 0:
        axes.set_yscale("log")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def load_model_dir(directory: Path) -> tuple[dict[str, Any], Any]:
    """(model.json, the Keras model) of a `sluice.model/v1` directory."""
    meta = read_json(directory / "model.json", "model")
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        raise StageError(f"model {directory}: model.json is not a {MODEL_FORMAT} description")
    quiet_tensorflow()
    import keras

    try:
        model = keras.saving.load_model(directory / meta["keras_file"], compile=False)
    except Exception as exc:
        raise StageError(f"model {directory}: cannot load {meta['keras_file']}: {exc}") from None
    return meta, model
