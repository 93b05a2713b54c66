"""The Store callers hold: every table group's methods on one object over one SQLite file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from bot.store.audit import AuditTable
from bot.store.chats import ChatTable
from bot.store.database import Database
from bot.store.feedback import FeedbackTables
from bot.store.jobs import JobTable
from bot.store.journal import InboxTable
from bot.store.outbox import OutboxTable
from bot.store.privacy import PrivacyTables
from bot.store.usage import UsageTable
from bot.store.users import BlockedUserTable

# In the order a new file has always had its tables created in.
TABLE_GROUPS: tuple[type[Database], ...] = (
    UsageTable,
    FeedbackTables,
    AuditTable,
    JobTable,
    ChatTable,
    InboxTable,
    OutboxTable,
    PrivacyTables,  # no tables of its own: it changes the others'
    BlockedUserTable,
)


class Store(
    UsageTable,
    FeedbackTables,
    AuditTable,
    JobTable,
    ChatTable,
    InboxTable,
    OutboxTable,
    PrivacyTables,
    BlockedUserTable,
):
    """One SQLite file holding every table group; safe to share between the event loop and worker
    threads."""

    TABLES = "".join(group.TABLES for group in TABLE_GROUPS)
    ADDED_COLUMNS: ClassVar[Mapping[str, Mapping[str, str]]] = {
        table: columns for group in TABLE_GROUPS for table, columns in group.ADDED_COLUMNS.items()
    }
