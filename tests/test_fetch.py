"""The fetcher against a real HTTP server on 127.0.0.1, and the import runs built on it."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from sqlalchemy import select

import importers.fetch
from events_app.db import Database
from events_app.feeds import add_feed
from events_app.models import Event, Feed, ImportRun
from events_app.settings import Settings
from importers import PARSERS
from importers.base import ImportedEvent, RowError
from importers.fetch import FetchError, fetch_source, fetch_url
from importers.run import run_import
from tests.factories import make_agency

ETAG = '"feed-v1"'
LAST_MODIFIED = "Tue, 10 Dec 2030 08:00:00 GMT"
FEED = json.dumps(
    {
        "totalElements": 2,
        "content": [
            {
                "id": n,
                "titre": f"Job dating n° {n}",
                "dateEvenement": "2030-12-10T08:30:00.000+00:00",
                "heureDebut": "08:30:00",
                "heureFin": "11:30:00",
                "type": "Job dating",
                "modalites": "en physique",
                "ville": "Lyon",
                "codePostal": "69003",
                "latitude": 45.76,
                "longitude": 4.85,
                "codesRome": ["J"],
                "nombrePlaceTotalPresentiel": 20,
            }
            for n in (1, 2)
        ],
    }
).encode()


class FeedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FeedHandler)
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.stop = threading.Event()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def seen(self, path: str) -> list[dict[str, str]]:
        return [headers for seen_path, headers in self.requests if seen_path == path]


class FeedHandler(BaseHTTPRequestHandler):
    server: FeedServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        if "Content_Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        port = self.server.server_address[1]
        if self.path == "/feed.json":
            if self.headers.get("If-None-Match") == ETAG:
                self.send(304, ETag=ETAG)
            else:
                self.send(200, FEED, ETag=ETAG, Last_Modified=LAST_MODIFIED)
        elif self.path == "/modified-since.json":
            if self.headers.get("If-Modified-Since") == LAST_MODIFIED:
                self.send(304)
            else:
                self.send(200, FEED, Last_Modified=LAST_MODIFIED)
        elif self.path == "/error":
            self.send(500, b"Internal Server Error")
        elif self.path == "/slow":
            self.server.stop.wait(5)
            self.send(200, FEED)
        elif self.path == "/trickle":
            # Each byte comes within the read timeout; the whole never ends.
            self.send_response(200)
            self.end_headers()
            while not self.server.stop.wait(0.05):
                try:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                except OSError:
                    return
        elif self.path == "/big-declared":
            self.send(200, b"x" * 5000)
        elif self.path == "/big-undeclared":
            # HTTP/1.0 without Content-Length: the body ends when the connection closes.
            self.send_response(200)
            self.end_headers()
            for _ in range(50):
                self.wfile.write(b"x" * 1000)
        elif self.path == "/loop":
            self.send(302, Location="/loop")
        elif self.path == "/to-ftp":
            self.send(302, Location="ftp://example.org/feed.json")
        elif self.path == "/to-file":
            self.send(301, Location="file:///etc/passwd")
        elif self.path == "/moved":
            self.send(301, Location="/feed.json")
        elif self.path == "/to-localhost":
            self.send(302, Location=f"http://localhost:{port}/feed.json")
        elif self.path == "/to-rebind":
            self.send(302, Location=f"http://rebind.test:{port}/feed.json")
        elif self.path == "/trickle-headers":
            # The status line, then one header byte now and then: each within the read
            # timeout, the headers never done (for 5 s at most, then the connection closes).
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            for _ in range(100):
                if self.server.stop.wait(0.05):
                    break
                try:
                    self.wfile.write(b"a")
                    self.wfile.flush()
                except OSError:
                    return
            self.close_connection = True
        else:
            self.send(404, b"not found")


@pytest.fixture(scope="module")
def server() -> Iterator[FeedServer]:
    httpd = FeedServer()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# --- fetch_url ---------------------------------------------------------------------------------


def test_a_feed_is_read_with_its_validators(server: FeedServer) -> None:
    fetched = fetch_url(f"{server.base}/feed.json", allow_private=True)

    assert fetched.content == FEED
    assert (fetched.etag, fetched.last_modified) == (ETAG, LAST_MODIFIED)
    assert fetched.outcome.startswith("200")


def test_a_matching_etag_gets_304_and_no_body(server: FeedServer) -> None:
    fetched = fetch_url(f"{server.base}/feed.json", etag=ETAG, allow_private=True)

    assert fetched.content is None
    assert fetched.etag == ETAG
    assert server.seen("/feed.json")[-1]["if-none-match"] == ETAG


def test_last_modified_is_sent_back_as_if_modified_since(server: FeedServer) -> None:
    url = f"{server.base}/modified-since.json"
    first = fetch_url(url, allow_private=True)
    assert first.content == FEED and first.last_modified == LAST_MODIFIED

    second = fetch_url(url, last_modified=first.last_modified, allow_private=True)

    assert second.content is None
    assert server.seen("/modified-since.json")[-1]["if-modified-since"] == LAST_MODIFIED


def test_a_server_error_is_a_fetch_error(server: FeedServer) -> None:
    with pytest.raises(FetchError, match="500"):
        fetch_url(f"{server.base}/error", allow_private=True)


def test_a_slow_server_times_out(server: FeedServer) -> None:
    with pytest.raises(FetchError, match="Délai dépassé"):
        fetch_url(f"{server.base}/slow", allow_private=True, timeout=0.2)


def test_a_server_that_never_finishes_hits_the_deadline(server: FeedServer) -> None:
    with pytest.raises(FetchError, match="Délai dépassé"):
        fetch_url(f"{server.base}/trickle", allow_private=True, timeout=2.0, deadline=0.5)


def test_a_server_trickling_its_headers_hits_the_deadline(server: FeedServer) -> None:
    # The deadline covers the whole exchange, not only the body.
    with pytest.raises(FetchError, match=r"Délai dépassé .*plus de 0\.5 s"):
        fetch_url(f"{server.base}/trickle-headers", allow_private=True, timeout=2.0, deadline=0.5)


@pytest.mark.parametrize("path", ["/big-declared", "/big-undeclared"])
def test_an_oversized_body_is_refused(server: FeedServer, path: str) -> None:
    with pytest.raises(FetchError, match=r"trop volumineux \(plus de 1 ko\)"):
        fetch_url(f"{server.base}{path}", allow_private=True, max_bytes=1000)


def test_a_redirect_is_followed(server: FeedServer) -> None:
    assert fetch_url(f"{server.base}/moved", allow_private=True).content == FEED


def test_a_redirect_loop_is_cut(server: FeedServer) -> None:
    before = len(server.seen("/loop"))
    with pytest.raises(FetchError, match="Trop de redirections"):
        fetch_url(f"{server.base}/loop", allow_private=True)
    assert len(server.seen("/loop")) - before == importers.fetch.MAX_REDIRECTS + 1


@pytest.mark.parametrize("path", ["/to-ftp", "/to-file"])
def test_a_redirect_to_another_scheme_is_refused(server: FeedServer, path: str) -> None:
    with pytest.raises(FetchError, match="non prise en charge"):
        fetch_url(f"{server.base}{path}", allow_private=True)


# --- the guard against server-side request forgery ------------------------------------------


def test_a_loopback_address_is_refused_unless_allowed(server: FeedServer) -> None:
    before = len(server.requests)
    with pytest.raises(FetchError, match=r"Adresse refusée \(127\.0\.0\.1\)"):
        fetch_url(f"{server.base}/feed.json")
    assert len(server.requests) == before


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://localhost:9/feed.json", None),
        ("http://[::1]:9/", "::1"),
        ("http://10.1.2.3/feed.json", "10.1.2.3"),
        ("http://192.168.0.10/feed.json", "192.168.0.10"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://100.100.100.200/latest/meta-data/", "100.100.100.200"),
        ("http://0.0.0.0:9/", "0.0.0.0"),  # noqa: S104 - a URL refused, not a bind
        ("https://[::ffff:127.0.0.1]/", str(ipaddress.ip_address("::ffff:127.0.0.1"))),
    ],
)
def test_private_and_local_addresses_are_refused(url: str, address: str | None) -> None:
    with pytest.raises(FetchError, match="Adresse refusée") as refused:
        fetch_url(url, timeout=0.5)
    if address is not None:
        assert address in str(refused.value)


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://[64:ff9b::7f00:1]/", "64:ff9b::7f00:1"),  # NAT64 of 127.0.0.1
        ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe"),  # NAT64 of 169.254.169.254
        ("http://[64:ff9b:1::808:808]/", "64:ff9b:1::808:808"),  # local-use NAT64
        ("http://[2002:7f00:1::]/", "2002:7f00:1::"),  # 6to4 of 127.0.0.1
        ("http://[2002:a00:1::1]/", "2002:a00:1::1"),  # 6to4 of 10.0.0.1
        ("http://[::7f00:1]/", "::7f00:1"),  # IPv4-compatible 127.0.0.1
        ("http://[::a9fe:a9fe]/", "::a9fe:a9fe"),  # IPv4-compatible 169.254.169.254
        ("http://[::ffff:a9fe:a9fe]/", "::ffff:a9fe:a9fe"),  # IPv4-mapped
    ],
)
def test_ipv6_forms_of_private_ipv4_addresses_are_refused(url: str, address: str) -> None:
    with pytest.raises(FetchError, match="Adresse refusée") as refused:
        fetch_url(url, timeout=0.5)
    assert str(ipaddress.ip_address(address)) in str(refused.value)


@pytest.mark.parametrize("address", ["2002:808:808::1", "64:ff9b::808:808", "2a00:1450::1"])
def test_ipv6_forms_of_public_addresses_pass_the_guard(address: str) -> None:
    assert not importers.fetch._refused(ipaddress.ip_address(address))


class FakeDNS:
    """Answers chosen addresses for names under .test, the real resolver for the rest.

    It stands for a hostile DNS server: what the guard is told need not be what a second
    lookup says.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, **answers: list[str]) -> None:
        self.answers = {f"{name.replace('_', '-')}.test": list(a) for name, a in answers.items()}
        self.asked: list[str] = []
        self._real = socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", self)

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in self.answers:
            return self._real(host, port, *args, **kwargs)
        self.asked.append(name)
        queue = self.answers[name]
        address = queue.pop(0) if len(queue) > 1 else queue[0]
        return self._real(address, port, *args, **kwargs)


