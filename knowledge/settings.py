"""Knowledge-base settings, read once at start from the environment (and an optional .env file)."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

PACKAGED_CORPUS = Path(__file__).parent / "corpus"
PACKAGED_QUESTIONS = Path(__file__).parent / "questions"
PACKAGED_EMBEDDING_MODEL = "packaged:all-MiniLM-L6-v2"


class KnowledgeSettings(BaseSettings):
    """Where the corpus and index live, and which encoder embeds them."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    data_dir: Path = Path("var")
    corpus_dir: Path = PACKAGED_CORPUS
    # Questions readers are expected to ask of each article, tied to their answers (knowledge.asked).
    questions_dir: Path = PACKAGED_QUESTIONS
    # A local path or a Hugging Face model id; the default is the offline packaged model.
    embedding_model: str = PACKAGED_EMBEDDING_MODEL
    log_level: str = "INFO"

    @property
    def index_dir(self) -> Path:
        """Folder holding the persisted index."""
        return self.data_dir / "index"

    @classmethod
    def load(cls) -> KnowledgeSettings:
        """Read the environment once; a bad value exits with one line naming the variable."""
        try:
            return cls()
        except ValidationError as exc:
            error = exc.errors()[0]
            raise SystemExit(f"Bad setting {str(error['loc'][0]).upper()}: {error['msg']}") from None
        except SettingsError as exc:
            raise SystemExit(f"Bad setting: {exc}") from None
