"""`sluice/train-keras`: train a Keras regression model on a Sluice dataset.

The network is a declarative layer list or `build_model(n_features, n_targets)` from a script in
the codeset. Either way Sluice wraps it between a feature standardisation learned on the
training split and the inverse standardisation of the targets, so the saved model takes raw
features and returns raw targets: a serving path cannot skew from training by forgetting to
scale. The loss is computed on standardised targets (so every optimizer sees the same scale);
MAE and the other metrics are in target units. One line per epoch:
`epoch N/M loss=... val_loss=... val_mae=...` (the progress line of `controller.protocol`).

Model directory (format `sluice.model/v1`, docs/stages.md): `model.keras`, `saved_model/1/`
(the TensorFlow SavedModel in TF Serving's layout), `triton/` (a Triton model repository holding
the same export as model `model`: `triton/model/config.pbtxt` and
`triton/model/1/model.savedmodel/`, which KServe v2, Seldon Core 2 and Seldon Core 1 serve),
`model.json`, `training-manifest.json`, `metrics.json`, `history.json`, `loss.png`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from controller.protocol import progress_line
from stages import tracking
from stages.common import (
    Results,
    StageError,
    add_contract_arguments,
    json_list,
    json_number,
    non_negative_int,
    positive_int,
    quiet_tensorflow,
    run_stage,
    stage_parser,
)
from stages.model_dir import save_model_dir

PROG = "sluice/train-keras"
OUTPUTS = ("model", "val-mae", "val-loss")
OPTIMIZERS = ("adam", "adamw", "nadam", "rmsprop", "sgd", "adagrad")
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


def layers_argument(text: str) -> list[dict[str, Any]]:
    """argparse type of `--layers`: a compact JSON list, checked (a bad list is a usage error)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg})") from None
    if not isinstance(value, list):
        raise argparse.ArgumentTypeError("expected a JSON list of layers")
    try:
        return check_layers(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = stage_parser(PROG, "Train a Keras model from a layer list or a codeset script.")
    parser.add_argument("--dataset", type=Path, required=True, help="dataset directory (sluice/prepare)")
    parser.add_argument(
        "--layers", type=layers_argument, help='JSON, e.g. [{"dense":20,"activation":"relu"},{"dense":1}]'
    )
    parser.add_argument("--script", type=Path, help="Python file defining build_model(n_features, n_targets)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="[adam]")
    parser.add_argument("--learning-rate", type=json_number, default=0.001, help="[0.001]")
    parser.add_argument("--loss", choices=LOSSES, default="mse", help="[mse]")
    parser.add_argument(
        "--metrics", type=json_list, default=["mae"], help=f"JSON list of {', '.join(METRICS)}"
    )
    parser.add_argument("--epochs", type=positive_int, default=10, help="[10]")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="[32]")
    parser.add_argument(
        "--early-stopping", type=non_negative_int, default=0, help="patience on val_loss; 0 = off"
    )
    parser.add_argument("--seed", type=non_negative_int, default=42, help="[42]")
    parser.add_argument(
        "--register", help="MLflow registered model name [the workflow's name]; used when tracking is on"
    )
    add_contract_arguments(parser, OUTPUTS)
    return parser


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


def _standardised_loss(name: str, manifest: dict[str, Any]) -> Any:
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


def _metrics(names: list[str]) -> list[Any]:
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


def _epoch_printer(epochs: int) -> Any:
    import keras

    class EpochLines(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = logs or {}
            metrics = {key: logs.get(key, float("nan")) for key in ("loss", "val_loss", "val_mae")}
            print(progress_line(epoch + 1, epochs, metrics), flush=True)

    return EpochLines()


def train(
    dataset: Any, config: TrainConfig, directory: Path, on_saved: Callable[..., None] | None = None
) -> dict[str, Any]:
    """Train on `dataset`, save the model directory, return metrics.json's content.
    `on_saved(model, history, metrics)` runs once the directory is saved (MLflow logging)."""
    import keras
    import numpy as np
    import tensorflow as tf

    if len(dataset.x("validation")) == 0:
        raise StageError("the dataset's validation split is empty; give the split a validation fraction")
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    model = build_model(dataset.manifest, config)
    optimizer = keras.optimizers.get(
        {"class_name": config.optimizer, "config": {"learning_rate": config.learning_rate}}
    )
    model.compile(
        optimizer=optimizer,
        loss=_standardised_loss(config.loss, dataset.manifest),
        metrics=_metrics(config.metrics),
    )
    callbacks = [_epoch_printer(config.epochs)]
    if config.early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.early_stopping, restore_best_weights=True
            )
        )
    started = time.monotonic()
    try:
        history = model.fit(
            dataset.x("train"),
            dataset.y("train"),
            validation_data=(dataset.x("validation"), dataset.y("validation")),
            epochs=config.epochs,
            batch_size=config.batch_size,
            callbacks=callbacks,
            verbose=0,
        ).history
    except Exception as exc:  # Keras reports shape/dtype problems as assorted exception types
        raise StageError(f"training failed: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    seconds = time.monotonic() - started
    final = model.evaluate(
        dataset.x("validation"), dataset.y("validation"), batch_size=1024, verbose=0, return_dict=True
    )
    if not np.isfinite(final["loss"]):
        raise StageError("training diverged (loss is not finite); lower the learning rate")
    y_val = dataset.y("validation").astype(np.float64)
    baseline = float(np.abs(y_val - dataset.y("train").astype(np.float64).mean(axis=0)).mean())
    metrics = {
        "val_loss": float(final["loss"]),
        **{f"val_{k}": float(v) for k, v in final.items() if k not in ("loss", "compile_metrics")},
        "baseline_val_mae": baseline,
        "train_loss": float(history["loss"][-1]),
        "epochs_run": len(history["loss"]),
        "best_epoch": int(np.argmin(history["val_loss"])) + 1,
        "parameters": int(model.count_params()),
        "seconds": round(seconds, 3),
    }
    save_model_dir(directory, model, dataset, config, metrics, history)
    if on_saved is not None:
        on_saved(model, history, metrics)
    return metrics


def _logger(
    log: tracking.StepLog | None, args: argparse.Namespace, config: TrainConfig, dataset: Any, directory: Path
) -> Callable[..., None] | None:
    """What logs the trained model to MLflow (None when tracking is off)."""
    if log is None:
        return None

    def on_saved(model: Any, history: dict[str, list[float]], metrics: dict[str, Any]) -> None:
        params = {k: v for k, v in asdict(config).items() if v is not None}
        params["dataset.sha256"] = dataset.manifest.get("sha256", "")
        register = args.register or os.environ.get("SLUICE_WORKFLOW") or "model"
        sample = dataset.x("validation")[:5].tolist()  # the input example, 5 rows
        series = {key: [float(v) for v in values] for key, values in history.items()}
        registered = log.record(
            "training",
            params=params,
            history=series,
            metrics=metrics,
            model_dir=str(directory),
            sample=sample,
            register=register,
        )
        if log.spooled:
            print(f"train-keras: the run's MLflow logger logs and registers the model as {register}")
        elif registered is not None:
            text = json.dumps(registered, indent=2) + "\n"
            (directory / tracking.RECORD_FILE).write_text(text, encoding="utf-8")
            print(f"train-keras: registered {registered['model_uri']} (MLflow run {registered['run_id']})")

    return on_saved


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    results = Results(args.result, args.artifacts_dir)

    def body() -> None:
        if args.layers is not None and args.script is not None:
            raise StageError("give layers or script, not both")
        if not args.learning_rate > 0:
            raise StageError(f"learning-rate must be positive, got {args.learning_rate}")
        if not all(isinstance(m, str) for m in args.metrics):
            raise StageError(f"metrics must be a list of metric names, got {args.metrics}")
        quiet_tensorflow()
        from stages.datasets.store import read_dataset

        dataset = read_dataset(args.dataset.resolve())
        config = TrainConfig(
            layers=args.layers,
            script=str(args.script.resolve()) if args.script else None,
            optimizer=args.optimizer,
            learning_rate=args.learning_rate,
            loss=args.loss,
            metrics=list(args.metrics),
            epochs=args.epochs,
            batch_size=args.batch_size,
            early_stopping=args.early_stopping,
            seed=args.seed,
        )
        directory = results.artifact_dir("model")
        step = args.artifacts_dir.name if args.artifacts_dir else "train"
        with tracking.step_log(step, "train-keras") as log:
            metrics = train(dataset, config, directory, _logger(log, args, config, dataset, directory))
        print(
            f"train-keras: val_mae={metrics['val_mae']:.6g} (predict-the-mean baseline "
            f"{metrics['baseline_val_mae']:.6g}) after {metrics['epochs_run']} epochs; model in {directory}",
            flush=True,
        )
        results.write("model", str(directory))
        results.write("val-mae", float(metrics["val_mae"]))
        results.write("val-loss", float(metrics["val_loss"]))

    run_stage(PROG, body)


if __name__ == "__main__":
    main()
