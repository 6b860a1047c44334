"""Keeping the operator's resident memory close to what it really holds (glibc only).

Every thread that allocates gets its own malloc arena by default (up to 8 per core), and freed
memory inside them is rarely given back to the system. The operator's working set is small and
bursty (a compile per new run), so one arena for the whole process, and handing free pages back
after bursts, keep RSS near the live data. On other C libraries this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

from controller.operator.periodic import every

logger = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # mallopt parameter, from glibc's malloc.h
TRIM_INTERVAL_SECONDS = 30.0


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def limit_arenas(arenas: int = 1) -> bool:
    """Call before threads start; True when the C library took the setting."""
    libc = _libc()
    return bool(libc and libc.mallopt(_M_ARENA_MAX, arenas))


def trim() -> None:
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


async def trim_periodically(interval: float = TRIM_INTERVAL_SECONDS) -> None:
    """Give free heap pages back to the system every `interval` seconds, until cancelled."""
    await every(interval, trim, logger, "malloc_trim")
