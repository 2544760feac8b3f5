"""Fixtures of the browser tests: Debian's Chromium driven by Playwright for Python, against the
app served by a real uvicorn on 127.0.0.1, and axe-core injected into the pages.

Playwright's own browser download cannot work here (no network beyond the package registries),
so the browser is Debian's `chromium` package (`apt-get install chromium`, done by .ci/run).
Without it, or without the `playwright` package, every browser test is skipped with a loud
reason.

The journeys run on SQLite only: what they check is the pages, the same on both databases, and
each PostgreSQL case would add a server start for no new coverage (the HTTP tests already run
every page on PostgreSQL).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import threading
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from events_app.db import Database
from tests.server import running_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
JS_DIR = Path(__file__).resolve().parent.parent / "js"
AXE = JS_DIR / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
# WCAG 2.0 and 2.1, levels A and AA: what RGAA 4.1 requires.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
TIMEOUT_MS = 15_000

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None  # type: ignore[assignment]


def _why_no_browser() -> str | None:
    if sync_playwright is None:
        return (
            "!!! the `playwright` package is not installed: the browser tests are SKIPPED. "
            "Run `make install` (it is in the test extras). !!!"
        )
    if not CHROMIUM.exists():
        return (
            f"!!! {CHROMIUM} is missing: the browser tests are SKIPPED. Install Debian's "
            "chromium (`apt-get install -y chromium`, as .ci/run does). !!!"
        )
    return None


SQLITE_ONLY = (
    "browser journeys run on SQLite only: the pages are the same on both databases, and the "
    "HTTP tests cover PostgreSQL"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A skip marker, not a fixture: it acts before any fixture is set up, so that the
    # PostgreSQL cluster is not even started for these tests.
    reason = _why_no_browser()
    here = Path(__file__).resolve().parent
    for item in items:
        if here not in Path(str(item.fspath)).resolve().parents:
            continue
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("database_url") == "postgresql":
            item.add_marker(pytest.mark.skip(reason=SQLITE_ONLY))


def pytest_report_header() -> list[str]:
    reason = _why_no_browser()
    return [reason] if reason else [f"browser tests: {CHROMIUM} driven by Playwright"]


# Module scope, not session: Playwright's sync API runs an event loop in this thread while it
# is open, and every later test calling asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert sync_playwright is not None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _tile_png(size: int = 256) -> bytes:
    """A plain map-like tile: a pale ground with a faint grid every 32 pixels."""
    ground, grid = b"\xf2\xef\xe9", b"\xd9\xd4\xca"
    rows = []
    for y in range(size):
        line = b"".join(grid if x % 32 == 0 or y % 32 == 0 else ground for x in range(size))
        rows.append(b"\x00" + line)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="session")
def tile_server() -> Iterator[str]:
    """A tile server on 127.0.0.1 (the tests never reach OpenStreetMap's): every
    /{z}/{x}/{y}.png is the same tile. Yields the MAP_TILES_URL template."""
    tile = _tile_png()

    class Tiles(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(tile)))
            self.send_header("Cache-Control", "max-age=3600")
            self.end_headers()
            self.wfile.write(tile)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/{{z}}/{{x}}/{{y}}.png"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def server(committed: Database, database_url: str, tile_server: str) -> Iterator[str]:
    """The app under uvicorn (one worker) on the test database; yields its base URL. The map's
    tiles come from the local tile server."""
    with running_server(
        database_url,
        workers=1,
        RATE_LIMIT_REGISTRATION="1000/minute",
        MAP_TILES_URL=tile_server,
        MAP_TILES_ATTRIBUTION="Tuiles de test",
    ) as url:
        yield url


class Pages:
    """New pages in fresh browser contexts, each watched for console errors (a CSP violation,
    a script error, a missing file)."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []

    def new(self, width: int = 1280, height: int = 900, **options: Any) -> Page:
        context = self.browser.new_context(
            base_url=self.base_url,
            viewport={"width": width, "height": height},
            locale="fr-FR",
            timezone_id="Europe/Paris",
            accept_downloads=True,
            **options,
        )
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()

        def on_console(message: ConsoleMessage) -> None:
            # A page answered with an error status (a form shown again with its errors, a
            # 404 page) is logged as a failed resource: that is no error of the page.
            document_status = (
                message.text.startswith(
                    "Failed to load resource: the server responded with a status of 4"
                )
                and message.location.get("url") == page.url
            )
            if message.type == "error" and not document_status:
                self.errors.append(f"{page.url}: {message.text} ({message.location})")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser: Browser, server: str) -> Iterator[Pages]:
    opened = Pages(browser, server)
    try:
        yield opened
    finally:
        opened.close()
    assert not opened.errors, opened.errors


def _axe_source() -> str:
    if not AXE.is_file():
        if shutil.which("npm") is None:
            pytest.skip(
                "!!! npm is not installed: axe-core cannot be installed, the accessibility "
                "checks are SKIPPED. !!!"
            )
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True, timeout=300
        )
    return AXE.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def axe_source() -> str:
    return _axe_source()


AxeCheck = Callable[["Page", str], list[dict[str, Any]]]


@pytest.fixture
def axe(axe_source: str) -> AxeCheck:
    """Runs axe-core on a page (WCAG 2.1 A and AA rules); saves a screenshot under
    tests/artifacts/ (kept out of git by its own .gitignore); returns the violations."""

    def check(page: Page, name: str) -> list[dict[str, Any]]:
        # Injected through the DevTools protocol, which the page's CSP does not govern.
        if not page.evaluate("() => typeof window.axe !== 'undefined'"):
            page.evaluate("() => {\n" + axe_source + "\n}")
        result: dict[str, Any] = page.evaluate(
            """async (tags) => await window.axe.run(document, {
                runOnly: {type: "tag", values: tags},
                resultTypes: ["violations"],
            })""",
            AXE_TAGS,
        )
        save_screenshot(page, name)
        return [
            {
                "page": name,
                "id": v["id"],
                "impact": v["impact"],
                "help": v["help"],
                "targets": [node["target"] for node in v["nodes"]][:5],
            }
            for v in result["violations"]
        ]

    return check


def save_screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    ignore = ARTIFACTS / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# Screenshots of the browser tests: never committed.\n*\n")
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def no_horizontal_scroll(page: Page) -> bool:
    width: int = page.evaluate("() => document.scrollingElement.scrollWidth")
    viewport: int = page.evaluate("() => window.innerWidth")
    return width <= viewport
