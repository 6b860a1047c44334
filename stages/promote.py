"""`sluice/promote`: point an MLflow registered-model alias (e.g. `champion`) at a trained model.

    python -m stages.promote --model /workspace/artifacts/train/model --alias champion \
        --result version=/tekton/results/version

The model directory is one sluice/train-keras wrote with MLflow tracking on: its `mlflow.json`
names the registered model and version (stages/tracking.py). Give the step a `when` gate and
the alias moves only when the gate passes, so `models:/NAME@champion` (what a second workflow's
sluice/deploy can serve) always names a model that passed it. Unlike the logging of the other
stages, a registry failure here fails the step: promoting is the step's whole work. Without
tracking (the base install) the step succeeds, says so, and sets nothing.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from stages import arguments
from stages.common import Results, StageError, run_stage

PROG = "sluice/promote"
OUTPUTS = ("version",)
ALIAS = re.compile(r"[A-Za-z][\w-]{0,254}")


def check_alias(text: str) -> str:
    """MLflow's alias rules: not `latest`, not `vN` (those name versions)."""
    if not ALIAS.fullmatch(text) or re.fullmatch(r"[vV][0-9]+", text) or text.lower() == "latest":
        raise StageError(
            f"alias {text!r} must be a letter then letters, digits, '_' or '-' (not latest or vN)"
        )
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.stage_parser(PROG, "Point an MLflow registered-model alias at a trained model.")
    parser.add_argument("--model", type=Path, required=True, help="model directory (sluice/train-keras)")
    parser.add_argument("--alias", required=True, help="e.g. champion")
    parser.add_argument("--name", help="registered model name [the one train-keras registered]")
    arguments.add_contract_arguments(parser, OUTPUTS)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    results = Results(args.result, args.artifacts_dir)

    def body() -> None:
        from stages import tracking

        alias = check_alias(args.alias)
        model_dir = args.model.resolve()
        if not tracking.enabled() and not (model_dir / tracking.RECORD_FILE).is_file():
            # the base install: no registry, so nothing to promote; the workflow still runs
            print("promote: MLflow tracking is off (no mlflow extra or MLFLOW_TRACKING_URI): no alias set")
            results.write("version", "")
            return
        try:
            record = tracking.set_alias(model_dir, alias, args.name)
        except tracking.TrackingError as exc:
            raise StageError(str(exc)) from None
        print(f"promote: models:/{record['name']}@{alias} -> version {record['version']}")
        results.write("version", record["version"])

    run_stage(PROG, body)


if __name__ == "__main__":
    main()
