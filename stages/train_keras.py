"""`sluice/train-keras`: train a Keras regression model on a Sluice dataset.

The network, a declarative layer list or a codeset script's `build_model`, standardised on the
way in and out, and its loss and metrics are `stages.keras_network`. One line per epoch:
`epoch N/M loss=... val_loss=... val_mae=...` (the progress line of `controller.protocol`).

Model directory (format `sluice.model/v1`, docs/stages.md): `model.keras`, `saved_model/1/`
(the TensorFlow SavedModel in TF Serving's layout), `triton/` (a Triton model repository holding
the same export as model `model`: `triton/model/config.pbtxt` and
`triton/model/1/model.savedmodel/`, which KServe v2, Seldon Core 2 and Seldon Core 1 serve),
`model.json`, `training-manifest.json`, `metrics.json`, `history.json`, `loss.png`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.protocol import progress_line
from stages import arguments, tracking
from stages.common import Results, StageError, quiet_tensorflow, run_stage
from stages.keras_network import (
    LOSSES,
    METRICS,
    TrainConfig,
    build_model,
    check_layers,
    keras_metrics,
    standardised_loss,
)
from stages.model_dir import TrainedModel, save_model_dir

if TYPE_CHECKING:  # numpy is imported once the arguments are checked
    from stages.datasets.store import Dataset

PROG = "sluice/train-keras"
OUTPUTS = ("model", "val-mae", "val-loss")
OPTIMIZERS = ("adam", "adamw", "nadam", "rmsprop", "sgd", "adagrad")


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
    parser = arguments.stage_parser(PROG, "Train a Keras model from a layer list or a codeset script.")
    parser.add_argument("--dataset", type=Path, required=True, help="dataset directory (sluice/prepare)")
    parser.add_argument(
        "--layers", type=layers_argument, help='JSON, e.g. [{"dense":20,"activation":"relu"},{"dense":1}]'
    )
    parser.add_argument("--script", type=Path, help="Python file defining build_model(n_features, n_targets)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="[adam]")
    parser.add_argument("--learning-rate", type=arguments.json_number, default=0.001, help="[0.001]")
    parser.add_argument("--loss", choices=LOSSES, default="mse", help="[mse]")
    parser.add_argument(
        "--metrics", type=arguments.json_list, default=["mae"], help=f"JSON list of {', '.join(METRICS)}"
    )
    parser.add_argument("--epochs", type=arguments.positive_int, default=10, help="[10]")
    parser.add_argument("--batch-size", type=arguments.positive_int, default=32, help="[32]")
    parser.add_argument(
        "--early-stopping", type=arguments.non_negative_int, default=0, help="patience on val_loss; 0 = off"
    )
    parser.add_argument("--seed", type=arguments.non_negative_int, default=42, help="[42]")
    parser.add_argument(
        "--register", help="MLflow registered model name [the workflow's name]; used when tracking is on"
    )
    arguments.add_contract_arguments(parser, OUTPUTS)
    return parser


def _epoch_printer(epochs: int) -> Any:
    import keras

    class EpochLines(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = logs or {}
            metrics = {key: logs.get(key, float("nan")) for key in ("loss", "val_loss", "val_mae")}
            print(progress_line(epoch + 1, epochs, metrics), flush=True)

    return EpochLines()


def train(
    dataset: Dataset,
    config: TrainConfig,
    directory: Path,
    on_saved: Callable[[TrainedModel], None] | None = None,
) -> dict[str, Any]:
    """Train on `dataset`, save the model directory, return metrics.json's content.
    `on_saved(trained)` runs once the directory is saved (MLflow logging)."""
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
        loss=standardised_loss(config.loss, dataset.manifest),
        metrics=keras_metrics(config.metrics),
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
    trained = TrainedModel(model, dataset, config, metrics, history)
    save_model_dir(directory, trained)
    if on_saved is not None:
        on_saved(trained)
    return metrics


def _logger(
    log: tracking.StepLog | None, args: argparse.Namespace, directory: Path
) -> Callable[[TrainedModel], None] | None:
    """What logs the trained model to MLflow (None when tracking is off)."""
    if log is None:
        return None

    def on_saved(trained: TrainedModel) -> None:
        params = {k: v for k, v in asdict(trained.config).items() if v is not None}
        params["dataset.sha256"] = trained.dataset.manifest.get("sha256", "")
        register = args.register or os.environ.get("SLUICE_WORKFLOW") or "model"
        sample = trained.dataset.x("validation")[:5].tolist()  # the input example, 5 rows
        series = {key: [float(v) for v in values] for key, values in trained.history.items()}
        registered = log.record(
            "training",
            params=params,
            history=series,
            metrics=trained.metrics,
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
            metrics = train(dataset, config, directory, _logger(log, args, directory))
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
