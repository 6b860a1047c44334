"""Load + validate of workflows/sum-of-two.yaml vs `yaml.safe_load` of the same file, same run.

Goal (issue 2): load+validate <= 5x yaml.safe_load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import best_of, row
from controller.spec import load_workflow_bytes

EXAMPLE = Path(__file__).resolve().parent.parent / "workflows" / "sum-of-two.yaml"


def run(quick: bool = False) -> list[dict[str, Any]]:
    data = EXAMPLE.read_bytes()
    text = data.decode()
    load_workflow_bytes(data, str(EXAMPLE))  # compile the schema validator once, outside the timing
    repeat, number = (3, 50) if quick else (7, 300)
    ours = best_of(lambda: load_workflow_bytes(data, str(EXAMPLE)), repeat=repeat, number=number)
    base = best_of(lambda: yaml.safe_load(text), repeat=repeat, number=number)
    ratio = ours / base
    return [
        row(
            "validate",
            "load+validate sum-of-two.yaml",
            ours * 1e3,
            "ms",
            "yaml.safe_load",
            base * 1e3,
            "<= 5x yaml.safe_load",
            ratio <= 5.0,
            ratio,
        ),
    ]
