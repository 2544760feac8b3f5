"""A throwaway PostgreSQL cluster for the tests, started from Debian's binaries."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def available() -> bool:
    return (PG_BIN / "initdb").exists() and (PG_BIN / "pg_ctl").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: drop to the postgres user when we are root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@dataclass(frozen=True)
class _Cluster:
    data: Path
    options: str
    log: Path


# The clusters this process started, by port: the fault tests stop and restart them.
_RUNNING: dict[int, _Cluster] = {}


def _pg_ctl(url: str, *args: str) -> None:
    found = _RUNNING[urlsplit(url).port or 5432]
    subprocess.run(
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(found.data), "-l", str(found.log), *args]),
        check=True,
        capture_output=True,
        timeout=60,
    )


def stop(url: str) -> None:
    """Stop the cluster serving url (a fast shutdown: clients are disconnected, no crash)."""
    _pg_ctl(url, "-m", "fast", "-w", "stop")


def start(url: str) -> None:
    """Start again a cluster stopped by stop(); returns once it accepts connections."""
    _pg_ctl(url, "-o", _RUNNING[urlsplit(url).port or 5432].options, "-w", "start")


def restart(url: str) -> None:
    """pg_ctl restart: clients are disconnected, and it returns once it accepts connections."""
    _pg_ctl(url, "-o", _RUNNING[urlsplit(url).port or 5432].options, "-m", "fast", "-w", "restart")


@contextmanager
def cluster() -> Iterator[str]:
    """Start a cluster on a free loopback port; yield a URL to its `postgres` database."""
    root = Path(tempfile.mkdtemp(prefix="events-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = _free_port()
    subprocess.run(
        _as_postgres(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]
        ),
        check=True,
        capture_output=True,
    )
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        _as_postgres(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(root / "log"),
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    _RUNNING[port] = _Cluster(data, options, root / "log")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        del _RUNNING[port]
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        time.sleep(0.1)
        shutil.rmtree(root, ignore_errors=True)
