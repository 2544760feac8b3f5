"""No secret in the logs: tokens in URLs are masked in the access log."""

from __future__ import annotations

import logging

import pytest

from events_app.logs import RedactSecrets, install_redaction, redact


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ('"GET /inscriptions/AbCdEf123456_-xyzXYZ HTTP/1.1" 200', "AbCdEf123456_-xyzXYZ"),
        ('"POST /api/v1/registrations/AbCdEf123456xyz/cancel HTTP/1.1"', "AbCdEf123456xyz"),
        ('"GET /agenda/Zz9Zz9Zz9Zz9Zz9.ics HTTP/1.1"', "Zz9Zz9Zz9Zz9Zz9"),
        ('"GET /compte/mot-de-passe/nouveau?token=eyJpZCI6MX0.abc.def HTTP/1.1"', "eyJpZCI6MX0"),
    ],
)
def test_tokens_in_urls_are_masked(line: str, secret: str) -> None:
    masked = redact(line)
    assert secret not in masked and "[masqué]" in masked


def test_the_access_log_is_filtered(caplog: pytest.LogCaptureFixture) -> None:
    install_redaction()
    logger = logging.getLogger("uvicorn.access")
    assert any(isinstance(f, RedactSecrets) for f in logger.filters)
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        logger.info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1",
            "GET",
            "/inscriptions/SECRETTOKEN123",
            "1.1",
            200,
        )
    assert "SECRETTOKEN123" not in caplog.text
    assert "/inscriptions/[masqué]" in caplog.text
