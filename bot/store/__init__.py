"""The bot's SQLite store under DATA_DIR (WAL), a module per table group.

`database`: the connection, schema version, in-place upgrades and transactions. The table groups,
each with its SQL: `usage`, `feedback` (answers and their votes), `audit`, `jobs`, `chats`, `journal`
(the inbox of received updates), `outbox` (replies not delivered yet) and `privacy` (forgetting a
user, pruning old rows across the others), `users` (users an admin blocked). `store`: the `Store` callers
hold, every group's methods on one object.
"""

from bot.store.database import SCHEMA_VERSION
from bot.store.feedback import StoredAnswer
from bot.store.jobs import JobRecord
from bot.store.outbox import OutboxItem
from bot.store.privacy import Forgotten
from bot.store.store import Store

__all__ = ["SCHEMA_VERSION", "Forgotten", "JobRecord", "OutboxItem", "Store", "StoredAnswer"]
