"""The ft-api importer against a local fake of the France Travail partner API.

The fake is a Starlette app served by a real uvicorn on 127.0.0.1 (not respx): it enforces the
realm, the grant, both scopes, the Bearer header and the page bounds, as the real gateway does,
and can throttle once, revoke a token, break a page or stop before its total.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from events_app.db import Database
from events_app.feeds import add_feed
from events_app.models import Event, ImportRun
from events_app.settings import Settings
from importers.fetch import FetchError
from importers.ftapi import MAX_RETRY_AFTER, Credentials, FtApiClient, retry_after
from importers.run import run_import
from tests.factories import make_agency
from tests.server import free_port

CLIENT_ID = "PAR_evenementsemploi_test"
CLIENT_SECRET = "s3cret"


def mee_event(n: int) -> dict[str, Any]:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10, minutes=n)
    return {
        "id": 1000 + n,
        "titre": f"Job dating n° {n}",
        "dateEvenement": start.isoformat(),
        "heureDebut": start.strftime("%H:%M:%S"),
        "heureFin": (start + timedelta(hours=2)).strftime("%H:%M:%S"),
        "timezone": "Europe/Paris",
        "type": "Job dating",
        "modalites": "en physique",
        "ville": "Lyon",
        "codePostal": "69003",
        "latitude": 45.76,
        "longitude": 4.85,
        "codesRome": ["N"],
        "nombrePlaceTotalPresentiel": 20,
    }


@dataclass
class FakeApi:
    events: list[dict[str, Any]] = field(default_factory=lambda: [mee_event(n) for n in range(250)])
    expires_in: int = 1499
    throttle_once: bool = True
    # A token is refused by the API after this many pages (None: never).
    revoke_after: int | None = None
    broken_page: int | None = None
    # Pages from this one on come back empty (the API stops before its total).
    dry_from: int | None = None
    token_requests: int = 0
    pages: list[tuple[int, int]] = field(default_factory=list)
    throttled: int = 0
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    base: str = ""

    async def token(self, request: Request) -> Response:
        self.token_requests += 1
        if request.query_params.get("realm") != "/partenaire":
            return JSONResponse({"error": "invalid_realm"}, status_code=400)
        form = await request.form()
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        scopes = set(str(form.get("scope", "")).split())
        value = f"token-{self.token_requests}"
        self.tokens[value] = {"scopes": scopes, "uses": 0}
        return JSONResponse(
            {
                "access_token": value,
                "token_type": "Bearer",
                "expires_in": self.expires_in,
                "scope": " ".join(sorted(scopes)),
            }
        )

    async def events_page(self, request: Request) -> Response:
        header = request.headers.get("authorization", "")
        token = (
            self.tokens.get(header.removeprefix("Bearer "))
            if header.startswith("Bearer ")
            else None
        )
        if token is None:
            return JSONResponse({"message": "Invalid access token"}, status_code=401)
        if not {"api_evenementsv1", "evenements"} <= token["scopes"]:
            return JSONResponse({"message": "Scope manquant"}, status_code=403)
        if self.revoke_after is not None and token["uses"] >= self.revoke_after:
            return JSONResponse({"message": "Token expired"}, status_code=401)
        try:
            page = int(request.query_params["page"])
            size = int(request.query_params["size"])
        except (KeyError, ValueError):
            return JSONResponse({"message": "page et size attendus"}, status_code=400)
        if page < 0 or not 1 <= size <= 100:
            return JSONResponse({"message": "page ou size hors bornes"}, status_code=400)
        if not isinstance(await request.json(), dict):
            return JSONResponse({"message": "critères JSON attendus"}, status_code=400)
        if self.throttle_once and not self.throttled:
            self.throttled += 1
            return PlainTextResponse("Too Many Requests", 429, headers={"Retry-After": "1"})
        token["uses"] += 1
        self.pages.append((page, size))
        if page == self.broken_page:
            return PlainTextResponse("<html>Erreur passerelle</html>", 200)
        content = self.events[page * size : (page + 1) * size]
        if self.dry_from is not None and page >= self.dry_from:
            content = []
        return JSONResponse({"totalElements": len(self.events), "content": content})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/connexion/oauth2/access_token", self.token, methods=["POST"]),
                Route(
                    "/partenaire/evenements/v1/mee/evenements", self.events_page, methods=["POST"]
                ),
            ]
        )

    @property
    def token_url(self) -> str:
        return f"{self.base}/connexion/oauth2/access_token?realm=/partenaire"

    @property
    def api(self) -> str:
        return f"{self.base}/partenaire"


@pytest.fixture
def fake() -> Iterator[FakeApi]:
    api = FakeApi()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(api.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    api.base = f"http://127.0.0.1:{port}"
    try:
        yield api
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def api_settings(settings: Settings, fake: FakeApi, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "feed_allow_private": True,
        "ft_client_id": CLIENT_ID,
        "ft_client_secret": CLIENT_SECRET,
        "ft_token_url": fake.token_url,
        **overrides,
    }
    return dataclasses.replace(settings, **values)


def api_feed(database: Database, url: str) -> int:
    with database.transaction() as db:
        agency, _ = make_agency(db)
        return add_feed(db, agency_id=agency.id, url=url, format="ft-api", interval_minutes=60).id


def live_events(database: Database, feed_id: int) -> int:
    with database.transaction() as db:
        return (
            db.scalar(
                select(func.count())
                .select_from(Event)
                .where(Event.feed_id == feed_id, Event.status == "scheduled")
            )
            or 0
        )


def test_every_page_is_read_with_one_token_and_a_throttle_obeyed(
    committed: Database, settings: Settings, fake: FakeApi
) -> None:
    feed_id = api_feed(committed, fake.api)
    summary = run_import(committed, api_settings(settings, fake), feed_id=feed_id)
    assert summary.status == "succeeded", summary.error
    assert summary.created == 250
    assert fake.token_requests == 1
    assert fake.throttled == 1
    assert fake.pages == [(0, 100), (1, 100), (2, 100)]
    with committed.transaction() as db:
        run = db.get(ImportRun, summary.run_id)
        assert run is not None
        # What staff see of the run.
        assert run.fetch_outcome is not None
        assert "3 pages, 250 événements sur 250" in run.fetch_outcome
        assert "1 attente" in run.fetch_outcome

    # The same API again: nothing changes.
    again = run_import(committed, api_settings(settings, fake), feed_id=feed_id)
    assert (again.status, again.created, again.unchanged) == ("succeeded", 0, 250)


def test_a_token_is_reused_until_it_expires(fake: FakeApi) -> None:
    fake.throttle_once = False
    fake.expires_in = 60  # valid 30 "seconds" once the margin is taken off
    now = [0.0]

    def clock() -> float:
        now[0] += 7.0  # every look at the clock: 7 seconds later
        return now[0]

    client = FtApiClient(
        fake.api,
        Credentials(CLIENT_ID, CLIENT_SECRET, fake.token_url),
        allow_private=True,
        page_size=10,
        clock=clock,
    )
    fetched = client.fetch()
    assert fetched.content is not None
    assert client.stats.pages == 25
    # Renewed as it expired: more than once, far fewer than one a page.
    assert 2 <= fake.token_requests < 25
    assert fake.token_requests == client.stats.tokens


def test_a_revoked_token_is_refreshed_once(
    committed: Database, settings: Settings, fake: FakeApi
) -> None:
    fake.throttle_once = False
    fake.revoke_after = 2
    feed_id = api_feed(committed, fake.api)
    summary = run_import(committed, api_settings(settings, fake), feed_id=feed_id)
    assert summary.status == "succeeded", summary.error
    assert summary.created == 250
    assert fake.token_requests == 2


def test_an_api_refusing_every_token_fails_after_one_refresh(fake: FakeApi) -> None:
    fake.throttle_once = False
    fake.revoke_after = 0
    client = FtApiClient(
        fake.api, Credentials(CLIENT_ID, CLIENT_SECRET, fake.token_url), allow_private=True
    )
    with pytest.raises(FetchError, match="après renouvellement"):
        client.fetch()
    assert fake.token_requests == 2


def test_a_refused_token_fails_the_run_and_keeps_the_data(
    committed: Database, settings: Settings, fake: FakeApi
) -> None:
    feed_id = api_feed(committed, fake.api)
    assert run_import(committed, api_settings(settings, fake), feed_id=feed_id).created == 250
    wrong = api_settings(settings, fake, ft_client_secret="wrong")
    summary = run_import(committed, wrong, feed_id=feed_id)
    assert summary.status == "failed"
    assert summary.error is not None
    assert summary.error.startswith("Jeton refusé par France Travail (401)")
    assert "\n" not in summary.error
    assert live_events(committed, feed_id) == 250


def test_missing_credentials_are_named(
    committed: Database, settings: Settings, fake: FakeApi
) -> None:
    feed_id = api_feed(committed, fake.api)
    summary = run_import(
        committed, api_settings(settings, fake, ft_client_id=None), feed_id=feed_id
    )
    assert summary.status == "failed"
    assert "FT_CLIENT_ID" in (summary.error or "")
    assert fake.token_requests == 0


def test_the_fake_enforces_scopes_grant_and_realm(fake: FakeApi) -> None:
    with httpx.Client() as http:
        no_realm = http.post(
            f"{fake.base}/connexion/oauth2/access_token",
            data={"grant_type": "client_credentials", "client_id": CLIENT_ID},
        )
        assert no_realm.status_code == 400
        one_scope = http.post(
            fake.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "scope": "api_evenementsv1",
            },
        ).json()["access_token"]
        page = http.post(
            f"{fake.api}/evenements/v1/mee/evenements?page=0&size=10",
            json={},
            headers={"Authorization": f"Bearer {one_scope}"},
        )
        assert page.status_code == 403
        both = http.post(
            fake.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "scope": "api_evenementsv1 evenements",
            },
        ).json()["access_token"]
        too_big = http.post(
            f"{fake.api}/evenements/v1/mee/evenements?page=0&size=101",
            json={},
            headers={"Authorization": f"Bearer {both}"},
        )
        assert too_big.status_code == 400
        no_bearer = http.post(f"{fake.api}/evenements/v1/mee/evenements?page=0&size=10", json={})
        assert no_bearer.status_code == 401


def test_a_malformed_page_fails_the_run_and_keeps_the_data(
    committed: Database, settings: Settings, fake: FakeApi
) -> None:
    feed_id = api_feed(committed, fake.api)
    assert run_import(committed, api_settings(settings, fake), feed_id=feed_id).created == 250
    fake.broken_page = 1
    fake.events = fake.events[:120]  # would cancel 130 events if it were applied
    summary = run_import(committed, api_settings(settings, fake), feed_id=feed_id)
    assert summary.status == "failed"
    assert summary.error == (
        "Page 1 de l'API France Travail illisible : « content » et « totalElements » attendus."
    )
    assert live_events(committed, feed_id) == 250


def test_an_unreachable_api_fails_the_run(committed: Database, settings: Settings) -> None:
    port = free_port()  # nobody listens there
    feed_id = api_feed(committed, f"http://127.0.0.1:{port}/partenaire")
    fake = FakeApi(base=f"http://127.0.0.1:{port}")
    summary = run_import(committed, api_settings(settings, fake), feed_id=feed_id)
    assert summary.status == "failed"
    assert (summary.error or "").startswith("Serveur injoignable : 127.0.0.1")


def test_vanished_events_are_cancelled_only_when_every_page_was_read(
    committed: Database, settings: Settings, fake: FakeApi
) -> None:
    feed_id = api_feed(committed, fake.api)
    assert run_import(committed, api_settings(settings, fake), feed_id=feed_id).created == 250
    # The API stops answering events after its first page, while announcing 250.
    fake.dry_from = 1
    partial = run_import(committed, api_settings(settings, fake), feed_id=feed_id)
    assert partial.status == "succeeded"
    assert partial.cancelled == 0
    assert live_events(committed, feed_id) == 250
    # Every page read, 20 events fewer: those are cancelled.
    fake.dry_from = None
    fake.events = fake.events[:230]
    complete = run_import(committed, api_settings(settings, fake), feed_id=feed_id)
    assert complete.cancelled == 20
    assert live_events(committed, feed_id) == 230


def test_the_api_is_refused_on_a_private_address_unless_allowed(
    committed: Database, settings: Settings, fake: FakeApi
) -> None:
    feed_id = api_feed(committed, fake.api)
    summary = run_import(
        committed, api_settings(settings, fake, feed_allow_private=False), feed_id=feed_id
    )
    assert summary.status == "failed"
    assert (summary.error or "").startswith("Adresse refusée (127.0.0.1)")
    assert fake.token_requests == 0


def test_retry_after_is_bounded() -> None:
    assert retry_after("2") == 2.0
    assert retry_after("3600") == MAX_RETRY_AFTER
    assert retry_after(None) == 1.0
    assert retry_after("n'importe quoi") == 1.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def events_app_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "events_app.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_command_line_imports_from_the_api(
    committed: Database, database_url: str, fake: FakeApi
) -> None:
    fake.throttle_once = False
    with committed.transaction() as db:
        make_agency(db, slug="agence-api")
    env = {
        "DATABASE_URL": database_url,
        "FEED_ALLOW_PRIVATE": "true",
        "FT_CLIENT_ID": CLIENT_ID,
        "FT_CLIENT_SECRET": CLIENT_SECRET,
        "FT_TOKEN_URL": fake.token_url,
    }
    done = events_app_cli(env, "import", "--format", "ft-api", "--agency", "agence-api", fake.api)
    assert done.returncode == 0, done.stderr
    assert "250" in done.stdout
    refused = events_app_cli(
        {**env, "FT_CLIENT_SECRET": "faux"},
        "import",
        "--format",
        "ft-api",
        "--agency",
        "agence-api",
        fake.api,
    )
    assert refused.returncode == 1
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith("Échec de l'import : Jeton refusé par France Travail (401)")
