"""The list's first page, fetched in a thread while Textual starts (``tui/startup.py``): the
app shows it and fills the rest of the buffer around it; a page for another filter or
experiment is not shown."""

from __future__ import annotations

from typing import Any

import pytest

from tests.counting_proxy import counting_proxy
from tests.test_tui_pilot import SIZE, wait_for
from trace_tui.config.settings import Settings
from trace_tui.demo.traffic import seed_bulk
from trace_tui.tui.app import TraceExplorerApp
from trace_tui.tui.startup import FirstPageFetch


def app_with(uri: str, experiment: str, fetch: FirstPageFetch,
             filter_string: str | None = None) -> TraceExplorerApp:
    return TraceExplorerApp(uri, experiment=experiment, filter_string=filter_string,
                            settings=Settings(refresh_interval_s=0.3, buffer_size=100),
                            persist_settings=False, first_page=fetch)


async def test_the_first_page_shows_and_the_rest_of_the_list_follows(
        mlflow_uri: str, fresh_experiment: tuple[str, str]) -> None:
    name, exp = fresh_experiment
    ids = seed_bulk(mlflow_uri, exp, 30, seed=41)
    fetch = FirstPageFetch(mlflow_uri, name, "", timeout_s=10, rows=5).start()
    app = app_with(mlflow_uri, name, fetch)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.conn_state == "live", what="live")
        assert fetch.result is not None and len(fetch.result.infos) == 5
        assert {i.trace_id for i in fetch.result.infos} <= app.buffer.by_id.keys()
        assert set(app.buffer.by_id) == set(ids)  # the whole list, not only the first page
        assert app.experiment is not None and app.experiment.experiment_id == exp
        times = [r.request_time_ms for r in app.buffer.rows]
        assert times == sorted(times, reverse=True)


async def test_a_page_for_another_filter_is_not_shown(
        mlflow_uri: str, fresh_experiment: tuple[str, str]) -> None:
    name, exp = fresh_experiment
    ids = seed_bulk(mlflow_uri, exp, 40, seed=42)
    fetch = FirstPageFetch(mlflow_uri, name, "trace.status = 'ERROR'", timeout_s=10).start()
    app = app_with(mlflow_uri, name, fetch)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.conn_state == "live", what="live")
        assert set(app.buffer.by_id) == set(ids)
        assert app.active_filter == ""


async def test_an_unreachable_server_at_start_is_reported_by_the_app(
        fresh_experiment: tuple[str, str]) -> None:
    uri = "http://127.0.0.1:9"
    fetch = FirstPageFetch(uri, "x", "", timeout_s=1).start()
    app = app_with(uri, "x", fetch)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.conn_state == "reconnecting", what="reconnecting")
        assert fetch.result is None and len(app.buffer) == 0


FETCH_ALONE = """
import json, sys
from trace_tui.tui.startup import FirstPageFetch
fetch = FirstPageFetch(sys.argv[1], sys.argv[2] or None, "", timeout_s=10, rows=7).start()
fetch.thread.join()
page = fetch.result
print(json.dumps({"aiohttp": "aiohttp" in sys.modules,
                  "urllib_http": sorted(m for m in ("urllib.request", "http.client", "email")
                                        if m in sys.modules),
                  "experiment": page and page.experiment.experiment_id,
                  "names": page and [i.name for i in page.infos]}))
"""


def fetch_alone(uri: str, ref: str) -> dict[str, object]:
    """The first page fetched in a fresh interpreter, as ``trace-tui`` does at start."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", FETCH_ALONE, uri, ref], capture_output=True,
                         text=True, check=True, timeout=60)
    return dict(json.loads(out.stdout))


def test_the_first_page_is_fetched_without_importing_aiohttp(
        mlflow_uri: str, fresh_experiment: tuple[str, str]) -> None:
    """aiohttp's import (~0.14 s) would compete with Textual's for the GIL before the first
    row: the first page comes over the standard library, by experiment name or id."""
    name, exp = fresh_experiment
    seed_bulk(mlflow_uri, exp, 9, seed=43)
    for ref in (name, exp):
        got = fetch_alone(mlflow_uri, ref)
        assert got["aiohttp"] is False
        assert got["urllib_http"] == []  # a plain socket: their imports compete with Textual's
        assert got["experiment"] == exp
        names = got["names"]
        assert isinstance(names, list) and len(names) == 7 and all(names)


async def test_the_first_page_is_on_screen_before_the_client_exists(
        mlflow_uri: str, fresh_experiment: tuple[str, str]) -> None:
    """The rows fetched at start are shown before the aiohttp client is made, so the first
    row's paint does not wait for aiohttp's import."""
    name, exp = fresh_experiment
    seed_bulk(mlflow_uri, exp, 12, seed=44)
    fetch = FirstPageFetch(mlflow_uri, name, "", timeout_s=10, rows=4).start()
    app = app_with(mlflow_uri, name, fetch)
    client_when_shown: list[bool] = []
    loaded = app.list_loaded

    def spy() -> None:
        if not client_when_shown:
            client_when_shown.append(app._client is not None)
        loaded()

    app.list_loaded = spy  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.conn_state == "live", what="live")
        assert client_when_shown == [False]
        assert len(app.buffer) == 12


class FrameWatch(TraceExplorerApp):
    """Records how many rows the list held at each frame the app paints."""

    rows_at_frames: list[int]

    def _display(self, screen: Any, renderable: Any) -> None:  # type: ignore[override]
        if renderable is not None:
            self.rows_at_frames.append(len(self.buffer))
        super()._display(screen, renderable)


async def test_the_first_frame_waits_for_a_page_on_its_way(
        mlflow_uri: str, fresh_experiment: tuple[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A first page that comes shortly after the explorer mounts is in its first frame: no
    empty list painted first and the whole screen painted again when the rows come."""
    import trace_tui.tui.app as app_module

    monkeypatch.setattr(app_module, "FIRST_FRAME_WAIT_S", 30.0)  # not timing: a slow machine
    name, exp = fresh_experiment
    seed_bulk(mlflow_uri, exp, 6, seed=46)
    async with counting_proxy(mlflow_uri) as proxy:
        proxy.delay_s["/api/3.0/mlflow/traces/search"] = 0.3  # still on its way at the mount
        fetch = FirstPageFetch(proxy.uri, name, "", timeout_s=10, rows=6).start()
        app = FrameWatch(proxy.uri, experiment=name, settings=Settings(buffer_size=100),
                         persist_settings=False, first_page=fetch)
        app.rows_at_frames = []
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.conn_state == "live", what="live")
        assert app.rows_at_frames and app.rows_at_frames[0] == 6
        assert proxy.counts["/api/3.0/mlflow/traces/search"] >= 1
