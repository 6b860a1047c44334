"""`did you mean` for a name that is close to a known one (a stage, a parameter, an input, a step).

Diagnostics append it to their message, so the one-line `FILE:LINE:COL: $.path: message` form
stays as it is: `unknown built-in stage 'sluice/trian-keras'; did you mean 'sluice/train-keras'?`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def close_match(word: str, known: Iterable[str]) -> str | None:
    """The known name closest to `word` (difflib's ratio of at least 0.6), or None."""
    found = difflib.get_close_matches(word, list(known), n=1)
    return found[0] if found else None


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`; did you mean 'NAME'?` for the closest known name, or "" when none is close."""
    match = close_match(word, known)
    return f"; did you mean {match!r}?" if match is not None else ""
