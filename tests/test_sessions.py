"""Server-side sessions (issue 12, point 6): ending a session ends every copy of its cookie.

Each test runs with the sessions in the database (SQLite and PostgreSQL) and in Redis.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import func, select
from starlette.testclient import TestClient

from events_app.app import create_app
from events_app.db import Database
from events_app.models import OutboxMessage, Seeker, WebSession
from events_app.settings import Settings
from events_app.staff import create_staff
from tests.factories import make_agency, make_event
from tests.test_accounts import sign_up as account_sign_up

CSRF = re.compile(r'name="csrftoken" value="([^"]+)"')
EMAIL = "camille.martin@exemple.fr"
PASSWORD = "une phrase assez longue"
STAFF_EMAIL = "claire.dupont@agence.example"


@dataclasses.dataclass
class Web:
    client: TestClient
    database: Database
    redis_url: str | None

    def live_sessions(self, owner: str) -> int:
        """How many sessions of owner the server keeps."""
        if self.redis_url is None:
            with self.database.transaction() as db:
                query = select(func.count()).where(WebSession.owner == owner)
                return int(db.scalar(query) or 0)
        with redis.Redis.from_url(self.redis_url) as client:
            ids = client.smembers(f"session-owner:{owner}")
            return sum(client.exists(f"session:{raw.decode()}") for raw in ids)  # type: ignore[union-attr]


@pytest.fixture(params=["database", "redis"])
def web(request: pytest.FixtureRequest, committed: Database, settings: Settings) -> Iterator[Web]:
    url: str | None = None
    if request.param == "redis":
        url = str(request.getfixturevalue("redis_url"))
        with redis.Redis.from_url(url) as client:
            client.flushdb()
        settings = dataclasses.replace(settings, redis_url=url)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Web(client, committed, url)


def post_form(
    client: TestClient, path: str, data: dict[str, Any], *, page: str | None = None
) -> httpx.Response:
    """POST a form as a browser would: the CSRF token read from the page that shows it."""
    shown = client.get(page or path)
    match = CSRF.search(shown.text)
    assert match is not None, page or path
    return client.post(path, data={**data, "csrftoken": match.group(1)}, follow_redirects=False)


def sign_up(client: TestClient) -> None:
    """Sign up and open the account from the link of its mail, as its owner would."""
    assert account_sign_up(client, EMAIL, PASSWORD).status_code == 303


def replay(client: TestClient, cookie: str, path: str) -> httpx.Response:
    """GET path with nothing but a copy of a session cookie."""
    client.cookies.clear()
    client.cookies.set("session", cookie)
    return client.get(path, follow_redirects=False)


def seeker_owner(database: Database) -> str:
    with database.transaction() as db:
        return f"seeker:{db.scalar(select(Seeker.id).where(Seeker.email == EMAIL))}"


def test_a_seekers_cookie_copied_before_sign_out_opens_nothing(web: Web) -> None:
    client = web.client
    sign_up(client)
    copied = client.cookies["session"]
    assert replay(client, copied, "/compte").status_code == 200
    assert replay(client, copied, "/compte/donnees.json").status_code == 200
    assert post_form(client, "/compte/deconnexion", {}, page="/compte").status_code == 303
    for path in ("/compte", "/compte/donnees.json"):
        answer = replay(client, copied, path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/compte/connexion")
    assert web.live_sessions(seeker_owner(web.database)) == 0


def test_a_staff_cookie_copied_before_sign_out_opens_nothing(web: Web) -> None:
    with web.database.transaction() as db:
        agency, _ = make_agency(db)
        create_staff(db, agency_id=agency.id, email=STAFF_EMAIL, name="Claire", password=PASSWORD)
        event_id = make_event(db, agency).id
    client = web.client
    signed_in = post_form(
        client, "/organisme/connexion", {"email": STAFF_EMAIL, "password": PASSWORD}
    )
    assert signed_in.status_code == 303
    copied = client.cookies["session"]
    csv_path = f"/organisme/evenements/{event_id}/inscrits.csv"
    assert replay(client, copied, csv_path).status_code == 200
    assert post_form(client, "/organisme/deconnexion", {}, page="/organisme").status_code == 303
    answer = replay(client, copied, csv_path)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/organisme/connexion")


def test_sign_in_starts_a_new_session_id(web: Web) -> None:
    client = web.client
    sign_up(client)
    first = client.cookies["session"]
    post_form(client, "/compte/deconnexion", {}, page="/compte")
    signed_in = post_form(client, "/compte/connexion", {"email": EMAIL, "password": PASSWORD})
    assert signed_in.status_code == 303
    assert client.cookies["session"] != first
    assert replay(client, first, "/compte").status_code == 303


def test_a_password_reset_ends_every_other_session(web: Web) -> None:
    client = web.client
    sign_up(client)
    other_device = client.cookies["session"]
    owner = seeker_owner(web.database)
    assert web.live_sessions(owner) == 1
    client.cookies.clear()
    post_form(client, "/compte/mot-de-passe/oubli", {"email": EMAIL})
    with web.database.transaction() as db:
        body = db.scalars(select(OutboxMessage.body_text).order_by(OutboxMessage.id.desc())).first()
    assert body is not None
    link = re.search(r"http://testserver(/compte/mot-de-passe/nouveau\?token=\S+)", body)
    assert link is not None
    token = link.group(1).split("token=", 1)[1]
    reset = post_form(
        client,
        "/compte/mot-de-passe/nouveau",
        {"token": token, "password": "un tout nouveau mot de passe"},
        page=link.group(1),
    )
    assert reset.status_code == 303
    # Only the session the reset opened is left.
    assert web.live_sessions(owner) == 1
    assert replay(client, other_device, "/compte").status_code == 303


def test_deleting_the_account_ends_every_session(web: Web) -> None:
    client = web.client
    sign_up(client)
    other_device = client.cookies["session"]
    owner = seeker_owner(web.database)
    # A second session of the same person (another browser).
    client.cookies.clear()
    post_form(client, "/compte/connexion", {"email": EMAIL, "password": PASSWORD})
    assert web.live_sessions(owner) == 2
    deleted = post_form(client, "/compte/suppression", {"password": PASSWORD})
    assert deleted.status_code == 303
    assert web.live_sessions(owner) == 0
    assert replay(client, other_device, "/compte").status_code == 303


@pytest.mark.parametrize("cookie", ["forged", "x" * 500, "null", ""])
def test_a_forged_cookie_is_no_session(web: Web, cookie: str) -> None:
    answer = replay(web.client, cookie, "/compte")
    assert answer.status_code == 303
