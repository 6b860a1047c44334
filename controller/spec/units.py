"""Kubernetes quantities and Go-style durations."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_QUANTITY = re.compile(
    r"^[+]?(?P<num>[0-9]+(\.[0-9]*)?|\.[0-9]+)(?P<suffix>m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+)?$"
)
_BINARY: dict[str, Decimal] = {
    k: Decimal(v)
    for k, v in {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}.items()
}
_DECIMAL: dict[str, Decimal] = {
    "m": Decimal("0.001"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
}
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|h|m|s)")
_DURATION = re.compile(r"^(?:[0-9]+(?:\.[0-9]+)?(?:ms|h|m|s))+$")
_SECONDS: dict[str, Decimal] = {"h": Decimal(3600), "m": Decimal(60), "s": Decimal(1), "ms": Decimal("0.001")}


def parse_quantity(value: str | int | float) -> Decimal:
    """The value of a Kubernetes quantity (`500m` -> 0.5, `2Gi` -> 2147483648); ValueError if invalid."""
    text = str(value).strip()
    match = _QUANTITY.match(text)
    if not match:
        raise ValueError(f"{text[:40]!r} is not a Kubernetes quantity (such as 500m, 2Gi or 1)")
    try:
        number = Decimal(match["num"])
    except InvalidOperation:
        raise ValueError(f"{text[:40]!r} is not a Kubernetes quantity") from None
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    if suffix:
        return number * (Decimal(10) ** int(suffix[1:]))
    return number


def parse_duration(text: str) -> int:
    """Whole seconds of a Go-style duration (`1h30m` -> 5400); ValueError if invalid or zero."""
    if not _DURATION.match(text):
        raise ValueError(f"{text[:40]!r} is not a duration such as 90s, 10m or 1h30m")
    total = sum((Decimal(n) * _SECONDS[unit] for n, unit in _DURATION_PART.findall(text)), Decimal(0))
    if total < 1:
        raise ValueError(f"{text!r} is shorter than one second")
    return int(total)


def format_duration(seconds: int) -> str:
    """Tekton's spelling of a duration: `1h30m0s`."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "") + f"{secs}s"
