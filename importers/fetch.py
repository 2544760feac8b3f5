"""The only network code of the importers: read a feed from a URL or a file, safely.

A fetch has connect and read timeouts, a size cap, a bounded number of redirects, sends
conditional headers (ETag, Last-Modified), and refuses http(s) targets in private, loopback and
link-local ranges unless the operator allows them (server-side request forgery).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore
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


# IPv6 forms that carry an IPv4 address: what they reach is decided by that IPv4 address, which
# Python's is_global does not look at (64:ff9b::7f00:1 is "global" yet NAT64 turns it into
# 127.0.0.1).
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: local-use translation
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64 or address in IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    # is_global also excludes the shared address space (100.64.0.0/10, where some clouds
    # put their metadata service) and the other special-purpose ranges.
    if not address.is_global or address.is_multicast:
        return True
    if isinstance(address, ipaddress.IPv6Address):
        if address in NAT64_LOCAL:
            return True
        embedded = _embedded_ipv4(address)
        if embedded is not None and (not embedded.is_global or embedded.is_multicast):
            return True
    return False


def _resolve(host: str, port: int) -> list[str]:
    """The addresses of host, in the resolver's order (a literal address is its own answer)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"Nom d'hôte introuvable : {host}.") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _vetted_address(host: str, port: int, allow_private: bool) -> str:
    """Resolve host once and return the address to connect to.

    The connection goes to this very address (see _PinnedBackend): resolving again to connect
    would let a DNS server answer a public address to the check and a private one to the
    connection (DNS rebinding). Every address of the name must pass, not only the one used.
    """
    addresses = _resolve(host, port)
    if not allow_private:
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if _refused(address):
                raise FetchError(
                    f"Adresse refusée ({address}) : les réseaux privés ou locaux ne sont pas "
                    "autorisés pour les flux."
                )
    if not addresses:
        raise FetchError(f"Nom d'hôte introuvable : {host}.")
    return addresses[0]


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every wait is cut at the fetch's overall deadline.

    httpx's timeouts bound each wait for bytes, so a server trickling its status line and
    headers one byte at a time would never time out; this bounds connect, TLS, headers and body.
    """

    def __init__(self, stream: httpcore.NetworkStream, give_up: float) -> None:
        self._stream = stream
        self._give_up = give_up

    def _budget(self, timeout: float | None, error: type[Exception]) -> float:
        left = self._give_up - time.monotonic()
        if left <= 0:
            raise error("fetch deadline reached")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._budget(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._budget(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        # server_hostname is the URL's host name: SNI and the certificate check stay on it.
        stream = self._stream.start_tls(
            ssl_context, server_hostname, self._budget(timeout, httpcore.ConnectTimeout)
        )
        return _DeadlineStream(stream, self._give_up)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects a host name only to the address vetted for it, never resolving it again."""

    def __init__(self, give_up: float) -> None:
        self._inner = httpcore.SyncBackend()
        self._give_up = give_up
        self.pins: dict[str, str] = {}

    def restart(self, deadline: float) -> None:
        """A new exchange, with its own overall deadline (API clients make several)."""
        self._give_up = time.monotonic() + deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        address = self.pins.get(host.lower().strip("[]"))
        if address is None:  # a name nobody vetted: refuse rather than resolve it
            raise httpcore.ConnectError(f"unvetted host {host!r}")
        left = self._give_up - time.monotonic()
        if left <= 0:
            raise httpcore.ConnectTimeout("fetch deadline reached")
        stream = self._inner.connect_tcp(
            address,
            port,
            left if timeout is None else min(timeout, left),
            local_address,
            socket_options,
        )
        return _DeadlineStream(stream, self._give_up)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not used by feeds")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _PinnedTransport(httpx.HTTPTransport):
    """httpx's transport over a pool that connects through _PinnedBackend.

    httpx does not take a network backend itself; its transport keeps everything else (TLS
    context, exception mapping), only the pool underneath is ours.
    """

    def __init__(self, backend: _PinnedBackend, verify: ssl.SSLContext | bool) -> None:
        super().__init__(verify=verify, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            network_backend=backend,
        )


