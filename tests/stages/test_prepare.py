"""sluice/prepare: generators, ingest, split, manifest; and the stage contract's exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stages.common import StageError, format_number
from stages.datasets import three_body
from stages.datasets.store import content_sha256, read_dataset
from tests.stages.conftest import prepare, run_stage


def test_sum_of_two_dataset_and_manifest(tmp_path: Path) -> None:
    run = run_stage(
        "prepare",
        [
            "--generator",
            "sum-of-two",
            "--samples",
            "2000",
            "--low",
            "0",
            "--high",
            "100",
            "--seed",
            "3",
            "--artifacts-dir",
            str(tmp_path),
        ],
        tmp_path,
        ("dataset", "rows"),
    )
    assert run.returncode == 0, run.stderr
    assert run.results["rows"] == "2000"
    directory = Path(run.results["dataset"])
    assert directory == tmp_path / "dataset" and directory.is_absolute()
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["rows"] == {"total": 2000, "train": 1600, "validation": 200, "test": 200}
    with np.load(directory / "data.npz") as data:
        arrays = {k: data[k] for k in data.files}
        assert content_sha256(arrays) == manifest["sha256"]
        assert np.allclose(arrays["y_test"][:, 0], arrays["x_test"].sum(axis=1), atol=1e-3)
    x1 = manifest["features"][0]
    assert x1["name"] == "x1" and 0 <= x1["min"] < x1["max"] < 100
    assert abs(x1["mean"] - 50) < 4 and abs(x1["std"] - 100 / 12**0.5) < 3
    assert abs(manifest["correlation"][0][1]) < 0.1
    assert manifest["parameters"] == {
        "samples": 2000,
        "low": 0.0,
        "high": 100.0,
        "seed": 3,
        "equal_pairs": False,
    }
    assert manifest["split"] == {"fractions": [0.8, 0.1, 0.1], "seed": 3, "grouped": False}


def test_same_seed_same_content_other_seed_other_content(tmp_path: Path) -> None:
    a = prepare(tmp_path / "a", "sum-of-two", "--samples", "500", "--seed", "5")
    b = prepare(tmp_path / "b", "sum-of-two", "--samples", "500", "--seed", "5")
    c = prepare(tmp_path / "c", "sum-of-two", "--samples", "500", "--seed", "6")
    sha = [json.loads((d / "manifest.json").read_text())["sha256"] for d in (a, b, c)]
    assert sha[0] == sha[1] != sha[2]


def test_equal_pairs_look_like_random_pairs_except_for_correlation(tmp_path: Path) -> None:
    equal = json.loads(
        (prepare(tmp_path / "e", "sum-of-two-equal-pairs", "--samples", "4000") / "manifest.json").read_text()
    )
    random = json.loads(
        (prepare(tmp_path / "r", "sum-of-two", "--samples", "4000") / "manifest.json").read_text()
    )
    for e, r in zip(equal["features"], random["features"], strict=True):
        assert abs(e["mean"] - r["mean"]) < 0.05 * r["std"] * 3
    assert equal["correlation"][0][1] == 1.0
    assert abs(random["correlation"][0][1]) < 0.1


def test_tampered_data_is_detected(tmp_path: Path) -> None:
    directory = prepare(tmp_path, "sum-of-two", "--samples", "300")
    with np.load(directory / "data.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["x_train"][0, 0] += 1
    np.savez(directory / "data.npz", **arrays)
    with pytest.raises(StageError, match="does not match the sha256"):
        read_dataset(directory)


def test_three_body_conserves_energy_and_momentum() -> None:
    """DOP853 at rtol=atol=1e-11: relative energy error under 1e-6 (ENERGY_TOLERANCE) over t = 3.9."""
    rng = np.random.default_rng(11)
    times = np.linspace(0, 3.9, 50)
    kept = 0
    for _ in range(6):
        a, b = three_body.sample_start(rng)
        assert -0.5 < a <= 0 and b >= 0 and (1 + a) ** 2 + b**2 <= 1
        trajectory = three_body.integrate(a, b, times)
        assert trajectory is not None
        if trajectory.energy_error <= three_body.ENERGY_TOLERANCE:
            kept += 1
        positions = trajectory.positions.reshape(-1, 3, 2)
        assert np.abs(positions.sum(axis=1)).max() < 1e-8  # barycentre stays at the origin
        assert np.allclose(positions[0], [[1, 0], [a, b], [-1 - a, -b]])
    assert kept >= 5


def test_three_body_dataset_keeps_trajectories_whole(tmp_path: Path) -> None:
    directory = prepare(
        tmp_path, "three-body", "--samples", "6", "--time-steps", "20", "--duration", "2.0", "--seed", "2"
    )
    dataset = read_dataset(directory)
    manifest = dataset.manifest
    assert manifest["rows"]["total"] == 120
    assert manifest["split"]["grouped"] is True
    assert manifest["parameters"]["max_energy_error"] <= three_body.ENERGY_TOLERANCE
    assert dataset.feature_names == ["t", "x2_0", "y2_0"] and len(dataset.target_names) == 6
    starts = {
        split: {tuple(r) for r in dataset.x(split)[:, 1:].round(6)}
        for split in ("train", "validation", "test")
    }
    assert all(starts[s] for s in starts)  # every split has a trajectory
    assert not (starts["train"] & starts["validation"]) and not (starts["train"] & starts["test"])
    # The stored positions are the integrator's: re-integrate one held-out row.
    row = dataset.x("test")[-1].astype(np.float64)
    assert np.allclose(three_body.truth(row[None, :])[0], dataset.y("test")[-1], atol=1e-5)


def test_csv_ingest(tmp_path: Path) -> None:
    source = tmp_path / "houses.csv"
    lines = ["rooms,area,price"] + [f"{i % 5 + 1},{50 + i},{1000 + 10 * i}" for i in range(40)]
    source.write_text("\n".join(lines) + "\n")
    run = run_stage(
        "prepare",
        ["--source", str(source), "--target", "price", "--artifacts-dir", str(tmp_path)],
        tmp_path,
        ("rows",),
    )
    assert run.returncode == 0, run.stderr
    dataset = read_dataset(tmp_path / "dataset")
    assert dataset.feature_names == ["rooms", "area"] and dataset.target_names == ["price"]
    assert (
        dataset.manifest["generator"] == "ingest"
        and len(dataset.manifest["parameters"]["source_sha256"]) == 64
    )
    assert run.results["rows"] == "40"


def test_npz_ingest(tmp_path: Path) -> None:
    source = tmp_path / "data.npz"
    x = np.arange(60, dtype=float).reshape(30, 2)
    np.savez(source, x=x, y=x.sum(axis=1))
    assert (
        run_stage("prepare", ["--source", str(source), "--artifacts-dir", str(tmp_path)], tmp_path).returncode
        == 0
    )
    assert read_dataset(tmp_path / "dataset").target_names == ["y"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--generator", "sum-of-everything"], 2, "invalid choice"),
        (["--generator", "sum-of-two", "--samples", "many"], 2, "not valid JSON"),
        (["--generator", "sum-of-two", "--result", "model=/tmp/x"], 2, "no output 'model'"),
        (["--generator", "sum-of-two", "--split", "[0.5,0.5]"], 1, "three fractions"),
        (["--generator", "sum-of-two", "--low", "5", "--high", "1"], 1, "must be below"),
        ([], 1, "exactly one of generator or source"),
        (["--source", "/nonexistent.csv"], 1, "is not a file"),
    ],
)
def test_bad_arguments_and_failures(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    run = run_stage("prepare", [*args, "--artifacts-dir", str(tmp_path)], tmp_path)
    assert run.returncode == code
    assert message in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr


def test_bad_csv_names_the_line(tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    source.write_text("a,b\n1,2\n3,x\n4,5\n")
    run = run_stage("prepare", ["--source", str(source), "--artifacts-dir", str(tmp_path)], tmp_path)
    assert run.returncode == 1 and f"{source}:3: a value is not a number" in run.stderr


def test_numbers_are_written_plainly() -> None:
    assert format_number(1.0) == "1"
    assert format_number(0.000000123) == "0.000000123"
    assert format_number(3.14159265) == "3.14159"
    with pytest.raises(StageError):
        format_number(float("nan"))
