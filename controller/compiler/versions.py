"""Version constraints of FuseML extension selectors (`version: "~1.10.0"`, `">=1.0, <2"`).

Supported: exact and partial versions (`1.20.2`, `1.20` = `1.20.x`), wildcards
(`1.x`, `1.*`, `*`), comparisons (`=`, `==`, `!=`, `>`, `>=`, `<`, `<=`), tilde
(`~1.10.0`: same minor), PEP 440's compatible release (`~=1.4.2`), caret
(`^1.2.3`: same major, or same minor below 1.0), clauses joined by `,` or
spaces (all must hold) and alternatives joined by `||` (any may hold).
"""

from __future__ import annotations

import re

Version = tuple[int, int, int]
_VERSION_RE = re.compile(r"^[vV]?(\d+)(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:[-+].*)?$")
_CLAUSE_RE = re.compile(r"^(~=|==|!=|>=|<=|=|>|<|~|\^)?\s*(\S+)$")


class VersionConstraintError(ValueError):
    """A malformed version constraint."""


def parse_version(text: str) -> Version | None:
    """`v1.20.2` -> (1, 20, 2); missing parts are 0; None when not a version."""
    match = _VERSION_RE.match(str(text).strip())
    if not match or any(p is not None and not p.isdigit() for p in match.groups()):
        return None
    major, minor, patch = (int(p) if p is not None else 0 for p in match.groups())
    return (major, minor, patch)


def _partial(text: str) -> tuple[int, ...]:
    """The fixed leading components of a possibly partial or wildcard version: `1.2.x` -> (1, 2)."""
    if text in ("*", "x", "X"):
        return ()
    match = _VERSION_RE.match(text)
    if not match:
        raise VersionConstraintError(f"{text!r} is not a version")
    fixed: list[int] = []
    for part in match.groups():
        if part is None or not part.isdigit():
            break
        fixed.append(int(part))
    return tuple(fixed)


def _bump(fixed: tuple[int, ...], index: int) -> Version:
    """The first version after every version starting with fixed[:index+1]."""
    padded = [*fixed, 0, 0, 0][:3]
    padded[index] += 1
    for i in range(index + 1, 3):
        padded[i] = 0
    return (padded[0], padded[1], padded[2])


def _pad(fixed: tuple[int, ...]) -> Version:
    padded = [*fixed, 0, 0, 0][:3]
    return (padded[0], padded[1], padded[2])


def _clause(version: Version, op: str, operand: str) -> bool:
    fixed = _partial(operand)
    low = _pad(fixed)
    if op in ("", "=", "=="):
        return version[: len(fixed)] == fixed
    if op == "!=":
        return version[: len(fixed)] != fixed
    if op == ">":
        return bool(fixed) and version >= _bump(fixed, len(fixed) - 1)
    if op == ">=":
        return version >= low
    if op == "<":
        return version < low
    if op == "<=":
        return not fixed or version < _bump(fixed, len(fixed) - 1)
    if op == "~":
        if not fixed:
            return True
        return low <= version < _bump(fixed, 1 if len(fixed) >= 2 else 0)
    if op == "~=":
        if len(fixed) < 2:
            raise VersionConstraintError(f"'~={operand}' needs at least MAJOR.MINOR")
        return low <= version < _bump(fixed, len(fixed) - 2)
    if op == "^":
        if not fixed:
            return True
        first_nonzero = next((i for i, p in enumerate(fixed) if p != 0), len(fixed) - 1)
        return low <= version < _bump(fixed, min(first_nonzero, 2))
    raise VersionConstraintError(f"unknown operator {op!r}")


def _clauses(alternative: str) -> list[tuple[str, str]]:
    tokens = [
        t for t in re.split(r"[,\s]+", re.sub(r"(~=|==|!=|>=|<=|=|>|<|~|\^)\s+", r"\1", alternative)) if t
    ]
    if not tokens:
        raise VersionConstraintError("empty version constraint")
    clauses = []
    for token in tokens:
        match = _CLAUSE_RE.match(token)
        if not match:
            raise VersionConstraintError(f"malformed clause {token!r}")
        clauses.append((match.group(1) or "", match.group(2)))
    return clauses


def check_constraint(constraint: str) -> None:
    """Raise VersionConstraintError when the constraint cannot be parsed."""
    for alternative in str(constraint).split("||"):
        for op, operand in _clauses(alternative):
            _clause((0, 0, 0), op, operand)


def satisfies(version: str | None, constraint: str | None) -> bool:
    """Whether `version` meets `constraint`; no constraint always holds, no version never does."""
    if constraint is None or not str(constraint).strip():
        return True
    check_constraint(constraint)
    parsed = parse_version(version) if version is not None else None
    if parsed is None:
        return False
    return any(
        all(_clause(parsed, op, operand) for op, operand in _clauses(alternative))
        for alternative in str(constraint).split("||")
    )
