"""The only network code of the importers: read a feed from a URL or a file, safely.

A fetch has connect and read timeouts, a size cap, a bounded number of redirects, sends
conditional headers (ETag, Last-Modified), and refuses http(s) targets in private, loopback and
link-local ranges unless the operator allows them (server-side request forgery).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

MAX_BYTES = 200 * 1024 * 1024
MAX_REDIRECTS = 5
TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=5.0)
USER_AGENT = "evenements-emploi-importer/1.0"


class FetchError(Exception):
    """The source could not be read; the message is French and says why."""


@dataclass(frozen=True)
class Fetched:
    content: bytes | None  # None when the server answered 304 Not Modified
    etag: str | None = None
    last_modified: str | None = None
    outcome: str = ""


def is_url(source: str) -> bool:
    return urlsplit(source).scheme in ("http", "https")


def _check_host(host: str, port: int, allow_private: bool) -> None:
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError(f"Nom d'hôte introuvable : {host}.") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_reserved
            or address.is_multicast
            or address.is_unspecified
        ):
            raise FetchError(
                f"Adresse refusée ({address}) : les réseaux privés ou locaux ne sont pas "
                "autorisés pour les flux."
            )


def fetch_url(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    allow_private: bool = False,
    max_bytes: int = MAX_BYTES,
    timeout: httpx.Timeout = TIMEOUT,
) -> Fetched:
    """GET a feed. Raises FetchError with a French reason on any failure."""
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    current = url
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(current)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise FetchError(f"Adresse non prise en charge : {current[:200]} (http ou https).")
            _check_host(
                parts.hostname,
                parts.port or (443 if parts.scheme == "https" else 80),
                allow_private,
            )
            try:
                with client.stream("GET", current, headers=headers) as response:
                    if response.is_redirect:
                        location = response.headers.get("location")
                        if not location:
                            raise FetchError("Redirection sans destination.")
                        current = urljoin(current, location)
                        continue
                    if response.status_code == 304:
                        return Fetched(None, etag, last_modified, "304 non modifié")
                    if response.status_code != 200:
                        raise FetchError(f"Le serveur a répondu {response.status_code}.")
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > max_bytes:
                        raise FetchError(
                            f"Flux trop volumineux (plus de {max_bytes // 1_000_000} Mo)."
                        )
                    chunks: list[bytes] = []
                    size = 0
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > max_bytes:
                            raise FetchError(
                                f"Flux trop volumineux (plus de {max_bytes // 1_000_000} Mo)."
                            )
                        chunks.append(chunk)
                    return Fetched(
                        b"".join(chunks),
                        response.headers.get("etag"),
                        response.headers.get("last-modified"),
                        f"{response.status_code}, {size} octets",
                    )
            except httpx.TimeoutException as exc:
                raise FetchError("Délai dépassé en lisant le flux.") from exc
            except httpx.HTTPError as exc:
                raise FetchError(f"Flux illisible : {type(exc).__name__}.") from exc
    raise FetchError(f"Trop de redirections (plus de {MAX_REDIRECTS}).")


def read_file(path: str, *, max_bytes: int = MAX_BYTES) -> Fetched:
    file = Path(path)
    try:
        size = file.stat().st_size
        if size > max_bytes:
            raise FetchError(f"Fichier trop volumineux (plus de {max_bytes // 1_000_000} Mo).")
        return Fetched(file.read_bytes(), outcome=f"fichier, {size} octets")
    except OSError as exc:
        raise FetchError(f"Fichier illisible : {path} ({exc.strerror or exc}).") from exc


def fetch_source(
    source: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    allow_private: bool = False,
) -> Fetched:
    if is_url(source):
        return fetch_url(
            source, etag=etag, last_modified=last_modified, allow_private=allow_private
        )
    if "://" in source:
        raise FetchError(f"Adresse non prise en charge : {source[:200]} (http ou https).")
    return read_file(source)
