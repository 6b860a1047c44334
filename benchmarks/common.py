"""The benchmark row format of DESIGN.md, and small timing helpers."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def row(
    benchmark: str,
    metric: str,
    value: float,
    unit: str,
    baseline: str,
    baseline_value: float,
    goal: str,
    met: bool,
    ratio: float | None = None,
) -> dict[str, Any]:
    """One JSON row: the figure, the same-run baseline, their ratio, the goal and whether it is met."""
    if ratio is None:
        ratio = value / baseline_value if baseline_value else float("inf")
    return {
        "benchmark": benchmark,
        "metric": metric,
        "value": round(value, 6),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": round(baseline_value, 6),
        "ratio": round(ratio, 4),
        "goal": goal,
        "met": bool(met),
    }


def best_of(fn: Callable[[], Any], *, repeat: int, number: int) -> float:
    """Seconds per call: the best of `repeat` rounds of `number` calls (least disturbed by noise)."""
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        rounds.append((time.perf_counter() - start) / number)
    return min(rounds)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(samples: list[float]) -> float:
    return statistics.median(samples)
