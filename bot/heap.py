"""Short full garbage collections: what is loaded at start (the knowledge base's encoder, tokenizer and
index, several hundred thousand objects) is frozen out of the collector's sight, so a full collection
walks only what handlers created since. Before this, a full collection took 200-290 ms (measured by
benchmarks.bot_throughput with a gc callback), a stall for every chat at once."""

from __future__ import annotations

import gc
import logging
import time

logger = logging.getLogger(__name__)


def settle_heap(*, release_frozen: bool = True) -> None:
    """Collect everything not frozen, then freeze the survivors. Called when start-up has loaded the
    services (nothing is frozen yet), and again after a large swap (a rebuilt index, a new champion),
    where what was frozen is released first so that what was replaced is collected before the new
    objects are frozen: frozen cycles are never collected."""
    started = time.perf_counter()
    if release_frozen:
        gc.unfreeze()
    gc.collect()
    gc.freeze()
    logger.info(
        "heap settled: %d objects frozen in %.0f ms",
        gc.get_freeze_count(),
        1000 * (time.perf_counter() - started),
    )
