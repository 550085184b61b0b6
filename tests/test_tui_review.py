"""Pilot test of the review screen (`v`): keys only, blind by default, and the labels it
writes are the same HUMAN assessments as the headless `trace-tui label`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.test_evaluation import cli
from tests.test_review_queue import judged_setup
from tests.test_tui_pilot import SIZE, make_app, wait_for
from trace_tui.core.client import MlflowClient
from trace_tui.tui.screens.judging import judge_screen_hooks
from trace_tui.tui.screens.review import ReviewScreen


def _human(info, judge: str):
    return [a for a in info.assessments if a.name == judge and a.source_type == "HUMAN"]


async def test_review_screen_labels_like_the_headless_path(
        mlflow_uri, fresh_experiment, tmp_path: Path) -> None:
    name, exp = fresh_experiment
    path, policy, ids = await judged_setup(mlflow_uri, exp, tmp_path, n=2, seed=59)
    app = make_app(mlflow_uri, name, reviewer="rita")
    for hook in judge_screen_hooks(path, exp):
        app.register_screen_hook(hook)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.conn_state == "live", what="live")
        await pilot.press("v")
        screen = app.screen
        assert isinstance(screen, ReviewScreen)
        await wait_for(pilot, lambda: screen.loaded and screen.item is not None, timeout=30,
                       what="the first queued trace")
        first = screen.item.info.trace_id
        judges = str(screen.query_one("#review-judges").content)
        assert "hidden (b)" in judges and "yes" not in judges  # blind: verdicts hidden
        await pilot.press("n")  # quality: fail
        await wait_for(pilot, lambda: screen.writes >= 1, what="the first label")
        await pilot.press("u")  # undo it, then answer again
        await wait_for(pilot, lambda: screen.writes >= 2, what="the undo")
        await pilot.press("y", "y")  # quality: pass, safe: yes -> next trace
        await wait_for(pilot, lambda: screen.item is not None
                       and screen.item.info.trace_id != first, what="the next trace")
        await pilot.press("u")  # nothing answered here: back to the first trace, undo `safe`
        await wait_for(pilot, lambda: screen.item.info.trace_id == first
                       and "safe" not in screen.item.answers and screen.writes >= 5,
                       what="undo on the previous trace")
        assert "hidden (b)" in str(screen.query_one("#review-judges").content)
        await pilot.press("b")  # show the judges' verdicts
        assert "judge: yes" in str(screen.query_one("#review-judges").content)
        await pilot.press("y")  # safe: yes again -> on to the next trace
        await wait_for(pilot, lambda: screen.item.info.trace_id != first, what="next again")
    second = ids[1] if first == ids[0] else ids[0]
    out = await asyncio.to_thread(cli, "label", second, "--judge", "quality", "--value", "y",
                                  "--policy", str(path), "--reviewer", "rita", uri=mlflow_uri)
    assert out.returncode == 0, out.stderr
    async with MlflowClient(mlflow_uri) as client:
        infos = {i.trace_id: i for i in await client.batch_get_trace_infos(ids)}
    [tui] = _human(infos[first], "quality")
    [headless] = _human(infos[second], "quality")
    assert [a.value for a in _human(infos[first], "safe")] == ["yes"]
    assert (tui.value, tui.source_id) == (headless.value, headless.source_id) == (True, "rita")
    same = {k: v for k, v in tui.metadata.items() if k != "trace_tui.label_via"}
    assert same == {k: v for k, v in headless.metadata.items() if k != "trace_tui.label_via"}
    assert tui.metadata["trace_tui.label_via"] == "review"
    assert infos[first].tags[f"trace_tui.review.{policy}"] == "done"


async def test_the_app_opens_on_the_review_screen_and_v_is_review() -> None:
    """`trace-tui review --policy F` starts the explorer with start_hook = "review"; in the
    list, `v` opens the review screen (the session view moved to `V`)."""
    from trace_tui.config.settings import Settings
    from trace_tui.tui.app import TraceExplorerApp
    from trace_tui.tui.sources import StaticTraceSource

    app = TraceExplorerApp("static://none", settings=Settings(), persist_settings=False,
                           source=StaticTraceSource([]), screen_hooks=judge_screen_hooks())
    app.start_hook = "review"
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen), what="review")
        screen = app.screen
        await wait_for(pilot, lambda: "no policy" in str(
            screen.query_one("#review-status").content), what="the no-policy hint")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ReviewScreen), what="back")
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen), what="v again")
