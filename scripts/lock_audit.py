"""requirements.lock, checked two ways (scripts/audit.sh runs both).

    python scripts/lock_audit.py drift requirements.lock
    python scripts/lock_audit.py osv requirements.lock DB

`drift`: the installed distributions whose version differs from their pin (packages of extras
that are not installed are fine), as `name installed (pinned version); ...`, or nothing. Needs only
the standard library, so it runs in any interpreter.

`osv`: the pins against an offline copy of the OSV advisory database. DB is a folder (or a .zip)
of OSV JSON advisories, as published for the PyPI ecosystem at
https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip — what an air-gapped CI mirrors
when it cannot reach api.osv.dev or PyPI's vulnerability data. A pin is vulnerable when an
advisory (not withdrawn) lists its PyPI package and either names its version or puts it inside an
ECOSYSTEM range: introduced <= version < fixed, or introduced <= version <= last_affected. Prints
one line: `clean N packages audited against M advisories`, `vulnerable name==version: ID, ...;
...` or `unreachable why`; scripts/audit.sh turns it into its verdict.

Exit status 0 unless the arguments are wrong.
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")


def canonical(name: str) -> str:
    """PEP 503's normalised project name (what packaging.utils.canonicalize_name returns)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(lock: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def drift(lock: Path) -> dict[str, tuple[str, str]]:
    """name -> (installed version, pinned version) for every installed pin at another version."""
    pins = read_pins(lock)
    found: dict[str, tuple[str, str]] = {}
    for dist in metadata.distributions():
        name = canonical(dist.metadata["Name"] or "")
        if name in pins and dist.version != pins[name]:
            found[name] = (dist.version, pins[name])
    return found


def advisories(db: Path) -> Iterator[dict[str, Any]]:
    if db.is_file() and zipfile.is_zipfile(db):
        with zipfile.ZipFile(db) as archive:
            for member in archive.namelist():
                if member.endswith(".json"):
                    yield json.loads(archive.read(member))
        return
    for path in sorted(db.rglob("*.json")):
        yield json.loads(path.read_text(encoding="utf-8"))


def _version(text: str) -> Any:
    """packaging's Version, or None for a version string it cannot parse."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text)
    except InvalidVersion:
        return None


def in_range(version: Any, events: list[dict[str, str]]) -> bool:
    """OSV range semantics for one ECOSYSTEM range: events sorted by version, `introduced` opens an
    affected interval, `fixed` closes it before the version, `last_affected` at it."""
    points: list[tuple[Any, int, str]] = []
    for event in events:
        for kind, order in (("introduced", 0), ("fixed", 1), ("last_affected", 2)):
            if kind in event:
                at = _version(event[kind])
                if at is not None:
                    points.append((at, order, kind))
    affected = False
    for at, _, kind in sorted(points):
        if kind == "introduced":
            if version < at:
                return affected
            affected = True
        elif kind == "fixed":
            if version < at:
                return affected
            affected = False
        elif kind == "last_affected":
            if version <= at:
                return affected
            affected = False
    return affected


def affects(advisory: dict[str, Any], name: str, version: str) -> bool:
    parsed = _version(version)
    for entry in advisory.get("affected") or []:
        package = entry.get("package") or {}
        if package.get("ecosystem") != "PyPI" or canonical(package.get("name", "")) != name:
            continue
        if version in (entry.get("versions") or []):
            return True
        if parsed is None:
            continue
        for span in entry.get("ranges") or []:
            if span.get("type") == "ECOSYSTEM" and in_range(parsed, span.get("events") or []):
                return True
    return False


def audit(lock: Path, db: Path) -> str:
    pins = read_pins(lock)
    if not pins:
        return f"unreachable no pinned packages in {lock}"
    found: dict[str, list[str]] = {}
    count = 0
    try:
        for advisory in advisories(db):
            count += 1
            if advisory.get("withdrawn"):
                continue
            for name, version in pins.items():
                if affects(advisory, name, version):
                    found.setdefault(f"{name}=={version}", []).append(str(advisory.get("id")))
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        return f"unreachable cannot read the advisory database {db}: {exc}"
    if count == 0:
        return f"unreachable no advisories in {db}"
    if found:
        return "vulnerable " + "; ".join(
            f"{pin}: {', '.join(sorted(ids))}" for pin, ids in sorted(found.items())
        )
    return f"clean {len(pins)} packages audited against {count} advisories"


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "drift":
        found = sorted(drift(Path(argv[1])).items())
        print("; ".join(f"{name} {got} (pinned {want})" for name, (got, want) in found))
        return 0
    if len(argv) == 3 and argv[0] == "osv":
        print(audit(Path(argv[1]), Path(argv[2])))
        return 0
    print("usage: lock_audit.py drift LOCK | lock_audit.py osv LOCK DB", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
