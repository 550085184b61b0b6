"""Real local servers that misbehave, for fault tests (127.0.0.1 only, started by the tests).

- ``FakeWeb``: an aiohttp server whose every answer follows ``mode`` (an HTML page, ``{}``,
  plain text, a 502/503/504 error page, a 500 JSON error), switchable while it runs.
- ``Silent``: a socket that accepts connections (the kernel completes them) and never answers.
- ``SwitchProxy``: a reverse proxy in front of a real MLflow server that can be switched to
  answer 502 (as nginx does while MLflow restarts) and back.
Nothing here patches the client: it talks HTTP to these servers like to any other.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import aiohttp
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

BODIES: dict[str, tuple[int, str, str]] = {  # mode -> (status, content type, body)
    "html": (200, "text/html", "<!doctype html><html><body>It works!</body></html>"),
    "html404": (404, "text/html", "<html><body><h1>404 Not Found</h1></body></html>"),
    "empty": (200, "application/json", "{}"),
    "list": (200, "application/json", "[]"),
    "text": (200, "text/plain", "hello, this is not MLflow"),
    "502": (502, "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>"),
    "503": (503, "text/html", "<html><body><h1>503 Service Unavailable</h1></body></html>"),
    "504": (504, "text/html", "<html><body><h1>504 Gateway Time-out</h1></body></html>"),
    "500": (500, "application/json",
            '{"error_code": "INTERNAL_ERROR", "message": "database is locked"}'),
}


class _LoopThread:
    """An asyncio loop in a daemon thread serving one aiohttp app on 127.0.0.1."""

    def __init__(self, handler: Handler) -> None:
        self.loop = asyncio.new_event_loop()
        self._handler = handler
        self._runner: web.AppRunner | None = None
        self.port = 0
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=10)

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def close(self) -> None:
        if self._runner is not None:
            self.run(self._runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)


class FakeWeb:
    """Not MLflow: every request gets ``BODIES[mode]``."""

    def __init__(self, mode: str = "html") -> None:
        self.mode = mode
        self.requests = 0
        self.last_auth: str | None = None  # the Authorization header of the last request
        self._server = _LoopThread(self._handle)
        self.uri = f"http://127.0.0.1:{self._server.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.last_auth = request.headers.get("Authorization")
        await request.read()
        status, ctype, body = BODIES[self.mode]
        return web.Response(status=status, text=body, content_type=ctype)

    def close(self) -> None:
        self._server.close()


class Silent:
    """Accepts TCP connections (listen backlog) and never reads or answers."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.uri = f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def close(self) -> None:
        self._sock.close()


class SwitchProxy:
    """A reverse proxy to ``upstream``; ``failing = True`` makes it answer 502 pages (and
    ``fail_next = N`` the next N requests only)."""

    HOP = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive"})

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.failing = False
        self.fail_next = 0  # answer the next N requests with 502, then pass through
        self.failed = 0  # 502s answered
        self.passed = 0  # requests forwarded
        self._session: aiohttp.ClientSession | None = None
        self._server = _LoopThread(self._handle)
        self.uri = f"http://127.0.0.1:{self._server.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if self.failing or self.fail_next > 0:
            self.fail_next = max(0, self.fail_next - 1)
            self.failed += 1
            status, ctype, page = BODIES["502"]
            return web.Response(status=status, text=page, content_type=ctype)
        if self._session is None:
            self._session = aiohttp.ClientSession()
        self.passed += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() not in self.HOP}
        async with self._session.request(request.method, self.upstream + request.path_qs,
                                         data=body, headers=headers) as resp:
            raw = await resp.read()
            out = {k: v for k, v in resp.headers.items()
                   if k.lower() not in self.HOP and k.lower() != "content-encoding"}
            return web.Response(status=resp.status, body=raw, headers=out)

    def close(self) -> None:
        if self._session is not None:
            self._server.run(self._session.close())
        self._server.close()
