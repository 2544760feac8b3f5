"""The baseline: a bare Starlette "hello world" JSON endpoint.

    python -m bench.hello [--host H] [--port P] [--workers N]

It is served through `events-app serve`'s own function (events_app.cli.cmd_serve), so uvicorn
runs it with exactly the options, event loop, HTTP parser and worker count of the real app.
"""

from __future__ import annotations

import argparse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from events_app.cli import cmd_serve
from events_app.settings import load_settings


async def hello(_request: Request) -> Response:
    return JSONResponse({"hello": "world"})


def create_app() -> Starlette:
    return Starlette(routes=[Route("/", hello), Route("/healthz", hello)])


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hello")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    return cmd_serve(load_settings(), parser.parse_args(), app="bench.hello:create_app")


if __name__ == "__main__":
    raise SystemExit(main())
