"""`sluice/evaluate`: score a model on the held-out split, probe out-of-range inputs, check skew.

Outputs are plain numbers a `when` gate can compare:
- `mae`, `mse`, `r2`: on the dataset's test split (never seen in training or early stopping).
- `probe-mae`: MAE on probe rows, reported apart because they lie outside the training ranges
  (the FuseML article's (2000, 3000), (10, 10000), (0.1, 0.1) are the default for sum-of-two).
- `skew`: how far serving-time feature statistics are from the training manifest's: the largest
  of |mean shift| / training std, |log(std ratio)| per feature and |correlation change| per
  feature pair. Correlation matters: equal pairs (i, i) and random pairs have the same
  per-feature ranges, means and spreads -- only the correlation (1 vs 0) shows the skew.
A full report goes to stdout and, with --artifacts-dir, to DIR/report.json.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from stages import arguments
from stages.common import Results, StageError, quiet_tensorflow, read_json, run_stage, write_json

PROG = "sluice/evaluate"
OUTPUTS = ("mae", "mse", "r2", "probe-mae", "skew")
ARTICLE_PROBE = [[2000.0, 3000.0], [10.0, 10000.0], [0.1, 0.1]]


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.stage_parser(
        PROG, "Score a model on the held-out split, probe out-of-range inputs, check skew."
    )
    parser.add_argument("--model", type=Path, required=True, help="model directory (sluice/train-keras)")
    parser.add_argument("--dataset", type=Path, required=True, help="dataset directory (sluice/prepare)")
    parser.add_argument(
        "--probe",
        type=arguments.json_list,
        help='JSON rows [[x1, x2], ...] (truth from the generator) or [{"x": [...], "y": [...]}, ...]',
    )
    parser.add_argument(
        "--serving-stats",
        help="serving-time feature statistics: JSON (stats or rows), a JSON file, or a dataset directory",
    )
    arguments.add_contract_arguments(parser, OUTPUTS)
    return parser


# ---- metrics ----


def regression_metrics(y: Any, predicted: Any) -> dict[str, float]:
    import numpy as np

    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    error = p - y
    total = float(((y - y.mean(axis=0)) ** 2).sum())
    residual = float((error**2).sum())
    return {
        "mae": float(np.abs(error).mean()),
        "mse": float((error**2).mean()),
        "r2": 1.0 - residual / total if total > 0 else (1.0 if residual == 0 else 0.0),
    }


# ---- probes ----


def probe_rows(spec: list[Any] | None, manifest: dict[str, Any]) -> tuple[Any, Any]:
    """(x, y) of the probe rows; rows without `y` get the generator's exact answer."""
    import numpy as np

    generator = manifest["generator"]
    n_features = len(manifest["features"])
    if spec is None:
        if generator.startswith("sum-of-two"):
            spec = ARTICLE_PROBE
        elif generator == "three-body":
            duration = float(manifest["parameters"]["duration"])
            spec = [[1.2 * duration, -0.2, 0.3], [1.2 * duration, -0.1, 0.5], [1.2 * duration, -0.3, 0.2]]
        else:
            return np.zeros((0, n_features)), np.zeros((0, len(manifest["targets"])))
    xs, ys, need_truth = [], [], []
    for index, row in enumerate(spec):
        given = row.get("y") if isinstance(row, dict) else None
        values = row.get("x") if isinstance(row, dict) else row
        if (
            not isinstance(values, list)
            or len(values) != n_features
            or not all(_is_number(v) for v in values)
        ):
            raise StageError(
                f"probe[{index}]: expected {n_features} numbers (features: {_names(manifest['features'])})"
            )
        if given is not None:
            given = given if isinstance(given, list) else [given]
            if len(given) != len(manifest["targets"]) or not all(_is_number(v) for v in given):
                raise StageError(f"probe[{index}]: y must be {len(manifest['targets'])} number(s)")
        xs.append([float(v) for v in values])
        ys.append([float(v) for v in given] if given is not None else None)
        if given is None:
            need_truth.append(index)
    x = np.array(xs, dtype=np.float64).reshape(-1, n_features)
    y = np.full((len(xs), len(manifest["targets"])), np.nan)
    for i, row_y in enumerate(ys):
        if row_y is not None:
            y[i] = row_y
    if need_truth:
        truth = _truth_function(generator)
        if truth is None:
            raise StageError(
                f"probe rows need a 'y' for an ingested dataset (generator {generator!r} has no exact answer)"
            )
        y[need_truth] = truth(x[need_truth])
    return x, y


def _truth_function(generator: str) -> Any:
    if generator.startswith("sum-of-two"):
        from stages.datasets import sum_of_two

        return sum_of_two.truth
    if generator == "three-body":
        from stages.datasets import three_body

        return three_body.truth
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _names(stats: list[dict[str, Any]]) -> str:
    return ", ".join(s["name"] for s in stats)


# ---- skew ----


