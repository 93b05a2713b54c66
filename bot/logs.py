"""Logging with secrets redacted from every record, whichever handler ends up writing it."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

REDACTED = "[REDACTED]"
_MIN_SECRET_CHARS = 6


class _Redactor(logging.Filter):
    """Replaces each secret in a record's message, traceback and stack text; always keeps the record."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Add secrets (and, for a bot token "id:secret", the secret half alone); longest first."""
        found = set(self.secrets)
        for secret in secrets:
            if not secret or len(secret) < _MIN_SECRET_CHARS:
                continue
            found.add(secret)
            _, _, tail = secret.partition(":")
            if len(tail) >= _MIN_SECRET_CHARS:
                found.add(tail)
        self.secrets = sorted(found, key=len, reverse=True)

    def redact(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_redacted", False) or not self.secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the raw parts, redacted
            message = f"{record.msg} {record.args}"
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        record._redacted = True
        return True


_redactor: _Redactor | None = None


def setup_logging(level: str, secrets: Iterable[str | None] = ()) -> None:
    """Log to stderr at `level`, redacting `secrets` from every record of every logger.

    Records are redacted as they are created (a log-record factory), so handlers added later, such as
    pytest's log capture, never see a secret either; the stderr handler carries the same filter too.
    httpx logs each request URL (which holds the bot token) at INFO: it is kept at WARNING unless
    `level` is DEBUG, and redacted either way.
    """
    global _redactor
    clean = [secret for secret in secrets if secret]
    if _redactor is None:
        _redactor = _Redactor(clean)
        previous_factory = logging.getLogRecordFactory()
        redactor = _redactor

        def make_record(*args: object, **kwargs: object) -> logging.LogRecord:
            record = previous_factory(*args, **kwargs)
            redactor.filter(record)
            return record

        logging.setLogRecordFactory(make_record)
    else:
        _redactor.add(clean)

    root = logging.getLogger()
    root.setLevel(level)
    if not any(getattr(handler, "_bot_handler", False) for handler in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._bot_handler = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    for handler in root.handlers:
        if _redactor not in handler.filters:
            handler.addFilter(_redactor)
    noisy = logging.DEBUG if level == "DEBUG" else logging.WARNING
    logging.getLogger("httpx").setLevel(noisy)
    logging.getLogger("httpcore").setLevel(max(noisy, logging.INFO))
