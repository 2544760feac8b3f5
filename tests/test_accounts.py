"""Seeker accounts through HTTP (sign-up, sign-in, sessions, preferences, "Mes événements",
password reset, CSRF, rate limit) and the domain rules HTTP cannot reach (expiry, rehash)."""

from __future__ import annotations

import html
import re
import time

import pytest
from argon2 import PasswordHasher
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from events_app import accounts, passwords
from events_app.app import create_app
from events_app.db import Database
from events_app.errors import Conflict, InvalidInput, Unauthorized
from events_app.models import OutboxMessage, Registration, Seeker
from events_app.notifications import Notifier
from events_app.registrations import Person, register
from events_app.settings import Settings
from tests.factories import make_agency, make_event, make_seeker
from tests.helpers import (
    EMAIL,
    PASSWORD,
    csrf_token,
    is_signed_in,
    last_mail,
    post_form,
    sign_in,
    sign_out,
    sign_up,
)

GENERIC_SIGN_IN_ERROR = "Adresse e-mail ou mot de passe incorrect."
LYON = {
    "name": "Halle Tony Garnier",
    "address": "20 place Docteurs Mérieux",
    "postal_code": "69007",
    "city": "Lyon",
    "lat": 45.7320,
    "lon": 4.8226,
}


def outbox(database: Database, kind: str) -> list[OutboxMessage]:
    with database.transaction() as db:
        return list(
            db.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
            )
        )


# --- Sign-up, sign-in, sign-out ----------------------------------------------------------------


def test_sign_up_signs_in_and_shows_my_page(client: TestClient) -> None:
    response = sign_up(client, email="  Camille.Martin@Exemple.FR ")
    assert response.status_code == 303
    assert response.headers["location"] == "/compte?bienvenue=1"
    page = client.get("/compte")
    assert page.status_code == 200
    assert "<h1>Mes événements</h1>" in page.text
    assert "Camille Martin" in page.text
    assert EMAIL in page.text  # stored trimmed and lower-cased
    assert page.headers["cache-control"] == "no-store"
    assert page.text.count("<h1") == 1


def test_sign_out_ends_the_session(client: TestClient) -> None:
    sign_up(client)
    assert is_signed_in(client)
    response = sign_out(client)
    assert response.status_code == 303
    assert response.headers["location"] == "/compte/connexion?deconnecte=1"
    assert not is_signed_in(client)
    assert "Vous êtes déconnecté·e." in client.get(response.headers["location"]).text


