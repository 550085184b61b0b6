"""A tiny HTTP proxy on 127.0.0.1 in front of the real MLflow server: it forwards every
request unchanged and counts them by path, so a test can see which endpoints a client used
without patching it. ``blocked`` paths answer 404 with an HTML page, as a server (or a
reverse proxy) without that route does; ``delay_s`` paths answer that much later (a slow
server); requests ``hold`` picks (by path and body) wait until the test sets ``release``
(``held`` is set once one waits): one kind of query made slow, the others not."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from trace_tui.server.embedded import free_port


@dataclass
class CountingProxy:
    upstream: str
    uri: str = ""
    counts: Counter[str] = field(default_factory=Counter)
    blocked: set[str] = field(default_factory=set)
    delay_s: dict[str, float] = field(default_factory=dict)
    hold: Callable[[str, bytes], bool] | None = None
    held: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self) -> None:
        self.counts.clear()


@asynccontextmanager
async def counting_proxy(upstream: str) -> AsyncIterator[CountingProxy]:
    proxy = CountingProxy(upstream.rstrip("/"))
    session = aiohttp.ClientSession(auto_decompress=False)

    async def forward(request: web.Request) -> web.StreamResponse:
        proxy.counts[request.path] += 1
        if request.path in proxy.delay_s:
            await asyncio.sleep(proxy.delay_s[request.path])
        data = await request.read()
        if proxy.hold is not None and proxy.hold(request.path, data):
            proxy.held.set()
            await proxy.release.wait()
        if request.path in proxy.blocked:
            return web.Response(status=404, text="<!doctype html><title>404 Not Found</title>",
                                content_type="text/html")
        async with session.request(request.method, proxy.upstream + request.path_qs,
                                   data=data,
                                   headers={k: v for k, v in request.headers.items()
                                            if k.lower() not in ("host", "content-length")}
                                   ) as resp:
            body = await resp.read()
            headers = {k: v for k, v in resp.headers.items()
                       if k.lower() in ("content-type", "content-encoding")}
            return web.Response(status=resp.status, body=body, headers=headers)

    app = web.Application(client_max_size=1 << 30)
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    proxy.uri = f"http://127.0.0.1:{port}"
    try:
        yield proxy
    finally:
        proxy.release.set()
        await runner.cleanup()
        await session.close()