def _size(limit: int) -> str:
    if limit >= 1_000_000:
        return f"{limit // 1_000_000} Mo"
    if limit >= 1000:
        return f"{limit // 1000} ko"
    return f"{limit} octets"


def _bounded_body(response: httpx.Response, max_bytes: int, too_big: str) -> bytes:
    """The body, refused as soon as it is known to pass max_bytes: by its declared length,
    or while it streams in."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"{too_big} (plus de {_size(max_bytes)}).")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(f"{too_big} (plus de {_size(max_bytes)}).")
        chunks.append(chunk)
    return b"".join(chunks)


def fetch_url(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    allow_private: bool = False,
    max_bytes: int = MAX_BYTES,
    timeout: httpx.Timeout | float = TIMEOUT,
    deadline: float = DEADLINE,
    verify: ssl.SSLContext | bool = True,
) -> Fetched:
    """GET a feed. Raises FetchError with a French reason on any failure.

    deadline bounds the whole exchange, redirects included; verify is for tests (a private CA).
    """
    give_up = time.monotonic() + deadline
    backend = _PinnedBackend(give_up)
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    current = url
    with httpx.Client(
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        transport=_PinnedTransport(backend, verify),
    ) as client:
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(current)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise FetchError(f"Adresse non prise en charge : {current[:200]} (http ou https).")
            try:
                port = parts.port or (443 if parts.scheme == "https" else 80)
            except ValueError as exc:  # a port out of range
                raise FetchError(f"Adresse invalide : {current[:200]}.") from exc
            try:
                # The ASCII (IDNA) form: the one httpx connects to and the resolver knows.
                host = httpx.URL(current).raw_host.decode("ascii").lower().strip("[]")
            except (httpx.InvalidURL, UnicodeError) as exc:
                raise FetchError(f"Adresse invalide : {current[:200]}.") from exc
            backend.pins[host] = _vetted_address(host, port, allow_private)
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
                    body = _bounded_body(response, max_bytes, "Flux trop volumineux")
                    return Fetched(
                        body,
                        response.headers.get("etag"),
                        response.headers.get("last-modified"),
                        f"{response.status_code}, {len(body)} octets",
                    )
            except httpx.TimeoutException as exc:
                if time.monotonic() >= give_up:
                    raise FetchError(
                        f"Délai dépassé en lisant le flux (plus de {deadline:g} s)."
                    ) from exc
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


class PinnedClient:
    """An httpx client for API calls under the feed rules: each request's host is vetted and
    pinned (see _PinnedBackend), and each exchange has its own overall deadline."""

    def __init__(
        self,
        *,
        timeout: httpx.Timeout | float = TIMEOUT,
        deadline: float = DEADLINE,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.deadline = deadline
        self.backend = _PinnedBackend(time.monotonic() + deadline)
        self.http = httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            transport=_PinnedTransport(self.backend, verify),
        )

    def __enter__(self) -> PinnedClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()


@dataclass(frozen=True)
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes


def send(
    client: PinnedClient,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    data: dict[str, str] | None = None,
    json_body: object = None,
    allow_private: bool = False,
    max_bytes: int = MAX_BYTES,
) -> Answer:
    """One request to an API under the same rules as a feed (private addresses refused unless
    allowed, size cap), without following redirects. Any status comes back: the caller decides.
    Raises FetchError with a French reason when nothing could be read."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"Adresse non prise en charge : {url[:200]} (http ou https).")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise FetchError(f"Adresse invalide : {url[:200]}.") from exc
    try:
        host = httpx.URL(url).raw_host.decode("ascii").lower().strip("[]")
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise FetchError(f"Adresse invalide : {url[:200]}.") from exc
    client.backend.pins[host] = _vetted_address(host, port, allow_private)
    client.backend.restart(client.deadline)
    all_headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
    try:
        with client.http.stream(
            method, url, headers=all_headers, data=data, json=json_body
        ) as response:
            body = _bounded_body(response, max_bytes, "Réponse trop volumineuse")
            return Answer(response.status_code, response.headers, body)
    except httpx.TimeoutException as exc:
        raise FetchError(f"Délai dépassé en appelant {parts.hostname}.") from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise FetchError(f"Serveur injoignable : {parts.hostname} ({type(exc).__name__}).") from exc
