"""settle_heap: loaded objects leave the collector's sight, and a later settle collects what was swapped out."""

from __future__ import annotations

import gc
import weakref

from bot.heap import settle_heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_survivors_are_frozen_and_a_swapped_out_cycle_is_collected_by_the_next_settle() -> None:
    try:
        loaded = Node()
        gone = weakref.ref(loaded)
        settle_heap()
        assert gc.get_freeze_count() > 0
        del loaded  # swapped out while frozen: a plain collection cannot see it
        gc.collect()
        assert gone() is not None
        settle_heap()
        assert gone() is None
    finally:
        gc.unfreeze()


def test_a_start_up_settle_collects_and_freezes_only_what_is_not_frozen_yet() -> None:
    try:
        earlier = Node()
        frozen = weakref.ref(earlier)
        settle_heap()
        del earlier
        loaded, garbage = Node(), Node()
        kept, collected = weakref.ref(loaded), weakref.ref(garbage)
        del garbage
        settle_heap(release_frozen=False)
        assert collected() is None and kept() is not None
        assert frozen() is not None  # left frozen, as it was
        # The survivor is frozen: out of every generation the collector walks. (The frozen count is no
        # measure: frozen objects that other tests released leave it by reference counting.)
        survivor = kept()
        assert not any(obj is survivor for obj in gc.get_objects())
    finally:
        gc.unfreeze()
