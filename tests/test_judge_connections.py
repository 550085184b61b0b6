"""Judge calls reuse their HTTP connections (MLflow's own path opens one per call)."""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.test_judges import FORCE_PASS_MARKER, MODEL, rest_trace
from trace_tui.demo.fake_judge import run_in_thread
from trace_tui.judging import JudgeSpec, build_judge, run_judge, trace_from_rest_json

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ.setdefault("MLFLOW_MODEL_CATALOG_URI", "")


class CountingProxy:
    """A TCP forwarder on 127.0.0.1 that counts the connections clients open through it."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.connections = 0
        self._writers: list[asyncio.StreamWriter] = []
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._client, "127.0.0.1", 0), self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def close(self) -> None:
        async def shut() -> None:
            self.server.close()
            for w in self._writers:
                w.close()
            await asyncio.sleep(0.05)  # let the pipes see EOF and finish

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)


@pytest.fixture
def proxied_judge_url():
    base_url, stop = run_in_thread()
    upstream_port = int(base_url.split(":")[2].split("/")[0])
    proxy = CountingProxy(upstream_port)
    yield f"http://127.0.0.1:{proxy.port}/v1", proxy
    proxy.close()
    stop()


def test_judge_calls_reuse_their_connections(proxied_judge_url) -> None:
    url, proxy = proxied_judge_url
    judge = build_judge(JudgeSpec.from_decl(
        "reuse", "make_judge", {"model": MODEL, "base_url": url,
                                "instructions": "Is {{ outputs }} a direct answer?",
                                "feedback_value_type": "bool"}))
    trace = trace_from_rest_json(rest_trace(f"Paris. {FORCE_PASS_MARKER}"))
    with ThreadPoolExecutor(max_workers=4) as pool:  # as the eval worker runs them
        first = list(pool.map(lambda _: run_judge(judge, trace, timeout_s=20), range(8)))
    assert [v.passed for v in first] == [True] * 8
    assert proxy.connections <= 4  # at most one per call in flight, not one per call
    before = proxy.connections
    later = [run_judge(judge, trace, timeout_s=20) for _ in range(5)]
    assert [v.passed for v in later] == [True] * 5
    # MLflow's requests.post would open 5 more; a kept-alive pooled connection serves them.
    assert proxy.connections - before <= 1
