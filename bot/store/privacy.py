"""What /forget and the retention limit do to the other tables: a user's rows are deleted or made
anonymous in one transaction, so /stats keeps its counts and no question text or id of theirs stays."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bot.store.database import Database

# The sender of an update as Telegram sends it, for each kind of update the bot takes.
_SENDERS = (
    "$.message.from.id",
    "$.edited_message.from.id",
    "$.callback_query.from.id",
    "$.inline_query.from.id",
)


@dataclass(frozen=True)
class Forgotten:
    """How many rows of one user /forget removed or made anonymous, by what they held."""

    questions: int = 0  # their questions' text (the answer rows stay as anonymous counts)
    votes: int = 0  # their feedback votes (kept as anonymous votes)
    usage: int = 0  # their usage rows (kept as anonymous counts)
    messages: int = 0  # updates of theirs in the delivery journal
    replies: int = 0  # replies to them still waiting in the outbox

    @property
    def total(self) -> int:
        return self.questions + self.votes + self.usage + self.messages + self.replies

    @property
    def held_data(self) -> bool:
        """Whether anything /privacy describes was stored (the journal always holds the /forget itself)."""
        return bool(self.questions or self.votes or self.usage or self.replies)


class PrivacyTables(Database):
    """Forgetting one user, and pruning everyone's rows older than the retention limit."""

    def forget_user(self, user_id: int) -> Forgotten:
        """Delete what identifies `user_id`: the text of their questions and the sources shown them,
        their id on votes and usage rows (the counts stay, anonymous), their updates in the journal and
        the replies to their private chat in the outbox. Their private chat's id is their user id."""
        with self._write() as db:
            questions = db.execute(
                "UPDATE answers SET question = '', sources = '[]', user_id = NULL,"
                " chat_id = CASE WHEN chat_id = :user THEN 0 ELSE chat_id END WHERE user_id = :user",
                {"user": user_id},
            ).rowcount
            # A vote's key is (answer, user): a negative placeholder unique per row keeps the vote
            # countable without saying whose it was (real Telegram ids are positive).
            votes = db.execute("UPDATE feedback SET user_id = -rowid WHERE user_id = ?", (user_id,)).rowcount
            usage = db.execute(
                "UPDATE usage SET user_id = NULL,"
                " chat_id = CASE WHEN chat_id = :user THEN 0 ELSE chat_id END WHERE user_id = :user",
                {"user": user_id},
            ).rowcount
            sender = " OR ".join(f"json_extract(payload, '{path}') = :user" for path in _SENDERS)
            messages = db.execute(f"DELETE FROM inbox WHERE {sender}", {"user": user_id}).rowcount
            replies = db.execute("DELETE FROM outbox WHERE chat_id = ?", (user_id,)).rowcount
        return Forgotten(questions, votes, usage, messages, replies)

    def prune_older_than(self, days: float) -> int:
        """Delete questions, votes and usage rows older than `days` days; returns how many."""
        cutoff = time.time() - days * 86400
        with self._write() as db:
            removed = db.execute(
                "DELETE FROM feedback WHERE ts < :cutoff OR answer_id IN (SELECT id FROM answers WHERE ts < :cutoff)",
                {"cutoff": cutoff},
            ).rowcount
            removed += db.execute("DELETE FROM answers WHERE ts < ?", (cutoff,)).rowcount
            removed += db.execute("DELETE FROM usage WHERE ts < ?", (cutoff,)).rowcount
        return removed
