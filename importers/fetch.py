"""The only network code of the importers: read a feed from a URL or a file, safely.

A fetch has connect and read timeouts, a size cap, a bounded number of redirects, sends
conditional headers (ETag, Last-Modified), and refuses http(s) targets in private, loopback and
link-local ranges unless the operator allows them (server-side request forgery).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

MAX_BYTES = 200 * 1024 * 1024
MAX_REDIRECTS = 5
TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=5.0)
# The read timeout bounds each wait for bytes; this bounds the whole download, so that a server
# sending a byte now and then cannot hold the importer (and the scheduler's job) forever.
DEADLINE = 300.0
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
        # is_global also excludes the shared address space (100.64.0.0/10, where some clouds
        # put their metadata service) and the other special-purpose ranges.
        if not address.is_global or address.is_multicast:
            raise FetchError(
                f"Adresse refusée ({address}) : les réseaux privés ou locaux ne sont pas "
                "autorisés pour les flux."
            )


def _size(limit: int) -> str:
    if limit >= 1_000_000:
        return f"{limit // 1_000_000} Mo"
    if limit >= 1000:
        return f"{limit // 1000} ko"
    return f"{limit} octets"


def fetch_url(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    allow_private: bool = False,
    max_bytes: int = MAX_BYTES,
    timeout: httpx.Timeout | float = TIMEOUT,
    deadline: float = DEADLINE,
) -> Fetched:
    """GET a feed. Raises FetchError with a French reason on any failure."""
    give_up = time.monotonic() + deadline
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
            try:
                port = parts.port or (443 if parts.scheme == "https" else 80)
            except ValueError as exc:  # a port out of range
                raise FetchError(f"Adresse invalide : {current[:200]}.") from exc
            _check_host(parts.hostname, port, allow_private)
            try:
                with client.stream("GET", current, headers=headers) as response:
                    # Before the redirects: httpx's is_redirect is true for every 3xx, 304 too.
                    if response.status_code == 304:
                        return Fetched(None, etag, last_modified, "304 non modifié")
                    if response.status_code in (301, 302, 303, 307, 308):
                        location = response.headers.get("location")
                        if not location:
                            raise FetchError("Redirection sans destination.")
                        current = urljoin(current, location)
                        continue
                    if response.status_code != 200:
                        raise FetchError(f"Le serveur a répondu {response.status_code}.")
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > max_bytes:
                        raise FetchError(f"Flux trop volumineux (plus de {_size(max_bytes)}).")
                    chunks: list[bytes] = []
                    size = 0
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > max_bytes:
                            raise FetchError(f"Flux trop volumineux (plus de {_size(max_bytes)}).")
                        if time.monotonic() > give_up:
                            raise FetchError(
                                f"Délai dépassé en lisant le flux (plus de {deadline:g} s)."
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
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise FetchError(f"Flux illisible : {type(exc).__name__}.") from exc
    raise FetchError(f"Trop de redirections (plus de {MAX_REDIRECTS}).")


_OS_ERRORS = {
    errno.ENOENT: "fichier introuvable",
    errno.EACCES: "accès refusé",
    errno.EPERM: "accès refusé",
    errno.EISDIR: "c'est un dossier",
    errno.ENOTDIR: "chemin invalide",
}


def read_file(path: str, *, max_bytes: int = MAX_BYTES) -> Fetched:
    file = Path(path)
    try:
        size = file.stat().st_size
        if size > max_bytes:
            raise FetchError(f"Fichier trop volumineux (plus de {_size(max_bytes)}).")
        return Fetched(file.read_bytes(), outcome=f"fichier, {size} octets")
    except OSError as exc:
        reason = _OS_ERRORS.get(exc.errno or 0) or exc.strerror or str(exc)
        # The file's name only: run errors are shown to agency staff, server paths are not.
        raise FetchError(f"Fichier illisible : {file.name} ({reason}).") from exc


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
