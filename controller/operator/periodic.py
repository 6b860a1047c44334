"""The operator's background loops (schedules, the sweep of untaken runs, memory trimming): one
round every so many seconds for as long as the operator runs."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable


async def every(seconds: float, round_: Callable[[], object], logger: logging.Logger, what: str) -> None:
    """Run `round_` (a function, or a coroutine function) every `seconds`, the first time after one
    interval, until cancelled. A round that raises is logged as a warning, `<what> failed: <error>`,
    on `logger`: the loop outlives any one bad round."""
    with contextlib.suppress(asyncio.CancelledError):
        while True:
            await asyncio.sleep(seconds)
            try:
                done = round_()
                if inspect.isawaitable(done):
                    await done
            except Exception as exc:
                logger.warning("%s failed: %s", what, exc)
