"""The sha256 of a file, read in blocks: one helper for the controller and the stages.

Standard library only, and nothing of Sluice: the step programs in `stages/` import it too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path) -> str:
    """The hex sha256 of the file at `path`, read without holding it all in memory."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
