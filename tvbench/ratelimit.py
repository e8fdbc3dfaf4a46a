"""A requests-per-minute limit shared by every worker thread of one process."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """Spaces request starts at least ``60 / rpm`` seconds apart (no bursts); ``rpm=None`` means no limit."""

    def __init__(self, rpm: float | None, clock=time.monotonic, sleep=time.sleep):
        if rpm is not None and rpm <= 0:
            raise ValueError("rpm must be positive")
        self.interval = 60.0 / rpm if rpm else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._clock, self._sleep = clock, sleep

    def acquire(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)
