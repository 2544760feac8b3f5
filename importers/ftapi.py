"""The France Travail partner API ("ft-api"): Mes événements emploi, read page by page.

How its public clients (France Travail's own pass-emploi-api among them) call it:
- an OAuth2 client-credentials token, as a form POST to the token URL (realm /partenaire) with
  both scopes `api_evenementsv1` and `evenements` (the gateway answers 403 without them);
- `POST {base}/evenements/v1/mee/evenements?page=N&size=M`, pages counted from 0, a JSON
  criteria body (`{}` for every event), `Authorization: Bearer …`; the answer is the MEE shape
  that `importers.ftjson` reads, `{"totalElements": N, "content": [...]}`.

This module does the network part only, under the rules of `importers.fetch` (private
addresses refused unless allowed, size cap, timeouts). The pages are put together into one
MEE document that the ft-json parser reads, so the content is mapped in one place. When not
every page could be read, the document still announces the API's total: the parser then
reports it as incomplete, and the import does not cancel the events it did not see.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final

import orjson

from events_app.settings import Settings
from importers.fetch import TIMEOUT, Answer, Fetched, FetchError, PinnedClient, send

DEFAULT_BASE_URL: Final = "https://api.francetravail.io/partenaire"
DEFAULT_TOKEN_URL: Final = (
    "https://entreprise.francetravail.fr/connexion/oauth2/access_token?realm=/partenaire"  # noqa: S105
)
SCOPE: Final = "api_evenementsv1 evenements"
EVENTS_PATH: Final = "/evenements/v1/mee/evenements"
MAX_PAGE_SIZE: Final = 100
# 100,000 events at 100 a page: beyond, the API is looping or lying about its total.
MAX_PAGES: Final = 1000
# A Retry-After is obeyed up to this many seconds, this many times per page.
MAX_RETRY_AFTER: Final = 30.0
MAX_RETRIES: Final = 3
# A token is renewed this long before the API would refuse it.
TOKEN_MARGIN: Final = 30.0
PAGE_MAX_BYTES: Final = 20 * 1024 * 1024


@dataclass(frozen=True)
class Credentials:
    client_id: str | None
    client_secret: str | None
    token_url: str = DEFAULT_TOKEN_URL


@dataclass
class Stats:
    """What staff see of a run: how many pages, events and seconds it took."""

    tokens: int = 0
    pages: int = 0
    events: int = 0
    total: int = 0
    waits: int = 0
    waited: float = 0.0
    token_seconds: float = 0.0
    page_seconds: float = 0.0
    complete: bool = False

    def outcome(self) -> str:
        text = (
            f"API France Travail : {self.pages} page{'s' if self.pages > 1 else ''}, "
            f"{self.events} événement{'s' if self.events > 1 else ''} sur {self.total} ; "
            f"jeton {self.token_seconds:.1f} s, pages {self.page_seconds:.1f} s"
        )
        if self.waits:
            text += f" ; {self.waits} attente{'s' if self.waits > 1 else ''} ({self.waited:g} s)"
        if not self.complete:
            text += " ; lecture incomplète"
        return text


@dataclass
class _Token:
    value: str
    expires_at: float


@dataclass
class FtApiClient:
    """One run's conversation with the API: one token, reused until it expires."""

    base_url: str
    credentials: Credentials
    allow_private: bool = False
    page_size: int = MAX_PAGE_SIZE
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    stats: Stats = field(default_factory=Stats)
    _token: _Token | None = None
    _http: PinnedClient | None = None

    def fetch(self) -> Fetched:
        """Every page, as one MEE document. Raises FetchError (French) when the run must fail."""
        if not self.credentials.client_id or not self.credentials.client_secret:
            raise FetchError(
                "Identifiants manquants : renseignez FT_CLIENT_ID et FT_CLIENT_SECRET pour "
                "lire l'API France Travail."
            )
        size = max(1, min(self.page_size, MAX_PAGE_SIZE))
        content: list[Any] = []
        with PinnedClient(timeout=TIMEOUT) as http:
            self._http = http
            try:
                total: int | None = None
                for number in range(MAX_PAGES):
                    items, page_total = self._page(number, size)
                    if total is None:
                        total = page_total
                    content.extend(items)
                    if len(content) >= total:
                        self.stats.complete = True
                        break
                    if not items:  # the API ran dry before its total: an incomplete read
                        break
            finally:
                self._http = None
        self.stats.total = total or 0
        self.stats.events = len(content)
        document = orjson.dumps({"totalElements": total or 0, "content": content})
        return Fetched(document, outcome=self.stats.outcome()[:300])

    # --- token -----------------------------------------------------------------------------

    def token(self) -> str:
        if self._token is None or self.clock() >= self._token.expires_at:
            self._token = self._new_token()
        return self._token.value

    def _new_token(self) -> _Token:
        started = self.clock()
        answer = self._send(
            "POST",
            self.credentials.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": self.credentials.client_id or "",
                "client_secret": self.credentials.client_secret or "",
                "scope": SCOPE,
            },
        )
        self.stats.tokens += 1
        self.stats.token_seconds += self.clock() - started
        if answer.status != 200:
            raise FetchError(
                f"Jeton refusé par France Travail ({answer.status}) : vérifiez FT_CLIENT_ID, "
                "FT_CLIENT_SECRET et les habilitations api_evenementsv1 et evenements."
            )
        data = _json(answer.body)
        value = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(value, str) or not value:
            raise FetchError("Réponse du serveur de jetons France Travail illisible.")
        expires_in = data.get("expires_in", 0) if isinstance(data, dict) else 0
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 0.0
        return _Token(value, self.clock() + max(lifetime - TOKEN_MARGIN, 0.0))

    # --- pages -----------------------------------------------------------------------------

    def _page(self, number: int, size: int) -> tuple[list[Any], int]:
        url = f"{self.base_url.rstrip('/')}{EVENTS_PATH}?page={number}&size={size}"
        refreshed = waits = 0
        while True:
            started = self.clock()
            answer = self._send(
                "POST",
                url,
                headers={"Authorization": f"Bearer {self.token()}"},
                json_body={},
            )
            self.stats.page_seconds += self.clock() - started
            if answer.status == 401 and not refreshed:
                # Expired early or revoked: one new token, then the same page again.
                self._token = None
                refreshed = 1
                continue
            if answer.status in (429, 503) and waits < MAX_RETRIES:
                delay = retry_after(answer.headers.get("retry-after"))
                waits += 1
                self.stats.waits += 1
                self.stats.waited += delay
                self.sleep(delay)
                continue
            break
        if answer.status == 401:
            raise FetchError("Jeton refusé par l'API France Travail (401) après renouvellement.")
        if answer.status == 403:
            raise FetchError(
                "Accès refusé par l'API France Travail (403) : l'application doit être "
                "habilitée aux scopes api_evenementsv1 et evenements."
            )
        if answer.status in (429, 503):
            raise FetchError(
                f"L'API France Travail reste indisponible ({answer.status}) après "
                f"{MAX_RETRIES} attentes, page {number}."
            )
        if answer.status not in (200, 206):
            raise FetchError(f"L'API France Travail a répondu {answer.status} à la page {number}.")
        data = _json(answer.body)
        content = data.get("content") if isinstance(data, dict) else None
        total = data.get("totalElements") if isinstance(data, dict) else None
        if (
            not isinstance(content, list)
            or not isinstance(total, int)
            or isinstance(total, bool)
            or total < 0
        ):
            raise FetchError(
                f"Page {number} de l'API France Travail illisible : « content » et "
                "« totalElements » attendus."
            )
        self.stats.pages += 1
        return content, total

    def _send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        json_body: object = None,
    ) -> Answer:
        assert self._http is not None  # noqa: S101 - set by fetch() around every call
        return send(
            self._http,
            method,
            url,
            headers=headers,
            data=data,
            json_body=json_body,
            allow_private=self.allow_private,
            max_bytes=PAGE_MAX_BYTES,
        )


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def retry_after(value: str | None) -> float:
    """Seconds to wait for a Retry-After (seconds or an HTTP date), within [0, MAX_RETRY_AFTER];
    1 s when absent or unreadable."""
    if value is None:
        return 1.0
    text = value.strip()
    seconds: float
    if text.isdigit():
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return 1.0
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def fetch_ft_api(base_url: str, settings: Settings) -> Fetched:
    credentials = Credentials(
        settings.ft_client_id, settings.ft_client_secret, settings.ft_token_url
    )
    return FtApiClient(base_url, credentials, allow_private=settings.feed_allow_private).fetch()
