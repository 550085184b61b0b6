"""One number format per quantity: the list, the trace header, the tree, the detail tab and
the `traces list/show` text all print a trace's tokens, duration and cost alike."""

from __future__ import annotations

import json
from typing import Any

from tests.test_tui_static import SIZE, wait_for
from tests.test_tui_trace_view import app_with, headline_text, opened, payload
from trace_tui.core.export import list_row, tree_to_text
from trace_tui.core.model import decode_trace
from trace_tui.core.render import fmt_cost, fmt_count, fmt_duration, fmt_tokens

DEMO_01 = "tr-940eee3cba6f875c2e84496e7857dd86"


def scaled_tokens(doc: dict[str, Any], factor: int) -> dict[str, Any]:
    """``doc`` with every token count times ``factor`` (over 1,000: compact and grouped
    formats differ)."""
    for span in doc["spans"]:
        for attr in span["attributes"]:
            if attr["key"] == "mlflow.chat.tokenUsage":
                for kv in attr["value"]["kvlist_value"]["values"]:
                    kv["value"]["int_value"] = int(kv["value"]["int_value"]) * factor
    meta = doc["trace_info"]["trace_metadata"]
    usage = {k: v * factor for k, v in json.loads(meta["mlflow.trace.tokenUsage"]).items()}
    meta["mlflow.trace.tokenUsage"] = json.dumps(usage)
    return doc


async def test_tokens_duration_and_cost_read_the_same_everywhere() -> None:
    doc = scaled_tokens(payload("demo-01"), 10)
    tree = decode_trace(doc)
    total = tree.tokens.total
    assert total > 1000
    compact, grouped = fmt_count(total), f"{total:,}"
    duration, cost, in_out = (fmt_duration(tree.duration_ms), fmt_cost(tree.cost_usd),
                              fmt_tokens(tree.tokens))

    show = tree_to_text(tree, width=140)  # `traces show`
    header = show.splitlines()[1]
    assert compact in header and in_out in header and duration in header and cost in header
    root_row = show.splitlines()[4]
    assert in_out in root_row and grouped not in show

    row = list_row(tree.info)  # `traces list`
    assert in_out in row and duration in row and cost in row

    app = app_with(doc)
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot, app, DEMO_01)
        head = headline_text(screen)
        assert f"Σ {compact}" in head and in_out in head and duration in head and cost in head
        assert grouped not in head
        root = screen.waterfall.row_text(0)  # the tree: Σtok of the root
        assert compact in root and duration in root
        screen.waterfall.cursor = 0
        screen.detail.show_tab("attributes")
        await wait_for(pilot, lambda: "tokens (subtree)" in screen.detail.body_text("attributes"),
                       what="the attributes tab")
        attrs = screen.detail.body_text("attributes")
        assert f"{in_out} = {compact}" in attrs and grouped not in attrs
        list_text = app.table.render_row(0, 130, False).text
        assert in_out in list_text and duration in list_text and cost in list_text
