"""A journal of received updates, so none is lost to a crash between fetching and answering it.

PTB's updater confirms a batch of updates (the next getUpdates offset) as soon as it has put them in
the update queue, long before they are answered; a process killed in between would lose them. Here
every update is written to the store's inbox when it enters the queue and marked done when
`process_update` has run every handler for it. At start, updates a previous process left unfinished
are put back in the queue; Telegram re-sending an update the journal already holds is dropped.

Delivery is at least once: an update whose reply went out just before the process died is answered
again after the restart (Telegram has no idempotency key for sends). An update that keeps the process
from finishing it `MAX_ATTEMPTS` times is given up, so a poison update cannot cause a crash loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from typing import TYPE_CHECKING

from telegram import Update
from telegram.ext import Application

if TYPE_CHECKING:
    from bot.store import Store

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
KEEP_FINISHED_S = 2 * 86400  # Telegram re-sends unconfirmed updates for up to 24 hours
PRUNE_EVERY = 5000  # finished updates between prunings while running, so a long run's inbox stays bounded


class JournalQueue(asyncio.Queue):
    """The Application's update queue: journals each update as it is queued and drops re-sent ones."""

    def __init__(self) -> None:
        super().__init__()
        self.store: Store | None = None  # set once the store is open; until then nothing is journalled
        self.duplicates = 0

    def put_nowait(self, item: object) -> None:
        if isinstance(item, Update) and self.store is not None:
            payload = json.dumps(item.to_dict(), ensure_ascii=False)
            try:
                fresh = self.store.journal_update(item.update_id, payload)
            except sqlite3.Error as exc:  # e.g. locked by another writer: handle it, unjournalled
                logger.warning("could not journal update %s: %s", item.update_id, exc)
                fresh = True
            if not fresh:
                self.duplicates += 1
                logger.info("update %s already received; dropping the copy", item.update_id)
                return
        super().put_nowait(item)

    def replay(self, application: Application) -> int:
        """Queue the updates a previous process received but did not finish; returns how many."""
        assert self.store is not None
        unfinished, given_up = self.store.unfinished_updates(MAX_ATTEMPTS)
        for update_id in given_up:
            logger.error("update %s was not finished in %d attempts; giving it up", update_id, MAX_ATTEMPTS)
        for _, payload in unfinished:
            super().put_nowait(Update.de_json(json.loads(payload), application.bot))
        if unfinished:
            logger.warning("handling %d updates left unfinished by the previous run", len(unfinished))
        self.store.prune_inbox(KEEP_FINISHED_S)
        return len(unfinished)


class JournalledApplication(Application):
    """An Application that marks each update done in the journal once its handlers have all run, and
    stops within a bound: updates still running after `stop_grace_s` are cancelled and left unfinished
    in the journal, to be handled again after the restart."""

    stop_grace_s: float = 20.0

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._in_flight: set[asyncio.Task] = set()
        self._finished = 0

    async def process_update(self, update: object) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await super().process_update(update)
        finally:
            if task is not None:
                self._in_flight.discard(task)
        # Not reached when cancelled: the update stays unfinished and is replayed at the next start.
        store = self.bot_data.services.store
        if isinstance(update, Update) and store.is_open:
            try:
                store.finish_update(update.update_id)
                self._finished += 1
                if self._finished % PRUNE_EVERY == 0:
                    store.prune_inbox(KEEP_FINISHED_S)
            except sqlite3.Error as exc:  # it will be handled again after a restart: at least once
                logger.warning("could not mark update %s done: %s", update.update_id, exc)

    @property
    def in_flight(self) -> int:
        """Updates being handled now."""
        return len(self._in_flight)

    async def stop(self) -> None:
        """Let updates in flight finish for up to `stop_grace_s`, cancel the rest, then stop."""
        watchdog = asyncio.create_task(self._cancel_stragglers())
        try:
            await super().stop()
        finally:
            watchdog.cancel()

    async def _cancel_stragglers(self) -> None:
        await asyncio.sleep(self.stop_grace_s)
        if self._in_flight:
            logger.warning(
                "%d updates still running after %.0f s; cancelling them (they are handled again at the next"
                " start)",
                len(self._in_flight),
                self.stop_grace_s,
            )
            for task in list(self._in_flight):
                task.cancel()
