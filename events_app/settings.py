"""Settings, read once from the environment. Nothing else in the project reads os.environ."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from starlette.config import Config

DEFAULT_SECRET_KEY = "dev-insecure-secret-key-change-me"  # noqa: S105 - refused in production


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///events.db"
    secret_key: str = DEFAULT_SECRET_KEY
    base_url: str = "http://127.0.0.1:8000"
    environment: str = "development"
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "Événements emploi <no-reply@evenements-emploi.example>"
    geocoder: str = "offline"
    feed_allow_private: bool = False
    retention_days: int = 183
    log_level: str = "INFO"
    # limits' notation: "N/second|minute|hour", per client address.
    rate_limit_registration: str = "300/minute"
    rate_limit_signin: str = "10/minute"
    # SQLite: how long a write waits for another writer's lock before the request gets a 503.
    db_busy_timeout_ms: int = 30_000
    # Shared state for several workers and machines: rate limits and sessions (unset: rate
    # limits per worker in memory, sessions in the database).
    redis_url: str | None = None
    # Proxies whose X-Forwarded-For is believed (comma-separated addresses or networks, "*"
    # for any); empty: none, the client is the peer of the connection.
    forwarded_allow_ips: str = ""
    # The France Travail partner API (feed format ft-api).
    ft_client_id: str | None = None
    ft_client_secret: str | None = None
    ft_token_url: str = (
        "https://entreprise.francetravail.fr/connexion/oauth2/access_token?realm=/partenaire"  # noqa: S105 - a URL
    )
    # Without SMTP_HOST, delivered mails are also written here as .eml files (development).
    mail_dir: Path | None = None
    # The map of the results page: a tile server's URL template (Leaflet's {z}/{x}/{y}, and
    # {s} for subdomains) and the attribution its licence requires (HTML). Empty: no map.
    map_tiles_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    map_tiles_attribution: str = (
        '&copy; <a href="https://www.openstreetmap.org/copyright">'
        "les contributeurs d'OpenStreetMap</a>"
    )

    @property
    def host(self) -> str:
        """The host name used in iCalendar UIDs and absolute links."""
        from urllib.parse import urlsplit

        return urlsplit(self.base_url).hostname or "localhost"

    @property
    def map_tiles_origin(self) -> str | None:
        """The origin the map's tiles come from (what the page's CSP allows), or None without
        a map or for a URL that is not http(s). "{s}" subdomains become a wildcard."""
        import re

        # Scheme, host and port only: nothing that could add to the CSP header it goes into.
        found = re.match(
            r"(https?://(?:\*\.)?[A-Za-z0-9.-]*[A-Za-z0-9](?::\d{1,5})?)(?:/|$)",
            self.map_tiles_url.replace("{s}.", "*."),
        )
        return found.group(1).lower() if found else None

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def is_production(self) -> bool:
        return self.environment == "production"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from the environment (or from the mapping given, for tests)."""
    config = Config(environ=dict(os.environ if environ is None else environ))
    default_db = "sqlite:///" + str(Path.cwd() / "events.db")
    return Settings(
        database_url=config("DATABASE_URL", default=default_db),
        secret_key=config("SECRET_KEY", default=DEFAULT_SECRET_KEY),
        base_url=config("BASE_URL", default="http://127.0.0.1:8000").rstrip("/"),
        environment=config("APP_ENV", default="development"),
        smtp_host=config("SMTP_HOST", default=None),
        smtp_port=config("SMTP_PORT", cast=int, default=25),
        smtp_user=config("SMTP_USER", default=None),
        smtp_password=config("SMTP_PASSWORD", default=None),
        smtp_starttls=config("SMTP_STARTTLS", cast=bool, default=False),
        mail_from=config(
            "MAIL_FROM", default="Événements emploi <no-reply@evenements-emploi.example>"
        ),
        geocoder=config("GEOCODER", default="offline"),
        feed_allow_private=config("FEED_ALLOW_PRIVATE", cast=bool, default=False),
        retention_days=config("RETENTION_DAYS", cast=int, default=183),
        log_level=config("LOG_LEVEL", default="INFO"),
        rate_limit_registration=config("RATE_LIMIT_REGISTRATION", default="300/minute"),
        rate_limit_signin=config("RATE_LIMIT_SIGNIN", default="10/minute"),
        db_busy_timeout_ms=config("DB_BUSY_TIMEOUT_MS", cast=int, default=30_000),
        redis_url=config("REDIS_URL", default=None) or None,
        forwarded_allow_ips=config("FORWARDED_ALLOW_IPS", default=""),
        ft_client_id=config("FT_CLIENT_ID", default=None),
        ft_client_secret=config("FT_CLIENT_SECRET", default=None),
        ft_token_url=config("FT_TOKEN_URL", default=Settings.ft_token_url),
        mail_dir=Path(config("MAIL_DIR", default=str(Path.cwd() / "mails"))).resolve(),
        map_tiles_url=config("MAP_TILES_URL", default=Settings.map_tiles_url).strip(),
        map_tiles_attribution=config(
            "MAP_TILES_ATTRIBUTION", default=Settings.map_tiles_attribution
        ),
    )


def debug_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """EVENTS_APP_DEBUG=1: the command line shows the traceback of an unexpected error.

    Read on its own, because it must work when the other settings cannot be read."""
    value = (os.environ if environ is None else environ).get("EVENTS_APP_DEBUG", "")
    return value.strip().lower() not in ("", "0", "false", "no", "non")
