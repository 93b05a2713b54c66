"""The Store callers hold: every table group's methods on one object over one SQLite file."""

from __future__ import annotations

from bot.store.audit import AuditTable
from bot.store.chats import ChatTable
from bot.store.feedback import FeedbackTables
from bot.store.jobs import JobTable
from bot.store.journal import InboxTable
from bot.store.outbox import OutboxTable
from bot.store.privacy import PrivacyTables
from bot.store.usage import UsageTable
from bot.store.users import BlockedUserTable


# The table groups, in the order a new file has always had its tables created in (PrivacyTables has
# none of its own: it changes the others').
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


Store.TABLES = "".join(group.TABLES for group in Store.__bases__)
Store.ADDED_COLUMNS = {
    table: columns for group in Store.__bases__ for table, columns in group.ADDED_COLUMNS.items()
}
