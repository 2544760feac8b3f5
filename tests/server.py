"""A real uvicorn server in a child process, for tests about the server and for bench/."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

# Child servers run from the project folder, so `python -m bench.hello` finds its package.
PROJECT_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_command(
    command: list[str], env: dict[str, str], log: Path, *, start_timeout: float = 60
) -> Iterator[str]:
    """Run a server command (it gets --host/--port appended) on a free loopback port until
    /healthz answers; yield its base URL; stop it on exit."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    environ = {**os.environ, "BASE_URL": base_url, **env}
    full = [*command, "--host", "127.0.0.1", "--port", str(port)]
    # The server's output goes to a file: a pipe nobody reads would block it once full.
    with log.open("ab") as out:
        process = subprocess.Popen(full, env=environ, cwd=PROJECT_DIR, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited:\n{log.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start within {start_timeout:g} s")
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_server(database_url: str, *, workers: int = 2, **env: str) -> Iterator[str]:
    """`events-app serve` on the given database; yields its base URL."""
    command = [sys.executable, "-m", "events_app.cli", "serve", "--workers", str(workers)]
    environ = {"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", **env}
    with (
        tempfile.TemporaryDirectory(prefix="events-server-") as folder,
        serve_command(command, environ, Path(folder) / "server.log") as base_url,
    ):
        yield base_url
