"""Per-user and per-chat request limits (sliding windows), checked before any slow work starts."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

Kind = Literal["question", "generation"]


class SlidingWindow:
    """At most `limit` hits per key in any `window` seconds."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[object, deque[float]] = {}

    def wait_time(self, key: object) -> float:
        """Seconds until `key` may hit again; 0 when it may now."""
        hits = self._prune(key)
        if len(hits) < self.limit:
            return 0.0
        return max(hits[0] + self.window - self._clock(), 0.0)

    def record(self, key: object) -> None:
        """Count one hit for `key` now."""
        self._hits.setdefault(key, deque()).append(self._clock())

    def _prune(self, key: object) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            return deque()
        horizon = self._clock() - self.window
        while hits and hits[0] <= horizon:
            hits.popleft()
        if not hits:
            del self._hits[key]
        return hits


class RateLimits:
    """Questions and generations per user, and all requests per chat."""

    def __init__(
        self,
        question_rate: int,
        generation_rate: int,
        chat_rate: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_user = {
            "question": SlidingWindow(question_rate, window, clock),
            "generation": SlidingWindow(generation_rate, window, clock),
        }
        self._per_chat = SlidingWindow(chat_rate, window, clock)

    def check(self, kind: Kind, user_id: int | None, chat_id: int) -> int:
        """0 and the request is counted, or the whole seconds to wait (nothing counted)."""
        user_limit = self._per_user[kind]
        wait = self._per_chat.wait_time(chat_id)
        if user_id is not None:
            wait = max(wait, user_limit.wait_time(user_id))
        if wait > 0:
            return max(1, math.ceil(wait))
        self._per_chat.record(chat_id)
        if user_id is not None:
            user_limit.record(user_id)
        return 0
