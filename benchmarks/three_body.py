"""`python -m benchmarks three-body`: a trained network vs the integrator (Breen et al. 2019).

Generates trajectories with `stages.datasets.three_body` (DOP853, rtol = atol = 1e-11), trains
the network of workflows/three-body.yaml with `stages.train_keras`, then times the same
predictions both ways on the held-out trajectories: every time step of each trajectory from the
integrator (one solve per trajectory) and from the network (one batched call). Reports the
speed ratio at the measured position error (goal >= 1000x) and the error against a
predict-the-mean baseline.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import row

LAYERS = [{"dense": 128, "activation": "relu"}] * 3 + [{"dense": 6}]


def run(quick: bool) -> list[dict[str, Any]]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np

    from stages.common import quiet_tensorflow

    quiet_tensorflow()
    from stages.datasets import three_body
    from stages.datasets.store import read_dataset, write_dataset
    from stages.keras_network import TrainConfig
    from stages.model_dir import load_model_dir
    from stages.predictor import Predictor
    from stages.train_keras import train

    simulations, steps, epochs = (30, 40, 5) if quick else (300, 100, 40)
    duration = 3.9
    with tempfile.TemporaryDirectory(prefix="sluice-bench-3body-") as temporary:
        work = Path(temporary)
        table = three_body.generate(simulations, steps, duration, seed=7)
        write_dataset(work / "dataset", table, "three-body", [0.8, 0.1, 0.1], seed=7)
        dataset = read_dataset(work / "dataset")
        config = TrainConfig(
            layers=LAYERS,
            script=None,
            optimizer="adam",
            learning_rate=0.001,
            loss="mae",
            metrics=["mae"],
            epochs=epochs,
            batch_size=256,
            early_stopping=8,
            seed=7,
        )
        (work / "model").mkdir()
        with contextlib.redirect_stdout(io.StringIO()):  # the epoch lines are not benchmark rows
            train(dataset, config, work / "model")
        _, model = load_model_dir(work / "model")
        predict = Predictor(model, 3)

        x_test, y_test = dataset.x("test"), dataset.y("test").astype(np.float64)
        starts = sorted({(float(a), float(b)) for a, b in x_test[:, 1:].astype(np.float64)})
        times = np.linspace(0.0, duration, steps)

        started = time.perf_counter()
        for a, b in starts:
            three_body.integrate(a, b, times)
        integrator_seconds = (time.perf_counter() - started) / len(starts)

        predict(x_test)  # trace once
        rounds = []
        for _ in range(20):
            started = time.perf_counter()
            predicted = predict(x_test)
            rounds.append(time.perf_counter() - started)
        network_seconds = min(rounds) / len(starts)

        mae = float(np.abs(predicted.astype(np.float64) - y_test).mean())
        baseline_mae = float(np.abs(y_test - dataset.y("train").astype(np.float64).mean(axis=0)).mean())
    speedup = integrator_seconds / network_seconds
    ms = 1000.0
    return [
        row(
            "three-body",
            "network_time_per_trajectory",
            network_seconds * ms,
            "ms",
            "DOP853 integration of the same trajectory",
            integrator_seconds * ms,
            f">= 1000x faster than the integrator (at position MAE {mae:.3g})",
            speedup >= 1000,
            ratio=speedup,
        ),
        row(
            "three-body",
            "position_mae",
            mae,
            "length units",
            "predict-the-mean baseline",
            baseline_mae,
            "well below the baseline (< 0.5x)",
            mae < 0.5 * baseline_mae,
        ),
    ]
