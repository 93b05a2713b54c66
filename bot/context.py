"""What handlers can reach: typed bot_data (services, store, limits, settings) and CustomContext."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from telegram.ext import Application, CallbackContext, ExtBot

from bot.jobs import JobManager
from bot.ratelimit import ChatFloodGuard, RateLimits
from bot.settings import BotSettings
from bot.store import Store

if TYPE_CHECKING:
    from bot.outbox import Outbox
    from generation.client import GenerationClient
    from generation.settings import GenerationSettings
    from knowledge.service import KnowledgeBase
    from knowledge.settings import KnowledgeSettings

STORE_FILE = "bot.sqlite3"


@dataclass
class Services:
    """The long-lived objects the bot starts in post_init and stops in post_shutdown."""

    knowledge: KnowledgeBase  # tests put stand-ins of the same shape here (tests/bot/bot_doubles.py)
    generation: GenerationClient
    store: Store

    @classmethod
    def from_settings(
        cls,
        settings: BotSettings,
        knowledge_settings: KnowledgeSettings,
        generation_settings: GenerationSettings,
    ) -> Services:
        """The real services (constructed only: post_init starts them)."""
        from generation.client import GenerationClient
        from knowledge.service import KnowledgeBase

        return cls(
            knowledge=KnowledgeBase.from_settings(knowledge_settings),
            generation=GenerationClient.from_settings(generation_settings),
            store=Store(settings.data_dir / STORE_FILE),
        )


class BotData:
    """Application-wide state; filled by bot.app.build_application before the bot starts."""

    settings: BotSettings
    services: Services
    limits: RateLimits
    jobs: JobManager
    # Model kinds waiting for their first-start training (bot.bootstrap), not yet started.
    first_start_queue: set[str]
    flood_guard: ChatFloodGuard
    # Replies that could not be delivered yet, retried in the background; set once the bot runs.
    outbox: Outbox | None

    def __init__(self) -> None:
        self.first_start_queue = set()
        self.outbox = None


class CustomContext(CallbackContext[ExtBot, dict, dict, BotData]):
    """CallbackContext with typed shortcuts to the services."""

    def __init__(self, application: Application, chat_id: int | None = None, user_id: int | None = None):
        super().__init__(application=application, chat_id=chat_id, user_id=user_id)

    @property
    def settings(self) -> BotSettings:
        return self.bot_data.settings

    @property
    def knowledge(self) -> KnowledgeBase:
        return self.bot_data.services.knowledge

    @property
    def generation(self) -> GenerationClient:
        return self.bot_data.services.generation

    @property
    def store(self) -> Store:
        return self.bot_data.services.store

    @property
    def limits(self) -> RateLimits:
        return self.bot_data.limits

    @property
    def jobs(self) -> JobManager:
        return self.bot_data.jobs

    def is_admin(self, user_id: int | None) -> bool:
        """True for users listed in ADMIN_IDS."""
        return user_id is not None and user_id in self.settings.admin_ids

    def refusal(self, user_id: int | None, chat_id: int | None) -> str | None:
        """Why the bot ignores this user in this chat ("blocked", "not_allowed"), or None. Admins are
        never ignored."""
        if self.is_admin(user_id):
            return None
        if user_id is not None and self.store.is_user_blocked(user_id):
            return "blocked"
        settings = self.settings
        if not (settings.allowed_users or settings.allowed_chats):
            return None
        if user_id in settings.allowed_users or chat_id in settings.allowed_chats:
            return None
        return "not_allowed"
