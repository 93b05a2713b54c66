"""Request limits (sliding windows): per user for questions and generations, per chat for anything
addressed to the bot."""

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
    """Questions and generations per user (each chat's total is the flood guard's)."""

    def __init__(
        self,
        question_rate: int,
        generation_rate: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_user = {
            "question": SlidingWindow(question_rate, window, clock),
            "generation": SlidingWindow(generation_rate, window, clock),
        }

    def check(self, kind: Kind, user_id: int | None) -> int:
        """0 and the request is counted, or the whole seconds to wait (nothing counted). A post
        without a user (a channel's) has only its chat's limit."""
        if user_id is None:
            return 0
        limit = self._per_user[kind]
        wait = limit.wait_time(user_id)
        if wait > 0:
            return max(1, math.ceil(wait))
        limit.record(user_id)
        return 0


class ChatFloodGuard:
    """Caps what anyone can make the bot send to a chat: at most `limit` updates addressed to the bot
    (commands, private messages, mentions and replies, button presses) are handled per chat in any
    `window` seconds, whatever they are (usage lines and refusals included); past that the chat gets one
    "slow down" notice per window and nothing else. Handlers' own per-user limits apply on top."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = SlidingWindow(limit, window, clock)
        self._clock = clock
        self._span = window
        self._notified: dict[int, float] = {}  # chat -> when it was last told to slow down

    def admit(self, chat_id: int) -> tuple[bool, int]:
        """(handle it?, seconds to wait); the second is 0 when the chat was already told this window."""
        wait = self._window.wait_time(chat_id)
        if wait == 0:
            self._window.record(chat_id)
            return True, 0
        now = self._clock()
        self._notified = {chat: at for chat, at in self._notified.items() if now - at < self._span}
        if chat_id in self._notified:
            return False, 0
        self._notified[chat_id] = now
        return False, max(1, int(wait + 0.999))
