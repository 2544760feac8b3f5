"""What the benchmarks share: fresh databases, real servers, the load generator, the figures.

Every server is a child process started the way production starts it (`events-app serve
--workers N` on 127.0.0.1, APP_ENV=production) and the hello-world baseline goes through the
same function (bench/hello.py), so the two differ only by the application. Load comes from
wrk, a separate C process, with a bounded duration and number of connections.
"""

from __future__ import annotations

import math
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from events_app.db import normalise_url
from tests import pg
from tests.server import serve_command

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Options:
    workers: int = 2
    # Load runs: wrk with this many connections over this many threads, for this long.
    duration_s: float = 10.0
    connections: int = 32
    threads: int = 2
    # Latency: this many requests one after another, on a warm server.
    latency_requests: int = 300


@dataclass
class Row:
    """One line of the final table. A throughput row carries its rate and the hello-world
    rate measured just before it; the runner shows and checks their ratio."""

    bench: str
    figure: str
    value: str
    target: str = ""
    ok: bool | None = None
    rate: float | None = None
    hello: float | None = None
    min_ratio: float | None = None


@dataclass
class Context:
    """Shared by the benchmarks of one run: options, the temporary directory, the databases
    and every hello-world measurement."""

    options: Options
    workdir: Path
    stack: ExitStack
    hello_rates: list[float] = field(default_factory=list)
    _pg_url: str | None = None

    def database(self, backend: str, name: str) -> str:
        """A new, empty database: a SQLite file, or a database in the run's PostgreSQL
        cluster (started on first use, from tests/pg.py)."""
        if backend == "sqlite":
            path = self.workdir / f"{name}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return f"sqlite:///{path}"
        if backend != "postgresql":
            raise ValueError(f"unknown backend {backend!r}")
        if self._pg_url is None:
            if not pg.available():
                raise SystemExit(f"PostgreSQL binaries not found in {pg.PG_BIN}")
            self._pg_url = self.stack.enter_context(pg.cluster())
        admin = normalise_url(self._pg_url).set(drivername="postgresql")
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}"')
            c.execute(f'CREATE DATABASE "{name}"')
        return self._pg_url.rsplit("/", 1)[0] + f"/{name}"

    def compare_with_hello(
        self, base_url: str, paths: Sequence[str], *, headers: Sequence[str] = ()
    ) -> Comparison:
        """The app's rate under load next to the hello world's, measured in turns.

        The machine is shared and its speed drifts, even within a minute: so the two are
        loaded in turns, ROUNDS times each for a share of the duration, and each side keeps
        its median.
        """
        options = self.options
        share = max(2.0, options.duration_s / ROUNDS)
        app_runs: list[Load] = []
        hello_runs: list[Load] = []
        with serve_hello(options.workers, self.workdir) as hello_url:
            load(hello_url, ["/"], options, duration_s=2)  # warm-up
            load(base_url, paths, options, duration_s=2, headers=headers)
            for _ in range(ROUNDS):
                hello_runs.append(load(hello_url, ["/"], options, duration_s=share))
                app_runs.append(load(base_url, paths, options, duration_s=share, headers=headers))
        for run in hello_runs:
            run.check("hello world")
        for run in app_runs:
            run.check(base_url)
        comparison = Comparison(app_runs, hello_runs)
        self.hello_rates.extend(run.rate for run in hello_runs)
        print(
            f"  hello world, in turns with it: {', '.join(f'{r.rate:,.0f}' for r in hello_runs)}"
            f" req/s; median {comparison.hello_rate:,.0f}",
            flush=True,
        )
        return comparison


ROUNDS = 5


@dataclass(frozen=True)
class Comparison:
    app_runs: list[Load]
    hello_runs: list[Load]

    @property
    def rate(self) -> float:
        return statistics.median(run.rate for run in self.app_runs)

    @property
    def hello_rate(self) -> float:
        return statistics.median(run.rate for run in self.hello_runs)

    def describe(self) -> str:
        rates = ", ".join(f"{run.rate:,.0f}" for run in self.app_runs)
        worst = max(run.p99_ms for run in self.app_runs)
        return f"{rates} req/s, median {self.rate:,.0f}; latency p99 up to {worst:.1f} ms"


# --- data ------------------------------------------------------------------------------------


