"""What handlers can reach: typed bot_data (services, store, limits, settings) and CustomContext."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from telegram.ext import Application, CallbackContext, ExtBot

from bot.jobs import JobManager
from bot.ratelimit import ChatFloodGuard, RateLimits
from bot.settings import BotSettings
from bot.store import Store

if TYPE_CHECKING:
    from bot.outbox import Outbox
    from generation.api import (
        ImageRequest,
        ImageResult,
        ModelInfo,
        ModelVersion,
        TextRequest,
        TextResult,
    )
    from generation.settings import GenerationSettings
    from knowledge.settings import KnowledgeSettings

STORE_FILE = "bot.sqlite3"


class KnowledgeService(Protocol):
    """The part of knowledge.service.KnowledgeBase the bot uses."""

    def initialize(self) -> Any: ...
    def ask(self, question: str, k: int = 5) -> Any: ...
    async def ask_async(self, question: str, k: int = 5) -> Any: ...
    def rebuild(self) -> Any: ...
    def stats(self) -> dict: ...
    def shutdown(self) -> Any: ...


class GenerationService(Protocol):
    """The part of generation.client.GenerationClient the bot uses."""

    @property
    def available(self) -> bool: ...
    @property
    def remote(self) -> bool: ...
    def available_for(self, kind: str) -> bool: ...
    async def initialize(self) -> Any: ...
    async def image(self, request: ImageRequest) -> ImageResult: ...
    async def text(self, request: TextRequest) -> TextResult: ...
    async def models(self) -> Sequence[ModelInfo]: ...
    async def reload(self) -> Any: ...
    async def versions(self, kind: str) -> Sequence[ModelVersion]: ...
    async def rollback(self, kind: str, version: str | None = None) -> ModelVersion: ...
    async def shutdown(self) -> Any: ...


@dataclass
class Services:
    """The long-lived objects the bot starts in post_init and stops in post_shutdown."""

    knowledge: KnowledgeService
    generation: GenerationService
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
    def knowledge(self) -> KnowledgeService:
        return self.bot_data.services.knowledge

    @property
    def generation(self) -> GenerationService:
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
