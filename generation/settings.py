"""Generation settings, read once at start from the environment (and an optional .env file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

# The default champions the package ships (`make models` writes them; nothing else does).
PACKAGE_SHIPPED_DIR = Path(__file__).resolve().parent / "pretrained"


class GenerationSettings(BaseSettings):
    """Where models live, where the generation service is, and how to reach it."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    data_dir: Path = Path("var")
    # Empty: run the generators in-process. Otherwise the base URL of `python -m generation.serve`.
    generation_url: str = ""
    generation_token: SecretStr | None = None
    generation_device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    # Client: the whole budget of one call, retries included; the service caps each request's deadline
    # at the same value and stops waiting for a request once its client's budget is spent.
    generation_timeout_s: float = Field(default=20.0, gt=0)
    # Client: extra tries after a connection failure or an overloaded service, with jittered backoff.
    generation_retries: int = Field(default=2, ge=0, le=10)
    # Client circuit breaker: open after this many failed calls in a row, probe again after reset_s.
    generation_breaker_failures: int = Field(default=3, ge=1, le=100)
    generation_breaker_reset_s: float = Field(default=5.0, gt=0, le=600)
    # Service: listen address of `python -m generation.serve` (--host/--port override).
    generation_host: str = "127.0.0.1"
    generation_port: int = Field(default=8000, ge=1, le=65535)
    # Micro-batching (service and in-process): run up to max_batch requests of one model together.
    # A request on an idle model starts at once (or waits up to max_wait_ms for company when that is
    # set); requests arriving meanwhile go together next. Under load a batch waits for the mates
    # recent traffic says are coming, max_wait_ms or a quarter of the previous batch's run time,
    # whichever is longer. Beyond max_queue waiting requests, new ones are refused as busy.
    generation_max_batch: int = Field(default=32, ge=1, le=1024)
    generation_max_wait_ms: float = Field(default=0.0, ge=0, le=1000)
    generation_max_queue: int = Field(default=512, ge=1, le=100_000)
    log_level: str = "INFO"
    # Default LSTM training text: the knowledge corpus folder of the installed project, found by path
    # (generation never imports knowledge).
    text_corpus_dir: Path = Path(__file__).resolve().parent.parent / "knowledge" / "corpus"
    # Default champions served until a trained model is promoted; empty = none.
    shipped_models_dir: str = str(PACKAGE_SHIPPED_DIR)
    # Threads for training and CPU inference; 0 = torch's default (all cores).
    generation_threads: int = Field(default=0, ge=0)

    @field_validator("generation_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be empty or start with http:// or https://")
        return value

    @property
    def models_dir(self) -> Path:
        """Root of the model registry."""
        return self.data_dir / "models"

    @property
    def shipped_dir(self) -> Path | None:
        """Where the shipped default champions are, or None for none."""
        return Path(self.shipped_models_dir) if self.shipped_models_dir.strip() else None

    @property
    def token(self) -> str | None:
        """The shared secret in clear text, or None when unset or blank."""
        if self.generation_token is None:
            return None
        return self.generation_token.get_secret_value().strip() or None

    @classmethod
    def load(cls) -> GenerationSettings:
        """Read the environment once; a bad value exits with one line naming the variable."""
        try:
            return cls()
        except ValidationError as exc:
            error = exc.errors()[0]
            raise SystemExit(f"Bad setting {str(error['loc'][0]).upper()}: {error['msg']}") from None
        except SettingsError as exc:
            raise SystemExit(f"Bad setting: {exc}") from None