def test_the_connection_goes_to_the_vetted_address(
    server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DNS rebinding: a public address for the guard, then the loopback for the connection.
    dns = FakeDNS(monkeypatch, rebind=["8.8.8.8", "127.0.0.1"])
    port = server.server_address[1]
    before = len(server.requests)
    with pytest.raises(FetchError):
        fetch_url(f"http://rebind.test:{port}/feed.json", timeout=0.5, deadline=2)
    assert len(server.requests) == before
    assert dns.asked == ["rebind.test"]


def test_a_redirect_is_vetted_and_pinned_again(
    server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    dns = FakeDNS(monkeypatch, rebind=["8.8.8.8", "127.0.0.1"])
    check = importers.fetch._vetted_address

    def only_the_test_server(host: str, port: int, allow_private: bool) -> str:
        return host if host == "127.0.0.1" else check(host, port, allow_private)

    monkeypatch.setattr(importers.fetch, "_vetted_address", only_the_test_server)
    before = len(server.seen("/feed.json"))
    with pytest.raises(FetchError):
        fetch_url(f"{server.base}/to-rebind", timeout=0.5, deadline=2)
    assert len(server.seen("/feed.json")) == before
    assert dns.asked == ["rebind.test"]


def test_a_pinned_fetch_keeps_the_host_name(
    server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    dns = FakeDNS(monkeypatch, feeds=["127.0.0.1"])
    port = server.server_address[1]
    fetched = fetch_url(f"http://feeds.test:{port}/feed.json", allow_private=True)
    assert fetched.content == FEED
    assert server.seen("/feed.json")[-1]["host"] == f"feeds.test:{port}"
    assert dns.asked == ["feeds.test"]


def test_tls_checks_the_host_name_on_a_pinned_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("feeds.test").configure_cert(server_context)
    names: list[str | None] = []
    server_context.sni_callback = lambda _sock, name, _ctx: names.append(name)  # type: ignore[assignment,func-returns-value]
    httpd = FeedServer()
    httpd.socket = server_context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    FakeDNS(monkeypatch, feeds=["127.0.0.1"], other=["127.0.0.1"])
    port = httpd.server_address[1]
    try:
        fetched = fetch_url(
            f"https://feeds.test:{port}/feed.json", allow_private=True, verify=client_context
        )
        assert fetched.content == FEED
        assert names == ["feeds.test"]
        # The same address under a name the certificate does not carry is refused.
        with pytest.raises(FetchError, match="illisible"):
            fetch_url(
                f"https://other.test:{port}/feed.json", allow_private=True, verify=client_context
            )
    finally:
        httpd.stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_a_redirect_to_a_local_address_is_refused(
    server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test server itself is let through, and only it: the guard runs again at every hop.
    check = importers.fetch._vetted_address

    def only_the_test_server(host: str, port: int, allow_private: bool) -> str:
        if host == "127.0.0.1":
            return host
        return check(host, port, allow_private)

    monkeypatch.setattr(importers.fetch, "_vetted_address", only_the_test_server)
    with pytest.raises(FetchError, match="Adresse refusée"):
        fetch_url(f"{server.base}/to-localhost")


@pytest.mark.parametrize(
    "source",
    [
        "file:///etc/passwd",
        "ftp://ftp.example.org/feed.json",
        "gopher://example.org/",
        "FILE:///etc/hosts",
    ],
)
def test_other_schemes_are_refused(source: str) -> None:
    with pytest.raises(FetchError, match="non prise en charge"):
        fetch_source(source)


def test_an_invalid_port_is_a_fetch_error() -> None:
    with pytest.raises(FetchError, match="Adresse invalide"):
        fetch_url("http://example.org:99999/feed.json")


def test_a_missing_file_is_reported_in_french(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="fichier introuvable"):
        fetch_source(str(tmp_path / "absent.json"))
    with pytest.raises(FetchError, match="c'est un dossier"):
        fetch_source(str(tmp_path))


# --- import runs over HTTP ---------------------------------------------------------------------


def http_feed(database: Database, url: str) -> int:
    with database.transaction() as db:
        agency, _ = make_agency(db)
        return add_feed(
            db, agency_id=agency.id, url=url, format="ft-json", interval_minutes=None
        ).id


@pytest.fixture
def local_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, feed_allow_private=True)


def test_an_unchanged_feed_is_not_parsed_again(
    committed: Database,
    local_settings: Settings,
    server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    feed_id = http_feed(committed, f"{server.base}/feed.json")
    first = run_import(committed, local_settings, feed_id=feed_id)
    assert (first.status, first.created) == ("succeeded", 2)
    with committed.transaction() as db:
        feed = db.get(Feed, feed_id)
        assert feed is not None
        assert (feed.etag, feed.last_modified) == (ETAG, LAST_MODIFIED)

    def no_parsing(data: bytes) -> Iterator[ImportedEvent | RowError]:
        raise AssertionError("a 304 must not be parsed")

    monkeypatch.setitem(PARSERS, "ft-json", no_parsing)
    second = run_import(committed, local_settings, feed_id=feed_id)

    assert second.status == "not_modified"
    assert (second.created, second.updated, second.unchanged, second.cancelled) == (0, 0, 0, 0)
    assert server.seen("/feed.json")[-1]["if-none-match"] == ETAG
    with committed.transaction() as db:
        run = db.get(ImportRun, second.run_id)
        assert run is not None and run.fetch_outcome is not None and "304" in run.fetch_outcome
        assert run.finished_at is not None


def test_a_server_error_fails_the_run_and_keeps_the_events(
    committed: Database, local_settings: Settings, server: FeedServer
) -> None:
    feed_id = http_feed(committed, f"{server.base}/feed.json")
    assert run_import(committed, local_settings, feed_id=feed_id).created == 2

    summary = run_import(committed, local_settings, feed_id=feed_id, source=f"{server.base}/error")

    assert summary.status == "failed"
    assert summary.error is not None and "500" in summary.error
    with committed.transaction() as db:
        statuses = db.scalars(select(Event.status).where(Event.feed_id == feed_id)).all()
        run = db.get(ImportRun, summary.run_id)
    assert statuses == ["scheduled", "scheduled"]
    assert run is not None and run.status == "failed" and run.finished_at is not None


def test_a_private_feed_is_refused_by_default(
    committed: Database, settings: Settings, server: FeedServer
) -> None:
    feed_id = http_feed(committed, f"{server.base}/feed.json")
    before = len(server.requests)

    summary = run_import(committed, settings, feed_id=feed_id)

    assert summary.status == "failed"
    assert summary.error is not None and "127.0.0.1" in summary.error
    assert len(server.requests) == before
