"""The attack surface (issue 12): request body limits, content types, canonical cache keys."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from events_app.db import Database
from events_app.models import Registration
from events_app.web import api as web_api
from events_app.web import calendars as web_calendars
from tests.factories import make_agency, make_event

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


# --- the JSON API reads application/json only (SPEC §7) ---------------------------------------


def _event_and_token(committed: Database) -> tuple[int, str]:
    with committed.transaction() as db:
        agency, token = make_agency(db)
        return make_event(db, agency).id, token


PERSON = b'{"first_name": "Awa", "last_name": "Diallo", "email": "awa@example.org"}'


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_a_cross_site_form_cannot_register_anyone(
    client: TestClient, committed: Database, content_type: str | None
) -> None:
    event_id, _ = _event_and_token(committed)
    headers = {"content-type": content_type} if content_type else {}
    # httpx adds no content type to raw bytes; a form would say text/plain or urlencoded.
    answer = client.post(
        f"/api/v1/events/{event_id}/registrations", content=PERSON, headers=headers
    )
    assert answer.status_code == 415
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == ("unsupported_media_type", "content-type")
    assert "application/json" in error["message"]
    with committed.transaction() as db:
        assert db.scalar(select(func.count()).select_from(Registration)) == 0


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
def test_json_with_or_without_charset_is_read(
    client: TestClient, committed: Database, content_type: str
) -> None:
    event_id, _ = _event_and_token(committed)
    answer = client.post(
        f"/api/v1/events/{event_id}/registrations",
        content=PERSON,
        headers={"content-type": content_type},
    )
    assert answer.status_code == 201


def test_the_agency_api_reads_json_only(client: TestClient, committed: Database) -> None:
    event_id, token = _event_and_token(committed)
    headers = {"Authorization": f"Bearer {token}", "content-type": "text/plain"}
    created = client.post("/api/v1/agency/events", content=b"{}", headers=headers)
    patched = client.patch(
        f"/api/v1/agency/events/{event_id}", content=b'{"title": "X"}', headers=headers
    )
    assert (created.status_code, patched.status_code) == (415, 415)
    # Without a valid token the answer stays 401: nothing is learnt before authentication.
    stranger = client.post(
        "/api/v1/agency/events", content=b"{}", headers={"content-type": "text/plain"}
    )
    assert stranger.status_code == 401


# --- unknown query parameters never change what is cached (SPEC §7) ----------------------------


class Calls:
    """Wraps a real function and counts its calls (the work a cache hit must not do)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
        self.count = 0
        real = getattr(module, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)


def test_unknown_parameters_do_not_defeat_the_feed_cache(
    client: TestClient, committed: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _event_and_token(committed)
    renders = Calls(monkeypatch, web_calendars, "list_feed_events")
    first = client.get("/calendar.ics?sector=J&type=forum&format=onsite")
    assert first.status_code == 200
    assert renders.count == 1
    for n, url in enumerate(
        [
            "/calendar.ics?sector=J&type=forum&format=onsite&x=1",
            "/calendar.ics?x=2&format=onsite&type=forum&sector=J",
            "/calendar.ics?type=forum&sector=J&format=onsite&utm_source=mail&radius_km=30",
            "/calendar.ics?sector=J&type=forum&format=onsite&limit=5&available=non",
        ]
    ):
        again = client.get(url)
        assert again.status_code == 200, url
        assert again.headers["etag"] == first.headers["etag"], url
        assert again.content == first.content, url
        assert renders.count == 1, (n, url)
    assert client.get("/calendar.ics?sector=J").headers["etag"] != first.headers["etag"]
    assert renders.count == 2
    conditional = client.get(
        "/calendar.ics?format=onsite&x=3&sector=J&type=forum",
        headers={"If-None-Match": first.headers["etag"]},
    )
    assert conditional.status_code == 304


def test_unknown_parameters_do_not_defeat_the_search_cache(
    client: TestClient, committed: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _event_and_token(committed)
    searches = Calls(monkeypatch, web_api, "search_event_summaries")
    first = client.get("/api/v1/events?sector=J,N&limit=5")
    assert first.status_code == 200
    for url in [
        "/api/v1/events?sector=J,N&limit=5&x=1",
        "/api/v1/events?x=2&limit=5&sector=N&sector=J",
        "/api/v1/events?limit=5&sector=N,J&_=1733300000",
    ]:
        again = client.get(url)
        assert again.status_code == 200, url
        assert again.content == first.content, url
    assert searches.count == 1
    client.get("/api/v1/events?sector=J&limit=5")
    assert searches.count == 2
    # A malformed known parameter is still a 400, named.
    bad = client.get("/api/v1/events?limit=0&x=1")
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "limit"
