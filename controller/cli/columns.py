"""Plain-text tables whose columns are as wide as their widest cell, so a long run id or workflow name
never pushes the cells after it out of line."""

from __future__ import annotations

from collections.abc import Sequence


def print_columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
