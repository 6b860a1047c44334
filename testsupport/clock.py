"""A clock a test moves by hand, for the operator's schedules (`Runtime.clock`)."""

from __future__ import annotations

import datetime
import threading


class ManualClock:
    """Starts at a given time (default: now, to the second) and moves only when told."""

    def __init__(self, start: datetime.datetime | None = None):
        self._now = (start or datetime.datetime.now(datetime.UTC)).replace(microsecond=0)
        self._lock = threading.Lock()  # read by the operator's thread, moved by the test's

    def now(self) -> datetime.datetime:
        with self._lock:
            return self._now

    def set(self, moment: datetime.datetime) -> None:
        with self._lock:
            self._now = moment

    def advance(self, **delta: float) -> datetime.datetime:
        """Move forward by `datetime.timedelta(**delta)`; returns the new time."""
        with self._lock:
            self._now += datetime.timedelta(**delta)
            return self._now
