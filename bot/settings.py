"""Bot settings, read once at start from the environment (and an optional .env file)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from generation.api import DEFAULT_IMAGE_KIND, DEFAULT_TEXT_KIND, TEXT_MODEL_KINDS, ImageKind, TextKind

TELEGRAM_API_BASE_URL = "https://api.telegram.org/bot"


class BotSettings(BaseSettings):
    """Everything the bot process reads from its environment."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str = TELEGRAM_API_BASE_URL
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    # Optional allow-lists: when either is set, only its users (anywhere) and chats (anyone in them) are
    # answered; admins always are. Empty: everyone.
    allowed_users: Annotated[frozenset[int], NoDecode] = frozenset()
    allowed_chats: Annotated[frozenset[int], NoDecode] = frozenset()
    data_dir: Path = Path("var")
    log_level: str = "INFO"
    # Users' questions, votes and usage rows older than this many days are deleted daily.
    retention_days: int = Field(default=90, ge=1)

    webhook_url: str = ""
    webhook_secret: SecretStr | None = None
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = Field(default=8443, ge=1, le=65535)

    # Per-user and per-chat limits: at most N requests in a rolling window of W seconds.
    question_rate: int = Field(default=20, ge=1)
    generation_rate: int = Field(default=5, ge=1)
    chat_rate: int = Field(default=60, ge=1)
    rate_window_s: float = Field(default=60.0, gt=0)
    # The generator /image and "draw me a 7" use when the message names none.
    image_model: ImageKind = DEFAULT_IMAGE_KIND
    # The generator /text uses: char (the character LSTM) or word (the word-level LSTM, the default).
    text_model: Literal["char", "word"] = next(
        name for name, kind in TEXT_MODEL_KINDS.items() if kind == DEFAULT_TEXT_KIND
    )

    # Outgoing flood control (PTB's AIORateLimiter): messages per second over all chats, as Telegram
    # allows; 0 turns throttling off (a self-hosted Bot API server, tests). 429s are retried either way.
    telegram_flood_rate: float = Field(default=30.0, ge=0)
    # Updates handled at the same time; questions wait on the knowledge base in worker threads.
    max_concurrent_updates: int = Field(default=64, ge=1)
    # Seconds to wait for Telegram's answer to a call before retrying it (PTB's default read timeout).
    telegram_read_timeout_s: float = Field(default=5.0, gt=0)
    # Replies Telegram could not take (outage, long flood wait) are retried this often from the store.
    outbox_interval_s: float = Field(default=5.0, gt=0)
    # SIGTERM: updates in flight get this long to finish; the rest are handled again after the restart.
    shutdown_grace_s: float = Field(default=20.0, gt=0)

    # /retrain runs `python -m generation.train KIND --progress-json RETRAIN_ARGS...` in the background;
    # RETRAIN_ARGS adds trainer options to every run, e.g. "--dry-run --device cpu" (tests, quick checks).
    retrain_args: str = ""
    # /retrain intent runs `python -m knowledge train-intent --progress-json INTENT_RETRAIN_ARGS...`.
    intent_retrain_args: str = ""
    # The job's progress message is edited at most once per this many seconds (Telegram limits edits).
    retrain_progress_interval_s: float = Field(default=5.0, gt=0)
    # /retrain cancel: SIGTERM first, SIGKILL if the trainer is still running after this many seconds.
    retrain_cancel_grace_s: float = Field(default=10.0, gt=0)

    # First start: train the default generator recipes in the background when no model exists yet
    # (in-process generators only; a generation service trains its own).
    train_missing_models: bool = True

    @field_validator("admin_ids", "allowed_users", "allowed_chats", mode="before")
    @classmethod
    def _parse_ids(cls, value: object) -> object:
        """Accept "1, 2,3" as well as a list; an empty string means no admins."""
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            return frozenset(int(part) for part in parts)
        return value

    @field_validator("retrain_args", "intent_retrain_args")
    @classmethod
    def _check_retrain_args(cls, value: str) -> str:
        shlex.split(value)  # unbalanced quotes fail here, at start, naming the variable
        return value

    @property
    def retrain_argv(self) -> list[str]:
        """RETRAIN_ARGS split as a shell would."""
        return shlex.split(self.retrain_args)

    @property
    def intent_retrain_argv(self) -> list[str]:
        """INTENT_RETRAIN_ARGS split as a shell would."""
        return shlex.split(self.intent_retrain_args)

    @field_validator("image_model", "text_model", mode="before")
    @classmethod
    def _lower_model_names(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def text_kind(self) -> TextKind:
        """The model kind TEXT_MODEL names."""
        return TEXT_MODEL_KINDS[self.text_model]

    @field_validator("telegram_api_base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return value

    @property
    def token(self) -> str | None:
        """The bot token in clear text, or None when unset or blank."""
        if self.telegram_bot_token is None:
            return None
        return self.telegram_bot_token.get_secret_value().strip() or None

    @classmethod
    def load(cls) -> BotSettings:
        """Read the environment once; a bad value exits with one line naming the variable."""
        try:
            return cls()
        except ValidationError as exc:
            error = exc.errors()[0]
            raise SystemExit(f"Bad setting {str(error['loc'][0]).upper()}: {error['msg']}") from None
        except SettingsError as exc:
            raise SystemExit(f"Bad setting: {exc}") from None
