"""Secret redaction in logs."""

from __future__ import annotations

import logging

from bot.logs import REDACTED, setup_logging

TOKEN = "987654:ZZ-logs-test-secret-abcdef"


def test_secrets_are_redacted_from_messages_args_and_tracebacks(caplog) -> None:
    setup_logging("INFO", [TOKEN, None, "webhook-secret-xyz", "abc"])
    caplog.set_level(logging.INFO)
    log = logging.getLogger("bot.test")
    log.info("calling https://api.telegram.org/bot%s/getMe", TOKEN)
    log.warning("secret half alone: %s", TOKEN.split(":")[1])
    log.info("webhook-secret-xyz in the message itself")
    try:
        raise RuntimeError(f"failed at https://api.telegram.org/bot{TOKEN}/sendMessage")
    except RuntimeError:
        log.exception("request failed")
    assert TOKEN not in caplog.text
    assert TOKEN.split(":")[1] not in caplog.text
    assert "webhook-secret-xyz" not in caplog.text
    assert caplog.text.count(REDACTED) >= 4
    log.info("abc is too short to be a secret")
    assert "abc is too short" in caplog.text  # short values are ignored: ordinary words stay readable
    assert "getMe" in caplog.text


def test_httpx_request_lines_are_hidden_at_info_and_redacted_at_debug(caplog) -> None:
    setup_logging("INFO", [TOKEN])
    assert logging.getLogger("httpx").level == logging.WARNING
    setup_logging("DEBUG", [TOKEN])
    caplog.set_level(logging.DEBUG)
    logging.getLogger("httpx").info(
        'HTTP Request: POST https://api.telegram.org/bot%s/getUpdates "200 OK"', TOKEN
    )
    assert f"bot{REDACTED}/getUpdates" in caplog.text
    setup_logging("INFO", [])
