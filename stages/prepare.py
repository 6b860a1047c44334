"""`sluice/prepare`: generate or ingest a dataset, split it and write its manifest.

    python -m stages.prepare --generator sum-of-two --samples 20000 --low 0 --high 1000 \
        --result dataset=/tekton/results/dataset --artifacts-dir /workspace/artifacts/prepare
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from controller.protocol import progress_line
from stages import arguments
from stages.common import Results, StageError, run_stage

PROG = "sluice/prepare"
OUTPUTS = ("dataset", "rows")
GENERATORS = ("sum-of-two", "sum-of-two-equal-pairs", "three-body")
DEFAULT_SPLIT = [0.8, 0.1, 0.1]


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.stage_parser(PROG, "Generate or ingest a dataset, split it and write its manifest.")
    parser.add_argument("--generator", choices=GENERATORS, help="synthetic data generator")
    parser.add_argument("--source", type=Path, help="CSV or NPZ file to ingest (e.g. in a codeset)")
    parser.add_argument("--target", help="CSV label column(s), comma-separated (default: the last column)")
    parser.add_argument(
        "--samples",
        type=arguments.positive_int,
        help="rows to generate (three-body: simulations) [10000; three-body 100]",
    )
    parser.add_argument(
        "--low", type=arguments.json_number, default=0.0, help="sum-of-two: smallest addend [0]"
    )
    parser.add_argument(
        "--high", type=arguments.json_number, default=1000.0, help="sum-of-two: largest addend [1000]"
    )
    parser.add_argument(
        "--split",
        type=arguments.json_list,
        default=DEFAULT_SPLIT,
        help="train/validation/test fractions as JSON [[0.8,0.1,0.1]]",
    )
    parser.add_argument("--seed", type=arguments.non_negative_int, default=42, help="random seed [42]")
    parser.add_argument(
        "--time-steps",
        type=arguments.positive_int,
        default=100,
        help="three-body: samples per trajectory [100]",
    )
    parser.add_argument(
        "--duration", type=arguments.json_number, default=3.9, help="three-body: simulated time [3.9]"
    )
    arguments.add_contract_arguments(parser, OUTPUTS)
    return parser


def check_split(split: list[object]) -> list[float]:
    if len(split) != 3 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in split):
        raise StageError(f"split must be three fractions [train, validation, test], got {split}")
    fractions = [float(v) for v in split]  # type: ignore[arg-type]
    if any(v < 0 for v in fractions) or fractions[0] <= 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise StageError(f"split fractions must be >= 0, train > 0, and sum to 1, got {split}")
    return fractions


def _track(args: argparse.Namespace, manifest: dict[str, Any], directory: Path) -> None:
    """Log the dataset to MLflow when tracking is on (stages/tracking.py)."""
    from stages import tracking

    if not tracking.enabled():
        return
    source = args.generator or str(args.source)
    step = args.artifacts_dir.name if args.artifacts_dir else "prepare"
    with tracking.step_log(step, "prepare") as log:
        if log is not None:
            log.record("dataset", manifest=manifest, directory=str(directory), source=source)


def _print_simulation(done: int, total: int, rejected: int) -> None:
    """`simulation 40/200 rejected=3`: the protocol's progress line (the executor shows it)."""
    print(progress_line(done, total, {"rejected": rejected}, unit="simulation"), flush=True)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    results = Results(args.result, args.artifacts_dir)

    def body() -> None:
        if (args.generator is None) == (args.source is None):
            raise StageError("give exactly one of generator or source")
        seed = args.seed
        fractions = check_split(args.split)
        if args.generator in ("sum-of-two", "sum-of-two-equal-pairs"):
            from stages.datasets import sum_of_two

            if not args.low < args.high:
                raise StageError(f"low ({args.low}) must be below high ({args.high})")
            table = sum_of_two.generate(
                args.samples or 10000, args.low, args.high, seed, args.generator == "sum-of-two-equal-pairs"
            )
        elif args.generator == "three-body":
            from stages.datasets import three_body

            table = three_body.generate(
                args.samples or 100, args.time_steps, args.duration, seed, progress=_print_simulation
            )
        else:
            from stages.datasets.ingest import ingest

            table = ingest(args.source.resolve(), args.target)
        from stages.datasets.store import write_dataset

        directory = results.artifact_dir("dataset")
        manifest = write_dataset(directory, table, args.generator or "ingest", fractions, seed)
        rows = manifest["rows"]
        print(
            f"prepare: {rows['total']} rows ({rows['train']} train, {rows['validation']} validation, "
            f"{rows['test']} test), sha256 {manifest['sha256'][:12]}, written to {directory}"
        )
        _track(args, manifest, directory)
        results.write("dataset", str(directory))
        results.write("rows", rows["total"])

    run_stage(PROG, body)


if __name__ == "__main__":
    main()
