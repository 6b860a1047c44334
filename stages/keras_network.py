"""The network `sluice/train-keras` trains, and the loss and metrics it is trained with.

The network is a declarative layer list or `build_model(n_features, n_targets)` from a script in
the codeset. Either way Sluice wraps it between a feature standardisation learned on the
training split and the inverse standardisation of the targets, so the saved model takes raw
features and returns raw targets: a serving path cannot skew from training by forgetting to
scale. The loss is computed on standardised targets (so every optimizer sees the same scale);
MAE and the other metrics are in target units. TensorFlow is imported only inside functions.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.common import StageError

LOSSES = ("mse", "mae", "huber", "log_cosh")
METRICS = ("mae", "mse", "rmse", "mape")
ACTIVATIONS = (
    "elu",
    "gelu",
    "leaky_relu",
    "linear",
    "relu",
    "selu",
    "sigmoid",
    "silu",
    "softplus",
    "swish",
    "tanh",
)
HIDDEN_DEFAULT: list[dict[str, Any]] = [
    {"dense": 20, "activation": "relu"},
    {"dense": 20, "activation": "relu"},
]


# ---- the declarative layer list, checked before TensorFlow is imported ----


def check_layers(items: list[Any]) -> list[dict[str, Any]]:
    """Layers are {dense: N, activation: A}, {activation: A}, {dropout: R}, {normalization: batch|layer}."""
    if not items:
        raise ValueError("layers must list at least one layer")
    for index, item in enumerate(items):
        where = f"layers[{index}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected an object such as {{dense: 20, activation: relu}}")
        keys = set(item)
        if "dense" in item:
            if keys - {"dense", "activation"}:
                raise ValueError(f"{where}: unknown key(s) {sorted(keys - {'dense', 'activation'})}")
            units = item["dense"]
            if isinstance(units, bool) or not isinstance(units, int) or not 1 <= units <= 65536:
                raise ValueError(f"{where}: dense needs a unit count from 1 to 65536, got {units!r}")
        elif keys == {"dropout"}:
            rate = item["dropout"]
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1:
                raise ValueError(f"{where}: dropout needs a rate in [0, 1), got {rate!r}")
        elif keys == {"normalization"}:
            if item["normalization"] not in ("batch", "layer"):
                raise ValueError(f"{where}: normalization is batch or layer, got {item['normalization']!r}")
        elif keys != {"activation"}:
            raise ValueError(
                f"{where}: expected dense, activation, dropout or normalization; got {sorted(keys)}"
            )
        if "activation" in item and item["activation"] not in ACTIVATIONS:
            raise ValueError(
                f"{where}: unknown activation {item['activation']!r} (one of {', '.join(ACTIVATIONS)})"
            )
    return items


@dataclass
class TrainConfig:
    layers: list[dict[str, Any]] | None
    script: str | None
    optimizer: str
    learning_rate: float
    loss: str
    metrics: list[str]
    epochs: int
    batch_size: int
    early_stopping: int
    seed: int


# ---- building and training (TensorFlow imported lazily) ----


def _moments(stats: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    mean = [float(s["mean"]) for s in stats]
    # A constant column would divide by zero; it carries no information, so scale it by 1.
    variance = [float(s["std"]) ** 2 if s["std"] > 0 else 1.0 for s in stats]
    return mean, variance


def _core(config: TrainConfig, n_features: int, n_targets: int) -> list[Any]:
    import keras

    if config.script is not None:
        return [_script_model(Path(config.script), n_features, n_targets)]
    items = config.layers if config.layers is not None else [*HIDDEN_DEFAULT, {"dense": n_targets}]
    last_dense = next((item["dense"] for item in reversed(items) if "dense" in item), None)
    if last_dense != n_targets:
        raise StageError(
            f"the last dense layer has {last_dense} units but the dataset has {n_targets} target(s): "
            f"end the layer list with {{dense: {n_targets}}}"
        )
    built: list[Any] = []
    for item in items:
        if "dense" in item:
            built.append(keras.layers.Dense(item["dense"], activation=item.get("activation")))
        elif "activation" in item:
            built.append(keras.layers.Activation(item["activation"]))
        elif "dropout" in item:
            built.append(keras.layers.Dropout(float(item["dropout"])))
        elif item["normalization"] == "batch":
            built.append(keras.layers.BatchNormalization())
        else:
            built.append(keras.layers.LayerNormalization())
    return built


def _script_model(path: Path, n_features: int, n_targets: int) -> Any:
    """The contract: `build_model(n_features, n_targets)` returns a Keras model or layer that maps
    standardised features [N, n_features] to standardised targets [N, n_targets]."""
    if not path.is_file():
        raise StageError(f"script {path} does not exist")
    spec = importlib.util.spec_from_file_location("sluice_user_training_script", path)
    if spec is None or spec.loader is None:
        raise StageError(f"script {path}: cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        build = getattr(module, "build_model", None)
        if not callable(build):
            raise StageError(f"script {path}: defines no build_model(n_features, n_targets)")
        return build(n_features, n_targets)
    except StageError:
        raise
    except Exception as exc:
        raise StageError(f"script {path}: {type(exc).__name__}: {exc}") from None


def build_model(manifest: dict[str, Any], config: TrainConfig) -> Any:
    import keras

    n_features, n_targets = len(manifest["features"]), len(manifest["targets"])
    x_mean, x_var = _moments(manifest["features"])
    y_mean, y_var = _moments(manifest["targets"])
    inputs = keras.Input(shape=(n_features,), name="inputs", dtype="float32")
    hidden = keras.layers.Normalization(mean=x_mean, variance=x_var, name="standardise_features")(inputs)
    for layer in _core(config, n_features, n_targets):
        hidden = layer(hidden)
    if tuple(hidden.shape[1:]) != (n_targets,):
        raise StageError(
            f"the network outputs shape {tuple(hidden.shape[1:])}, the dataset has {n_targets} targets"
        )
    outputs = keras.layers.Normalization(mean=y_mean, variance=y_var, invert=True, name="restore_targets")(
        hidden
    )
    return keras.Model(inputs, outputs, name="sluice_model")


def standardised_loss(name: str, manifest: dict[str, Any]) -> Any:
    import keras
    from keras import ops

    base = {
        "mse": keras.losses.mean_squared_error,
        "mae": keras.losses.mean_absolute_error,
        "huber": keras.losses.huber,
        "log_cosh": keras.losses.log_cosh,
    }[name]
    mean, variance = _moments(manifest["targets"])
    shift = ops.convert_to_tensor(mean, dtype="float32")
    scale = ops.sqrt(ops.convert_to_tensor(variance, dtype="float32"))

    def standardised(y_true: Any, y_pred: Any) -> Any:
        return base((y_true - shift) / scale, (y_pred - shift) / scale)

    return standardised


def keras_metrics(names: list[str]) -> list[Any]:
    import keras

    known = {
        "mae": lambda: keras.metrics.MeanAbsoluteError(name="mae"),
        "mse": lambda: keras.metrics.MeanSquaredError(name="mse"),
        "rmse": lambda: keras.metrics.RootMeanSquaredError(name="rmse"),
        "mape": lambda: keras.metrics.MeanAbsolutePercentageError(name="mape"),
    }
    unknown = [n for n in names if n not in known]
    if unknown:
        raise StageError(f"unknown metric(s) {', '.join(unknown)} (known: {', '.join(METRICS)})")
    return [known[n]() for n in dict.fromkeys(["mae", *names])]
