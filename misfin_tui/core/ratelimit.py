"""A sliding-window rate limit per key, shared by the receiver and the verifier."""

from __future__ import annotations

import threading
import time
from collections import deque


class RateLimiter:
    """A sliding window per peer address: at most `limit` events per `window` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait_needed(self, key: str) -> int:
        """Record one event; 0 when allowed, else how many whole seconds to wait."""
        now = time.monotonic()
        with self._lock:
            if len(self._events) > 10_000:  # forget idle peers so memory stays bounded
                for k in [k for k, q in self._events.items() if not q or q[-1] < now - self.window]:
                    del self._events[k]
            events = self._events.setdefault(key, deque())
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                return max(1, int(events[0] + self.window - now + 0.999))
            events.append(now)
            return 0
