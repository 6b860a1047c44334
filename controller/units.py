"""Go durations and Kubernetes quantities: read and spelled once for the controller and the stages.

Standard library only, and nothing of Sluice: the step programs in `stages/` import it too.
"""

from __future__ import annotations

import functools
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

# Go's time.ParseDuration: an optional sign, then one or more decimal numbers each with a unit
# (`1h30m`, `1.5h`, `.5s`, `500ms`, `-2m`); `0` is the one number that needs no unit.
_DURATION = re.compile(r"([-+]?)((?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+|0)")
_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]*)(ns|us|µs|μs|ms|s|m|h)")
_NANOSECONDS: dict[str, int] = {
    "ns": 1,
    "us": 10**3,
    "µs": 10**3,  # U+00B5 micro sign
    "μs": 10**3,  # U+03BC Greek mu
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
_MAX_NANOSECONDS = 2**63 - 1  # Go's time.Duration is an int64 of nanoseconds (about 292 years)


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


def parse_duration(
    text: object, *, minimum: float | None = 0, positive: bool = False, bare_unit: str | None = None
) -> float:
    """Seconds of a Go duration, read as Go's `time.ParseDuration` reads it (`1h30m` -> 5400.0,
    `1.5h`, `90s`, `500ms` -> 0.5, `0`); ValueError if it is not one or is out of the caller's range.

    Each caller keeps its range with the arguments, never with a grammar of its own:
    `minimum` is the shortest accepted, in seconds (None: no bound, negative durations as Go takes
    them); `positive` refuses zero too; `bare_unit` (such as `"s"`) reads a number with no unit in
    that unit, and white space around the text is then ignored (a command-line `--timeout 90`).
    Like Go, the result has nanosecond resolution: further fractional digits are dropped.
    """
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a duration such as 90s, 10m or 1h30m")
    if bare_unit is not None:
        text = text.strip()
        if re.fullmatch(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)", text):
            text += bare_unit
    match = _DURATION.fullmatch(text)
    if not match:
        raise ValueError(f"{text[:40]!r} is not a duration such as 90s, 10m or 1h30m")
    nanoseconds = sum(int(Decimal(n) * _NANOSECONDS[unit]) for n, unit in _DURATION_PART.findall(match[2]))
    if nanoseconds > _MAX_NANOSECONDS + (match[1] == "-"):
        raise ValueError(f"{text[:40]!r} is longer than a Go duration can be (about 292 years)")
    if match[1] == "-":
        nanoseconds = -nanoseconds
    seconds = nanoseconds / 10**9
    if minimum is not None and seconds < minimum:
        if minimum == 0:
            raise ValueError(f"{text!r} is negative")
        raise ValueError(f"{text!r} is shorter than {'one second' if minimum == 1 else f'{minimum:g}s'}")
    if positive and nanoseconds <= 0:
        raise ValueError(f"{text!r} is not longer than zero")
    return seconds


@functools.lru_cache(maxsize=1024)
def format_duration(seconds: float) -> str:
    """A duration as Tekton spells it, in whole seconds: 5400 -> `1h30m0s`, 300 -> `5m0s`."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "") + f"{secs}s"
