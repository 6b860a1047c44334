"""The Sluice home as the local commands see it (with a one-time word about an old `./.sluice`),
and what every command taking a RUN shares: the lookup of the run and a one-line failure.

Before issue 18 the home defaulted to `./.sluice` in the working folder. Its records hold absolute
paths (run folders, model folders of endpoints, results naming datasets), so they are not moved:
the first command run in such a folder says once where runs live now and how to read the old ones
in place.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from controller.settings import sluice_home

LEGACY_FOLDER = ".sluice"
NOTICES_FILE = "legacy-notices"  # in the home: the old folders already announced, one per line


def local_home() -> Path:
    """`sluice_home()`; when `SLUICE_HOME` is not set and the working folder has runs in an old
    `./.sluice`, a notice on stderr, once per old folder."""
    home = sluice_home()
    if not os.environ.get("SLUICE_HOME"):
        _legacy_notice(home, Path.cwd() / LEGACY_FOLDER)
    return home


def _legacy_notice(home: Path, legacy: Path) -> None:
    runs = legacy / "runs"
    try:
        if legacy.resolve() == home or not runs.is_dir() or not any(runs.iterdir()):
            return
        notices = home / NOTICES_FILE
        seen = notices.read_text(encoding="utf-8").splitlines() if notices.is_file() else []
        if str(legacy.resolve()) in seen:
            return
        count = sum(1 for run in runs.iterdir() if (run / "run.json").is_file())
        home.mkdir(parents=True, exist_ok=True)
        with notices.open("a", encoding="utf-8") as f:
            f.write(f"{legacy.resolve()}\n")
    except OSError:
        return  # a notice is never worth failing a command for
    print(
        f"sluice: runs now live in {home} (SLUICE_HOME, default $XDG_DATA_HOME/sluice); "
        f"{legacy} holds {count} earlier run(s), read them in place with "
        f"SLUICE_HOME={legacy.resolve()} sluice runs",
        file=sys.stderr,
    )


def fail(message: str, code: int = 1) -> Exception:
    """One line on stderr and the exit status; `raise fail(...)`."""
    import typer

    print(message, file=sys.stderr)
    return typer.Exit(code)


def resolve_run(command: str, home: Path, ref: str, workflow: str | None = None) -> dict[str, Any]:
    """The record a RUN argument means (an id, a unique prefix, `latest`): the one lookup every
    command taking a RUN uses. Otherwise exit 1 with `sluice COMMAND: why` (candidates listed)."""
    from controller.executors.local.store import RunLookupError, find_run

    try:
        return find_run(home, ref, workflow)
    except RunLookupError as exc:
        raise fail(f"sluice {command}: {exc}") from None
