"""sluice/train-keras and sluice/evaluate on real TensorFlow: the FuseML article's lesson, measured."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.stages.conftest import Trained, prepare, run_stage, train

pytestmark = pytest.mark.slow


def evaluate(tmp: Path, trained: Trained, dataset: Path, *extra: str):
    run = run_stage(
        "evaluate",
        ["--model", str(trained.model), "--dataset", str(dataset), *extra, "--artifacts-dir", str(tmp)],
        tmp,
        ("mae", "mse", "r2", "probe-mae", "skew"),
    )
    assert run.returncode == 0, run.stderr
    return {k: float(v) for k, v in run.results.items()}, run


def test_training_beats_predicting_the_mean_by_far(random_pairs: Trained) -> None:
    metrics = json.loads((random_pairs.model / "metrics.json").read_text())
    assert metrics["val_mae"] < metrics["baseline_val_mae"] / 50  # baseline ~330, trained a few units
    assert float(random_pairs.run.results["val-mae"]) == pytest.approx(metrics["val_mae"], rel=1e-5)
    lines = [line for line in random_pairs.run.stdout.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 8
    assert re.fullmatch(r"epoch 8/8 loss=\S+ val_loss=\S+ val_mae=\S+", lines[-1])


def test_model_directory_layout(random_pairs: Trained) -> None:
    model = random_pairs.model
    for name in (
        "model.keras",
        "model.json",
        "metrics.json",
        "history.json",
        "loss.png",
        "training-manifest.json",
    ):
        assert (model / name).is_file(), name
    assert (model / "saved_model/1/saved_model.pb").is_file()
    assert (model / "triton/model/1/model.savedmodel/saved_model.pb").is_file()
    assert (model / "triton/model/config.pbtxt").is_file()
    assert (model / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta = json.loads((model / "model.json").read_text())
    assert meta["features"] == ["x1", "x2"] and meta["targets"] == ["sum"]
    history = json.loads((model / "history.json").read_text())
    assert len(history["loss"]) == 8 and history["val_mae"][-1] < history["val_mae"][0]


def test_saved_model_export_takes_raw_inputs_like_the_keras_model(random_pairs: Trained) -> None:
    """What KServe's TF runtime serves must answer like the Keras model, normalisation included."""
    import tensorflow as tf

    from stages.model_dir import load_model_dir

    _, model = load_model_dir(random_pairs.model)
    exported = tf.saved_model.load(str(random_pairs.model / "saved_model/1"))
    x = np.array([[12.0, 30.0], [700.0, 250.0]], dtype=np.float32)
    served = exported.signatures["serving_default"](inputs=tf.constant(x))["output_0"].numpy()
    assert np.allclose(served, model(x, training=False).numpy(), atol=1e-4)
    assert np.allclose(served[:, 0], x.sum(axis=1), atol=15)


def test_equal_pairs_model_fails_on_unequal_pairs(
    random_pairs: Trained, equal_pairs: Trained, tmp_path: Path
) -> None:
    """The article's lesson: (i, i) training data looks fine on its own held-out split and is
    much worse than random pairs on the unequal pairs users actually send."""
    own, _ = evaluate(tmp_path / "own", equal_pairs, equal_pairs.dataset)
    fixed, _ = evaluate(tmp_path / "fixed", random_pairs, random_pairs.dataset)
    skewed, run = evaluate(
        tmp_path / "skewed", equal_pairs, random_pairs.dataset, "--serving-stats", str(random_pairs.dataset)
    )
    assert own["mae"] < 5  # it looks good on data like its training data...
    assert skewed["mae"] > 5 * fixed["mae"]  # ...and is far worse on unequal pairs
    assert skewed["mae"] > 20
    assert skewed["r2"] < fixed["r2"]
    # The skew check sees it coming: only the correlation of x1 and x2 differs.
    assert skewed["skew"] > 0.9
    report = json.loads((tmp_path / "skewed" / "report.json").read_text())
    assert report["skew"]["correlation_pair"] == ["x1", "x2"]
    assert all(f["mean_shift"] < 0.1 for f in report["skew"]["features"])
    # The default out-of-range probe is the article's (2000, 3000), (10, 10000), (0.1, 0.1).
    assert [p["x"] for p in report["probe"]] == [[2000.0, 3000.0], [10.0, 10000.0], [0.1, 0.1]]
    assert "probe [10.0, 10000.0] expected [10010.0]" in run.stdout


def test_random_pairs_evaluation_and_low_skew(random_pairs: Trained, tmp_path: Path) -> None:
    rows = np.random.default_rng(0).uniform(0, 1000, size=(500, 2)).round(3).tolist()
    scores, _ = evaluate(
        tmp_path,
        random_pairs,
        random_pairs.dataset,
        "--probe",
        "[[5, 5], [1500, 20]]",
        "--serving-stats",
        json.dumps(rows),
    )
    assert scores["r2"] > 0.999
    assert scores["mae"] < 10
    assert scores["probe-mae"] < 100
    assert scores["skew"] < 0.15


def test_same_seed_same_model(tmp_path: Path) -> None:
    dataset = prepare(tmp_path, "sum-of-two", "--samples", "1000")
    runs = [train(tmp_path / f"run{i}", dataset, "--epochs", "2", "--seed", "9")[1] for i in range(2)]
    assert runs[0].results["val-mae"] == runs[1].results["val-mae"]


def test_training_script_from_a_codeset(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        "import keras\n\n"
        "def build_model(n_features, n_targets):\n"
        "    layers = [keras.layers.Dense(8, activation='tanh'), keras.layers.Dense(n_targets)]\n"
        "    return keras.Sequential(layers)\n"
    )
    dataset = prepare(tmp_path, "sum-of-two", "--samples", "1000")
    model, run = train(tmp_path, dataset, "--script", str(script), "--epochs", "3", "--early-stopping", "2")
    meta = json.loads((model / "model.json").read_text())
    assert meta["training"]["script"] == str(script)
    assert (
        float(run.results["val-mae"]) < json.loads((model / "metrics.json").read_text())["baseline_val_mae"]
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--layers", '[{"dense": 0}]'], 2, "dense needs a unit count"),
        (["--layers", '[{"conv": 3}]'], 2, "expected dense, activation, dropout or normalization"),
        (["--layers", '[{"dense": 4, "activation": "wiggle"}]'], 2, "unknown activation"),
        (["--layers", '[{"dense": 4}, {"dense": 3}]'], 1, "end the layer list with {dense: 1}"),
        (["--optimizer", "newton"], 2, "invalid choice"),
        (["--metrics", '["accuracy-ish"]'], 1, "unknown metric"),
    ],
)
def test_bad_training_arguments(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    dataset = prepare(tmp_path, "sum-of-two", "--samples", "100")
    run = run_stage(
        "train_keras", ["--dataset", str(dataset), *args, "--artifacts-dir", str(tmp_path)], tmp_path
    )
    assert run.returncode == code, run.stderr
    assert message in run.stderr and "Traceback" not in run.stderr


def test_missing_dataset_fails_cleanly(tmp_path: Path) -> None:
    run = run_stage(
        "train_keras", ["--dataset", str(tmp_path / "nope"), "--artifacts-dir", str(tmp_path)], tmp_path
    )
    assert run.returncode == 1 and "is not a directory" in run.stderr
