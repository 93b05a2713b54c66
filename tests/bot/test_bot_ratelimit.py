"""Sliding-window limits per user, and the per-chat flood guard."""

from __future__ import annotations

from bot.ratelimit import ChatFloodGuard, RateLimits, SlidingWindow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_window_allows_limit_then_reports_wait() -> None:
    clock = Clock()
    window = SlidingWindow(limit=2, window=10, clock=clock)
    for _ in range(2):
        assert window.wait_time("u") == 0
        window.record("u")
    clock.now += 3
    assert window.wait_time("u") == 7
    clock.now += 7
    assert window.wait_time("u") == 0


def test_per_user_limit_does_not_touch_other_users() -> None:
    clock = Clock()
    limits = RateLimits(question_rate=1, generation_rate=1, window=60, clock=clock)
    assert limits.check("question", 1) == 0
    assert limits.check("question", 1) == 60
    assert limits.check("question", 2) == 0
    assert limits.check("generation", 1) == 0  # separate budget per kind


def test_a_refusal_is_not_counted_and_waits_round_up() -> None:
    clock = Clock()
    limits = RateLimits(question_rate=2, generation_rate=2, window=30, clock=clock)
    assert limits.check("question", 1) == 0
    assert limits.check("question", 1) == 0
    clock.now += 10.2
    assert limits.check("question", 1) == 20  # rounded up to whole seconds
    clock.now += 19.9
    assert limits.check("question", 1) == 0  # the refusal above did not count


def test_channel_posts_without_user_are_left_to_the_chat_guard() -> None:
    limits = RateLimits(question_rate=1, generation_rate=1, window=5, clock=Clock())
    assert limits.check("question", None) == 0
    assert limits.check("question", None) == 0
    guard = ChatFloodGuard(limit=1, window=5, clock=Clock())
    assert guard.admit(-100) == (True, 0)
    assert guard.admit(-100) == (False, 5)
    assert guard.admit(-100) == (False, 0)  # told once a window