def events_app(database_url: str, *args: str) -> float:
    """Run one `events-app` command against a database; its wall time in seconds."""
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "events_app.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"events-app {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def demo_database(database_url: str, events: int) -> float:
    """Migrate, load the communes and `events` demo events; the loading time in seconds."""
    events_app(database_url, "migrate")
    seconds = events_app(database_url, "demo", "--events", str(events))
    if database_url.startswith("postgresql"):
        # Fresh statistics and visibility map, as autovacuum would leave them within a minute
        # of the load (it vacuums after inserts too): index-only scans need the second.
        admin = normalise_url(database_url).set(drivername="postgresql")
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as c:
            c.execute("VACUUM ANALYZE")
    return seconds


# --- servers ---------------------------------------------------------------------------------


@contextmanager
def serve_app(database_url: str, workers: int, workdir: Path, **env: str) -> Iterator[str]:
    """`events-app serve` on a free port, configured as in production; yields its base URL."""
    environ = {
        "DATABASE_URL": database_url,
        "APP_ENV": "production",
        "SECRET_KEY": secrets.token_hex(32),
        **env,
    }
    command = [sys.executable, "-m", "events_app.cli", "serve", "--workers", str(workers)]
    with serve_command(command, environ, workdir / "server.log") as base_url:
        yield base_url


@contextmanager
def serve_hello(workers: int, workdir: Path) -> Iterator[str]:
    command = [sys.executable, "-m", "bench.hello", "--workers", str(workers)]
    with serve_command(command, {}, workdir / "hello.log") as base_url:
        yield base_url


# --- load ------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """The path of wrk, installed from Debian's packages when missing (as root)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: apt-get install -y wrk", flush=True)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        if subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, **quiet).returncode:
            subprocess.run(["apt-get", "update"], check=False, **quiet)
            subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, **quiet)
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit("wrk is needed for the load runs: apt-get install wrk")


# Rotates over the given paths, each wrk thread from its own share of the list (so that a list
# of distinct paths stays distinct), and reports in a line we can parse.
_WRK_SCRIPT = """
local paths = {%(paths)s}
local threads = 0
setup = function(thread)
  thread:set("first", threads * math.floor(#paths / %(threads)d))
  threads = threads + 1
end
local n = 0
request = function()
  local path = paths[((first + n) %% #paths) + 1]
  n = n + 1
  return wrk.format(nil, path)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK_RESULT %%d %%d %%d %%d %%d %%d %%d %%.0f %%.0f\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    socket_errors: int
    bad_status: int
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def describe(self) -> str:
        return (
            f"{self.requests} requests in {self.seconds:.1f} s, latency p50 {self.p50_ms:.1f} "
            f"ms p99 {self.p99_ms:.1f} ms, {self.socket_errors} socket errors, "
            f"{self.bad_status} non-2xx"
        )

    def check(self, what: str) -> None:
        if self.bad_status or self.socket_errors:
            raise SystemExit(f"{what}: errors under load ({self.describe()})")


def load(
    base_url: str,
    paths: Sequence[str],
    options: Options,
    *,
    duration_s: float | None = None,
    headers: Sequence[str] = (),
) -> Load:
    """wrk against base_url, rotating over paths, for a bounded time and connection count."""
    duration = duration_s if duration_s is not None else options.duration_s
    quoted = ", ".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in paths)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT % {"paths": quoted, "threads": options.threads})
    try:
        command = [
            ensure_wrk(),
            f"--threads={options.threads}",
            f"--connections={options.connections}",
            f"--duration={max(1, round(duration))}s",
            "--timeout=10s",
            f"--script={script.name}",
        ]
        for header in headers:
            command += ["--header", header]
        done = subprocess.run(
            [*command, base_url], capture_output=True, text=True, check=False, timeout=duration + 60
        )
    finally:
        os.unlink(script.name)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed:\n{done.stdout}\n{done.stderr}")
    requests, micros, connect, read, write, status, timeout, p50, p99 = map(float, line.split()[1:])
    return Load(
        requests=int(requests),
        seconds=micros / 1e6,
        socket_errors=int(connect + read + write + timeout),
        bad_status=int(status),
        p50_ms=p50 / 1000,
        p99_ms=p99 / 1000,
    )


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p95_ms: float
    count: int


def sequential_latency(
    base_url: str,
    paths: Sequence[str],
    *,
    warm_up: Sequence[str] = (),
    headers: dict[str, str] | None = None,
) -> Latency:
    """Time a GET of each path, one after another over one keep-alive connection, after the
    warm-up paths. Each must answer 200."""
    timings: list[float] = []
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        for path in warm_up:
            _get_ok(client, path)
        for path in paths:
            started = time.perf_counter()
            _get_ok(client, path)
            timings.append((time.perf_counter() - started) * 1000)
    return Latency(percentile(timings, 50), percentile(timings, 95), len(timings))


def _get_ok(client: httpx.Client, path: str) -> httpx.Response:
    response = client.get(path)
    if response.status_code != 200:
        raise SystemExit(f"GET {path}: {response.status_code} {response.text[:500]}")
    return response


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile, nearest rank."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]


def count_label(n: int) -> str:
    """10000 -> "10k", 1000000 -> "1M"."""
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)
