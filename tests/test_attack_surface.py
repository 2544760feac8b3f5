"""The attack surface (issue 12): request body limits, content types, canonical cache keys."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from starlette.testclient import TestClient

CHUNK = 64 * 1024
TWO_MB = 2 * 1024 * 1024
MAX_BODY_BYTES = 1_000_000  # SPEC §7: 1 MB


def call_app(
    client: TestClient, method: str, path: str, chunks: int, headers: list[tuple[bytes, bytes]]
) -> tuple[int, bytes, dict[bytes, bytes], int]:
    """One request straight to the ASGI app, its body offered CHUNK by CHUNK.

    Returns the status, body and headers of the answer and how many chunks the app read.
    """
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled >= chunks:
            await anyio.sleep_forever()
        pulled += 1
        return {"type": "http.request", "body": b"a" * CHUNK, "more_body": pulled < chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": client.app_state.copy(),
    }

    async def run() -> None:
        with anyio.fail_after(30):
            await client.app(scope, receive, send)

    anyio.run(run)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, dict(start["headers"]), pulled


FORM = (b"content-type", b"application/x-www-form-urlencoded")
JSON = (b"content-type", b"application/json")


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/compte/connexion", FORM),
        ("/organisme/connexion", FORM),
        ("/api/v1/events/1/registrations", JSON),
        ("/api/v1/agency/events", JSON),
    ],
)
def test_a_declared_oversized_body_is_refused_unread(
    client: TestClient, path: str, content_type: tuple[bytes, bytes]
) -> None:
    length = (b"content-length", str(TWO_MB).encode())
    status, body, headers, pulled = call_app(
        client, "POST", path, TWO_MB // CHUNK, [content_type, length]
    )
    assert status == 413
    assert pulled == 0
    assert headers[b"x-content-type-options"] == b"nosniff"
    if path.startswith("/api/"):
        assert body.startswith(b'{"error":{"code":"too_large","message":"Corps de requ')
    else:
        assert "Corps de requête trop volumineux".encode() in body
        assert headers[b"content-type"].startswith(b"text/html")


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/compte/connexion", FORM), ("/api/v1/events/1/registrations", JSON)],
)
def test_a_chunked_oversized_body_is_cut_at_the_limit(
    client: TestClient, path: str, content_type: tuple[bytes, bytes]
) -> None:
    # No Content-Length: the body is counted as it comes, and reading stops past 1 MB.
    status, _body, _headers, pulled = call_app(
        client, "POST", path, TWO_MB // CHUNK, [content_type]
    )
    assert status == 413
    assert pulled == MAX_BODY_BYTES // CHUNK + 1


def test_an_oversized_form_and_json_are_refused_through_http(client: TestClient) -> None:
    form = client.post("/compte/connexion", data={"email": "a" * TWO_MB})
    assert form.status_code == 413
    assert "trop volumineux" in form.text
    api = client.post(
        "/api/v1/events/1/registrations",
        content=b'{"first_name": "' + b"a" * TWO_MB + b'"}',
        headers={"content-type": "application/json"},
    )
    assert api.status_code == 413
    assert api.json()["error"]["field"] == "body"


def test_a_body_under_the_limit_still_reaches_the_handler(client: TestClient) -> None:
    answer = client.post(
        "/api/v1/events/999999/registrations",
        content=b'{"first_name": "' + b"a" * 900_000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert answer.status_code in (400, 404)