def test_my_page_sends_strangers_to_sign_in_and_back(client: TestClient) -> None:
    response = client.get("/compte/preferences", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/compte/connexion?suivant=%2Fcompte%2Fpreferences"
    sign_up(client)
    sign_out(client)
    token = csrf_token(client, "/compte/connexion?suivant=/compte/preferences")
    signed_in = client.post(
        "/compte/connexion",
        data={
            "email": EMAIL,
            "password": PASSWORD,
            "suivant": "/compte/preferences",
            "csrftoken": token,
        },
        follow_redirects=False,
    )
    assert signed_in.headers["location"] == "/compte/preferences"


def test_sign_in_never_redirects_to_another_site(client: TestClient) -> None:
    sign_up(client)
    sign_out(client)
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        token = csrf_token(client, "/compte/connexion")
        response = client.post(
            "/compte/connexion",
            data={"email": EMAIL, "password": PASSWORD, "suivant": target, "csrftoken": token},
            follow_redirects=False,
        )
        assert response.headers["location"] == "/compte"


def test_sign_up_bad_input_is_shown_beside_the_field(client: TestClient) -> None:
    response = post_form(
        client,
        "/compte/inscription",
        {"first_name": "Camille", "last_name": "Martin", "email": "pas-une-adresse"},
    )
    assert response.status_code == 400
    assert 'aria-describedby="email-error"' in response.text
    assert 'id="email-error"' in response.text
    assert "Adresse e-mail invalide" in response.text
    assert 'value="Camille"' in response.text  # what was typed is kept

    response = sign_up(client, password="court")
    assert response.status_code == 400
    assert 'id="password-error"' in response.text
    assert "au moins 10 caractères" in response.text

    response = post_form(
        client,
        "/compte/inscription",
        {"first_name": " ", "last_name": "Martin", "email": EMAIL, "password": PASSWORD},
    )
    assert response.status_code == 400
    assert 'id="first_name-error"' in response.text
    assert not is_signed_in(client)


def test_sign_up_never_tells_whether_an_address_has_an_account(client: TestClient) -> None:
    new = sign_up(client, email="nouvelle@exemple.fr", confirm=False)
    sign_up(client)
    sign_out(client)
    known = sign_up(client, email=EMAIL.upper(), confirm=False)
    # The same answer either way; the owner of the address is told by mail instead.
    assert (new.status_code, new.headers["location"]) == (303, "/compte/inscription/envoyee")
    assert (known.status_code, known.headers["location"]) == (303, "/compte/inscription/envoyee")
    assert not is_signed_in(client)
    told = last_mail(client, "account_exists")
    assert told is not None and told.to_address == EMAIL
    assert "/compte/mot-de-passe/oubli" in told.body_text
    # The second sign-up changed nothing: the first password still opens the account.
    assert sign_in(client).status_code == 303


def test_an_account_opens_only_from_the_link_of_its_mail(client: TestClient) -> None:
    sign_up(client, confirm=False)
    refused = sign_in(client)
    assert refused.status_code == 401 and "Confirmez d'abord" in html.unescape(refused.text)
    mail = last_mail(client, "confirm_account")
    assert mail is not None and mail.to_address == EMAIL
    link = re.search(r"(/compte/confirmation\?token=\S+)", mail.body_text)
    assert link
    # Following the link (as a mail scanner would) confirms nothing: only the button does.
    assert client.get(link.group(1)).status_code == 200
    assert sign_in(client).status_code == 401
    token = link.group(1).split("token=", 1)[1]
    done = post_form(client, "/compte/confirmation", {"token": token}, page=link.group(1))
    assert done.headers["location"] == "/compte?bienvenue=1" and is_signed_in(client)
    forged = post_form(client, "/compte/confirmation", {"token": token + "x"}, page=link.group(1))
    assert forged.status_code == 400


def test_wrong_password_gives_a_generic_error_and_no_session(client: TestClient) -> None:
    sign_up(client)
    sign_out(client)
    wrong = sign_in(client, password="pas le bon mot de passe")
    unknown = sign_in(client, email="personne@exemple.fr")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert GENERIC_SIGN_IN_ERROR in response.text
        assert "session=" not in response.headers.get("set-cookie", "")
    assert not is_signed_in(client)

    empty = sign_in(client, password="")
    assert empty.status_code == 400
    assert 'id="password-error"' in empty.text

    right = sign_in(client, email=" CAMILLE.martin@exemple.fr ")
    assert right.status_code == 303
    assert right.headers["location"] == "/compte"
    assert is_signed_in(client)


def test_session_cookie_is_httponly_and_samesite_lax(client: TestClient) -> None:
    sign_up(client)
    sign_out(client)
    response = sign_in(client)
    cookies = response.headers.get_list("set-cookie")
    session = next(cookie for cookie in cookies if cookie.startswith("session="))
    attributes = [part.strip().lower() for part in session.split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "secure" not in attributes  # served over http in this test


def test_session_cookie_is_secure_over_https(committed: Database, settings: Settings) -> None:
    https = Settings(database_url=settings.database_url, base_url="https://evenements.example")
    with TestClient(
        create_app(https), base_url="https://testserver", raise_server_exceptions=False
    ) as client:
        response = sign_up(client)
        assert response.status_code == 303
        session = next(
            cookie
            for cookie in response.headers.get_list("set-cookie")
            if cookie.startswith("session=")
        )
        attributes = [part.strip().lower() for part in session.split(";")]
        assert {"httponly", "samesite=lax", "secure"} <= set(attributes)


def test_sign_in_without_csrf_token_is_refused(client: TestClient) -> None:
    sign_up(client)
    sign_out(client)
    client.get("/compte/connexion")  # the CSRF cookie is there, the form field is not
    response = client.post(
        "/compte/connexion", data={"email": EMAIL, "password": PASSWORD}, follow_redirects=False
    )
    assert response.status_code == 403
    assert not is_signed_in(client)


def test_sign_in_attempts_are_rate_limited(client: TestClient) -> None:
    token = csrf_token(client, "/compte/connexion")
    data = {"email": EMAIL, "password": "pas le bon mot de passe", "csrftoken": token}
    statuses = [
        client.post("/compte/connexion", data=data, follow_redirects=False).status_code
        for _ in range(10)
    ]
    assert statuses == [401] * 10
    response = client.post("/compte/connexion", data=data, follow_redirects=False)
    assert response.status_code == 429
    assert "Trop de tentatives" in response.text
    assert "<h1>Se connecter</h1>" in response.text  # the form again, with the message


# --- Preferences and "Mes événements" ----------------------------------------------------------


def test_preferences_choose_the_events_for_me(client: TestClient, committed: Database) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        make_event(db, agency, title="Job dating transport à Montreuil", sectors=["N"])
        make_event(db, agency, title="Forum logistique à Lyon", sectors=["N"], venue=LYON)
        make_event(db, agency, title="Atelier santé à Montreuil", sectors=["J"])
    sign_up(client)
    response = post_form(
        client,
        "/compte/preferences",
        {"home_place": "Montreuil", "radius_km": "15", "sectors": ["N"], "types": ["job_dating"]},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/compte?preferences=1"

    page = client.get(response.headers["location"]).text
    assert "Vos préférences sont enregistrées." in page
    assert "Job dating transport à Montreuil" in page
    assert "Forum logistique à Lyon" not in page
    assert "Atelier santé à Montreuil" not in page
    assert "Autour de Montreuil" in page

    form = client.get("/compte/preferences").text
    assert 'value="Montreuil"' in form
    assert 'value="15"' in form
    assert re.search(r'value="N" checked', form)
    assert not re.search(r'value="J" checked', form)


def test_preferences_bad_input_is_shown_beside_the_field(client: TestClient) -> None:
    sign_up(client)
    cases = [
        ({"home_place": "Nullepartville-sur-Rien"}, "home_place"),
        ({"home_place": "Montreuil", "radius_km": "500"}, "radius_km"),
        ({"radius_km": "dix"}, "radius_km"),
        ({"sectors": ["Z"]}, "sectors"),
        ({"types": ["bal_masque"]}, "types"),
        ({"formats": ["papier"]}, "formats"),
    ]
    for data, field in cases:
        response = post_form(client, "/compte/preferences", data)
        assert response.status_code == 400, (data, response.text)
        assert f'id="{field}-error"' in response.text, data
    # Nothing was saved by the refused forms.
    assert 'value="Nullepartville' not in client.get("/compte/preferences").text


def test_registering_while_signed_in_prefills_and_links(
    client: TestClient, committed: Database
) -> None:
    with committed.transaction() as db:
        agency, _ = make_agency(db)
        event_id = make_event(db, agency, title="Job dating logistique").id
    sign_up(client)

    page = client.get(f"/evenements/{event_id}")
    assert page.status_code == 200
    assert f'value="{EMAIL}"' in page.text
    assert 'value="Camille"' in page.text

    response = post_form(
        client,
        f"/evenements/{event_id}/inscription",
        {"first_name": "Camille", "last_name": "Martin", "email": EMAIL, "consent": "oui"},
        page=f"/evenements/{event_id}",
    )
    assert response.status_code == 303, response.text
    manage_path = response.headers["location"].split("?")[0]

    mine = client.get("/compte").text
    assert "Job dating logistique" in mine
    assert "Confirmée" in mine
    assert f'href="{manage_path}"' in mine
    with committed.transaction() as db:
        registration = db.scalars(select(Registration)).one()
        seeker = db.scalars(select(Seeker)).one()
        assert registration.seeker_id == seeker.id


# --- Password reset ----------------------------------------------------------------------------


def _reset_link(database: Database, email: str = EMAIL) -> str:
    [message] = outbox(database, "password_reset")
    assert message.to_address == email
    assert message.subject == "Réinitialiser votre mot de passe"
    assert message.body_html is not None
    match = re.search(
        r"http://testserver(/compte/mot-de-passe/nouveau\?token=\S+)", message.body_text
    )
    assert match is not None, message.body_text
    assert match.group(1).replace("&", "&amp;") in message.body_html
    return match.group(1)


def test_password_reset_link_works_once(client: TestClient, committed: Database) -> None:
    sign_up(client)
    sign_out(client)
    response = post_form(client, "/compte/mot-de-passe/oubli", {"email": EMAIL.upper()})
    assert response.status_code == 303
    assert response.headers["location"] == "/compte/mot-de-passe/oubli?envoye=1"
    assert "Si un compte existe avec cette adresse" in client.get(response.headers["location"]).text
    link = _reset_link(committed)

    form = client.get(link)
    assert form.status_code == 200
    assert form.headers["cache-control"] == "no-store"
    assert 'autocomplete="new-password"' in form.text
    token = link.split("token=", 1)[1]
    short = post_form(
        client, "/compte/mot-de-passe/nouveau", {"token": token, "password": "court"}, page=link
    )
    assert short.status_code == 400
    assert 'id="password-error"' in short.text

    done = post_form(
        client,
        "/compte/mot-de-passe/nouveau",
        {"token": token, "password": "un tout nouveau mot de passe"},
        page=link,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/compte?motdepasse=1"
    assert is_signed_in(client)

    again = client.get(link)
    assert again.status_code == 400
    assert "n’est plus valable" in again.text
    reused = post_form(
        client,
        "/compte/mot-de-passe/nouveau",
        {"token": token, "password": "encore un autre mot de passe"},
        page="/compte/mot-de-passe/oubli",
    )
    assert reused.status_code == 400

    sign_out(client)
    assert sign_in(client).status_code == 401
    assert sign_in(client, password="un tout nouveau mot de passe").status_code == 303


def test_forged_reset_tokens_fail(
    client: TestClient, committed: Database, settings: Settings
) -> None:
    sign_up(client)
    with committed.transaction() as db:
        seeker_id = db.scalars(select(Seeker.id)).one()
    other_key = URLSafeTimedSerializer("not-our-secret", salt="password-reset")
    forged = [
        "abc",
        other_key.dumps({"id": seeker_id, "h": "0" * 16}),
        URLSafeTimedSerializer(settings.secret_key, salt="password-reset").dumps(
            {"id": seeker_id, "h": "0" * 16}
        ),
        URLSafeTimedSerializer(settings.secret_key, salt="other-use").dumps({"id": seeker_id}),
    ]
    for token in forged:
        response = client.get(f"/compte/mot-de-passe/nouveau?token={token}")
        assert response.status_code == 400, token
        assert "n’est plus valable" in response.text
    assert client.get("/compte/mot-de-passe/nouveau").status_code == 400


def test_forgot_password_says_the_same_for_unknown_addresses(
    client: TestClient, committed: Database
) -> None:
    response = post_form(client, "/compte/mot-de-passe/oubli", {"email": "personne@exemple.fr"})
    assert response.status_code == 303
    assert response.headers["location"] == "/compte/mot-de-passe/oubli?envoye=1"
    assert outbox(committed, "password_reset") == []

    bad = post_form(client, "/compte/mot-de-passe/oubli", {"email": "pas-une-adresse"})
    assert bad.status_code == 400
    assert 'id="email-error"' in bad.text


def test_password_reset_signs_out_other_sessions(client: TestClient, committed: Database) -> None:
    sign_up(client)
    stolen = client.cookies.get("session")
    assert stolen
    sign_out(client)
    post_form(client, "/compte/mot-de-passe/oubli", {"email": EMAIL})
    link = _reset_link(committed)
    token = link.split("token=", 1)[1]
    post_form(
        client,
        "/compte/mot-de-passe/nouveau",
        {"token": token, "password": "un tout nouveau mot de passe"},
        page=link,
    )
    client.cookies.clear()
    client.cookies.set("session", stolen)
    assert not is_signed_in(client)


# --- Domain rules ------------------------------------------------------------------------------


class _LongAgoSigner(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - accounts.RESET_MAX_AGE_SECONDS - 60


def test_reset_token_expires_after_an_hour(db: Session, settings: Settings) -> None:
    seeker = make_seeker(db)
    payload = {"id": seeker.id, "h": accounts.password_stamp(seeker)}
    old = URLSafeTimedSerializer(
        settings.secret_key, salt="password-reset", signer=_LongAgoSigner
    ).dumps(payload)
    with pytest.raises(InvalidInput) as refused:
        accounts.check_reset_token(db, token=old, settings=settings)
    assert refused.value.field == "token"
    fresh = accounts.reset_token(seeker, settings)
    assert accounts.check_reset_token(db, token=fresh, settings=settings) is seeker


def test_past_registrations_attach_only_once_the_mailbox_is_proven(
    db: Session, settings: Settings
) -> None:
    agency, _ = make_agency(db)
    event = make_event(db, agency)
    register(
        db,
        event_id=event.id,
        person=Person(first_name="Camille", last_name="Martin", email=EMAIL),
        notifier=Notifier(db, settings),
    )
    # Anyone can type this address at sign-up: that alone must not reveal the registration.
    seeker = make_seeker(db)
    accounts.authenticate(db, email=EMAIL, password=PASSWORD)
    assert accounts.my_registrations(db, seeker) == []

    accounts.reset_password(
        db,
        token=accounts.reset_token(seeker, settings),
        new_password="un tout nouveau mot de passe",
        settings=settings,
    )
    [registration] = accounts.my_registrations(db, seeker)
    assert registration.event.id == event.id
    assert registration.event.agency.name == agency.name


def test_sign_in_rehashes_outdated_hashes(db: Session) -> None:
    seeker = make_seeker(db)
    seeker.password_hash = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    db.flush()
    old_hash = seeker.password_hash
    assert accounts.authenticate(db, email=EMAIL, password=PASSWORD) is seeker
    assert seeker.password_hash != old_hash
    assert not PasswordHasher().check_needs_rehash(seeker.password_hash)
    with pytest.raises(Unauthorized) as refused:
        accounts.authenticate(db, email=EMAIL, password="pas le bon mot de passe")
    assert refused.value.message == GENERIC_SIGN_IN_ERROR


def test_unknown_addresses_cost_the_same_password_check(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_seeker(db)
    verified: list[str] = []
    real_verify = PasswordHasher.verify

    def counting_verify(self: PasswordHasher, hashed: str, password: str | bytes) -> bool:
        verified.append(hashed)
        return real_verify(self, hashed, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting_verify)
    for email, password in [
        ("personne@exemple.fr", PASSWORD),
        (EMAIL, "pas le bon mot de passe"),
        (EMAIL, PASSWORD + "x" * passwords.MAX_PASSWORD_LENGTH),
    ]:
        with pytest.raises(Unauthorized):
            accounts.authenticate(db, email=email, password=password)
    assert len(verified) == 3
    assert all(h.startswith("$argon2id$") for h in verified)


def test_events_for_me_without_preferences_lists_upcoming_events(
    db: Session,
) -> None:
    agency, _ = make_agency(db)
    kept = make_event(db, agency, title="Salon de l'emploi")
    seeker = make_seeker(db)
    result = accounts.events_for_me(db, seeker)
    assert [hit.event.id for hit in result.hits] == [kept.id]


def test_a_sign_up_losing_the_race_for_an_address_is_a_conflict(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_seeker(db)
    # As if the other sign-up committed between our check and our insert.
    monkeypatch.setattr(accounts, "_seeker_by_email", lambda _db, _email: None)
    with pytest.raises(Conflict):
        make_seeker(db)
    # The savepoint rolled back alone: the transaction goes on.
    assert db.scalars(select(Seeker.first_name)).all() == ["Camille"]
