"""Several workers and machines: rate limits shared through Redis, trusted proxies only."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from starlette.testclient import TestClient

from events_app.app import create_app
from events_app.db import Database
from events_app.settings import Settings
from tests.factories import make_agency, make_event
from tests.redis_server import running_redis
from tests.server import running_server
from tests.test_accounts import sign_up as account_sign_up

CSRF = re.compile(r'name="csrftoken" value="([^"]+)"')
LIMIT = 5
ATTEMPTS = 40


async def _wrong_sign_ins(base_url: str) -> list[int]:
    """ATTEMPTS wrong sign-ins from one address, each on its own connection, all at once, so
    that both workers take some."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        page = await client.get("/compte/connexion")
        match = CSRF.search(page.text)
        assert match is not None
        token, cookies = match.group(1), dict(page.cookies)

    async def attempt() -> int:
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=base_url, timeout=60, cookies=cookies, limits=limits
        ) as fresh:
            answer = await fresh.post(
                "/compte/connexion",
                data={"email": "nobody@example.org", "password": "wrong", "csrftoken": token},
            )
            return answer.status_code

    return list(await asyncio.gather(*(attempt() for _ in range(ATTEMPTS))))


def test_one_sign_in_limit_holds_across_two_workers(
    committed: Database, database_url: str, redis_url: str
) -> None:
    with redis.Redis.from_url(redis_url) as shared:
        shared.flushdb()  # the counts of an earlier test (the other database) start afresh
    with running_server(
        database_url, workers=2, REDIS_URL=redis_url, RATE_LIMIT_SIGNIN=f"{LIMIT}/minute"
    ) as url:
        statuses = asyncio.run(_wrong_sign_ins(url))
    # Counted per worker (memory), 2 × LIMIT got through: 10 answers of 401 in a control run.
    assert statuses.count(401) == LIMIT, statuses
    assert statuses.count(429) == ATTEMPTS - LIMIT, statuses


@pytest.fixture
def proxied(committed: Database, settings: Settings) -> Iterator[TestClient]:
    """The app behind a proxy at 10.0.0.2 (trusted); requests come from that proxy."""
    settings = dataclasses.replace(
        settings, forwarded_allow_ips="10.0.0.2", rate_limit_registration="2/minute"
    )
    with TestClient(
        create_app(settings), raise_server_exceptions=False, client=("10.0.0.2", 40000)
    ) as client:
        yield client


def _register(client: TestClient, forwarded_for: str | None) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.post("/api/v1/events/999999/registrations", json={}, headers=headers).status_code


def test_a_trusted_proxy_names_the_client(proxied: TestClient) -> None:
    # Each visitor behind the proxy has their own count.
    assert [_register(proxied, "203.0.113.7") for _ in range(3)] == [400, 400, 429]
    assert _register(proxied, "198.51.100.9") == 400
    assert _register(proxied, "198.51.100.9, 203.0.113.7") == 429  # the nearest hop counts


def test_x_forwarded_for_is_ignored_from_anyone_else(
    committed: Database, settings: Settings
) -> None:
    # By default no proxy is trusted: a client cannot pick a new address per request.
    settings = dataclasses.replace(settings, rate_limit_registration="2/minute")
    with TestClient(
        create_app(settings), raise_server_exceptions=False, client=("127.0.0.1", 40000)
    ) as client:
        statuses = [_register(client, f"203.0.113.{n}") for n in range(3)]
    assert statuses == [400, 400, 429]


def test_redis_down_is_a_503_not_a_500(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    with running_redis(tmp_path) as url:
        client = TestClient(
            create_app(dataclasses.replace(settings, redis_url=url)),
            raise_server_exceptions=False,
        )
        client.__enter__()
        page = client.get("/compte/inscription")
        match = CSRF.search(page.text)
        assert match is not None
        # Signed up, and the account opened from the link of its mail: a session in Redis.
        assert account_sign_up(client).status_code == 303
    try:
        # Redis has stopped: sessions and rate limits cannot be read.
        account = client.get("/compte", follow_redirects=False)
        assert account.status_code == 503
        assert account.headers["retry-after"] == "5"
        client.cookies.delete("session")
        sign_in = client.post(
            "/compte/connexion",
            data={"email": "a@example.org", "password": "x", "csrftoken": match.group(1)},
            follow_redirects=False,
        )
        assert sign_in.status_code == 503
        assert "momentanément indisponible" in sign_in.text
    finally:
        client.__exit__(None, None, None)


def test_search_answers_are_shared_through_redis(
    committed: Database, settings: Settings, tmp_path: Path
) -> None:
    """Two app instances (two workers, or two machines) with one REDIS_URL: a page computed
    by one is served by the other, for the same 10 seconds."""
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        make_event(db, agency, title="Premier forum")
    with running_redis(tmp_path) as url:
        shared = dataclasses.replace(settings, redis_url=url)
        with (
            TestClient(create_app(shared)) as first,
            TestClient(create_app(shared)) as second,
            TestClient(create_app(settings)) as alone,
        ):
            before = first.get("/api/v1/events", params={"limit": "5"})
            with committed.transaction() as db:
                make_event(db, agency, title="Second forum")
            # The other worker answers from the page the first one stored in Redis...
            assert second.get("/api/v1/events", params={"limit": "5"}).content == before.content
            # ... where a worker without Redis computes it anew and sees the new event.
            fresh = alone.get("/api/v1/events", params={"limit": "5"}).json()["items"]
            assert len(fresh) == 2 and len(before.json()["items"]) == 1
            assert redis.Redis.from_url(url).keys("search:*")