def serving_statistics(text: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """Feature statistics from inline JSON, a JSON file or a dataset directory."""
    from stages.datasets.store import column_stats, correlation

    path = Path(text)
    if not text.lstrip().startswith(("{", "[")) and path.is_dir():
        value: Any = read_json(path / "manifest.json", "serving-stats dataset")
    elif not text.lstrip().startswith(("{", "[")):
        value = read_json(path, "serving-stats")
    else:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StageError(f"serving-stats is not valid JSON: {exc.msg}") from None
    names = [f["name"] for f in manifest["features"]]
    if isinstance(value, list):  # raw serving-time rows
        import numpy as np

        try:
            rows = np.array(value, dtype=np.float64).reshape(len(value), -1)
        except (TypeError, ValueError):
            raise StageError("serving-stats rows must be lists of numbers") from None
        if rows.shape[1] != len(names) or len(rows) < 2:
            raise StageError(f"serving-stats rows need {len(names)} values each and at least 2 rows")
        return {"features": column_stats(rows, names), "correlation": correlation(rows), "rows": len(rows)}
    if not isinstance(value, dict) or not isinstance(value.get("features"), list):
        raise StageError("serving-stats must have a 'features' list of {name, mean, std, min, max}")
    if len(value["features"]) != len(names):
        raise StageError(
            f"serving-stats describe {len(value['features'])} features, the model takes {len(names)}"
        )
    return value


def skew_report(training: dict[str, Any], serving: dict[str, Any]) -> dict[str, Any]:
    details: list[dict[str, Any]] = []
    for t, s in zip(training["features"], serving["features"], strict=True):
        std = t["std"] if t["std"] > 0 else 1.0
        mean_shift = abs(float(s["mean"]) - t["mean"]) / std
        spread = abs(math.log(max(float(s["std"]), 1e-12) / std)) if t["std"] > 0 else 0.0
        outside = float(s.get("min", t["min"])) < t["min"] or float(s.get("max", t["max"])) > t["max"]
        details.append(
            {
                "feature": t["name"],
                "mean_shift": mean_shift,
                "log_std_ratio": spread,
                "outside_training_range": outside,
            }
        )
    worst_corr = 0.0
    pair = None
    if "correlation" in training and "correlation" in serving:
        n = len(training["features"])
        for i in range(n):
            for j in range(i + 1, n):
                change = abs(float(serving["correlation"][i][j]) - float(training["correlation"][i][j]))
                if change > worst_corr:
                    worst_corr, pair = (
                        change,
                        (training["features"][i]["name"], training["features"][j]["name"]),
                    )
    skew = max([worst_corr] + [max(d["mean_shift"], d["log_std_ratio"]) for d in details])
    return {"skew": skew, "features": details, "correlation_change": worst_corr, "correlation_pair": pair}


def _track(
    step: str, held_out: dict[str, float], probe_mae: float, skew: dict[str, Any], probe: list[dict[str, Any]]
) -> None:
    """Log the metrics and probe results to MLflow when tracking is on (stages/tracking.py)."""
    from stages import tracking

    if not tracking.enabled():
        return
    metrics = {**held_out, "probe_mae": probe_mae, "skew": float(skew["skew"])}
    finite = {k: v for k, v in metrics.items() if isinstance(v, int | float) and math.isfinite(v)}
    with tracking.step_log(step, "evaluate") as log:
        if log is not None:
            log.record("evaluation", metrics=finite, probes=probe or None)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    results = Results(args.result, args.artifacts_dir)

    def body() -> None:
        import numpy as np

        quiet_tensorflow()
        from stages.datasets.store import read_dataset
        from stages.model_dir import load_model_dir
        from stages.predictor import Predictor

        dataset = read_dataset(args.dataset.resolve())
        meta, model = load_model_dir(args.model.resolve())
        if meta["features"] != dataset.feature_names or meta["targets"] != dataset.target_names:
            raise StageError(
                f"model takes {meta['features']} -> {meta['targets']}, "
                f"dataset has {dataset.feature_names} -> {dataset.target_names}"
            )
        predict = Predictor(model, len(meta["features"]))
        split = "test" if len(dataset.x("test")) else "validation"
        held_out = regression_metrics(dataset.y(split), predict(dataset.x(split)))
        probe_x, probe_y = probe_rows(args.probe, dataset.manifest)
        probe: list[dict[str, Any]] = []
        probe_mae = float("nan")
        if len(probe_x):
            predicted = predict(probe_x.astype(np.float32)).astype(np.float64)
            known = ~np.isnan(probe_y).any(axis=1)
            if known.any():
                probe_mae = float(np.abs(predicted[known] - probe_y[known]).mean())
            for x, y, p in zip(probe_x, probe_y, predicted, strict=True):
                probe.append({"x": x.tolist(), "expected": y.tolist(), "predicted": p.tolist()})
        training = read_json(args.model.resolve() / "training-manifest.json", "model's training manifest")
        serving = (
            serving_statistics(args.serving_stats, training)
            if args.serving_stats
            else {"features": dataset.manifest["features"], "correlation": dataset.manifest["correlation"]}
        )
        skew = skew_report(training, serving)
        report = {
            "split": split,
            **held_out,
            "probe_mae": probe_mae,
            "probe": probe,
            "skew": skew,
            "serving_stats": "given" if args.serving_stats else "the evaluated dataset's training split",
        }
        scores = " ".join(f"{k}={held_out[k]:.6g}" for k in ("mae", "mse", "r2"))
        print(f"evaluate: {split} split {scores}")
        for row in probe:
            rounded = [round(v, 4) for v in row["predicted"]]
            print(f"evaluate: probe {row['x']} expected {row['expected']} predicted {rounded}")
        print(
            f"evaluate: skew={skew['skew']:.4g} (largest correlation change {skew['correlation_change']:.4g})"
        )
        if results.artifacts_dir is not None:
            results.artifacts_dir.mkdir(parents=True, exist_ok=True)
            write_json(results.artifacts_dir / "report.json", report)
        step = args.artifacts_dir.name if args.artifacts_dir else "evaluate"
        _track(step, held_out, probe_mae, skew, probe)
        for name in ("mae", "mse", "r2"):
            results.write(name, held_out[name])
        if results.wants("probe-mae"):
            if math.isnan(probe_mae):
                raise StageError("probe-mae was requested but there are no probe rows with a known answer")
            results.write("probe-mae", probe_mae)
        results.write("skew", float(skew["skew"]))

    run_stage(PROG, body)


if __name__ == "__main__":
    main()
