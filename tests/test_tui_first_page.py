"""The list's first page, fetched in a thread while Textual starts (``tui/startup.py``): the
app shows it and fills the rest of the buffer around it; a page for another filter or
experiment is not shown."""

from __future__ import annotations

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
