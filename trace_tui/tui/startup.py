"""What the commands that open the app do before it: settings from the command line, and the
list's first page fetched while Textual is still being imported.

Light on purpose (no textual, no aiohttp at import): ``cli`` calls this before importing the
app. The first page is fetched in a thread by ``trace_tui.core.first_page`` (no aiohttp, no
``urllib.request``), so the server works on the experiment lookup and the search while this
process imports Textual; the explorer's first frame waits (bounded) for that page and shows
its rows, then the app imports the aiohttp client and loads the rest of the buffer as usual.
Any failure just leaves the load to the app. As many rows as the terminal has lines: the rest
of the list loads after the first paint.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import TYPE_CHECKING, Any

from trace_tui.config.settings import Settings

if TYPE_CHECKING:
    from trace_tui.core.first_page import FirstPage

FIRST_PAGE_ROWS = 100  # at most; the rest loads after the paint


def first_page_rows() -> int:
    """Rows for the first page: the terminal's lines (more than the list shows, so the list's
    scroll bar is there from the first frame), FIRST_PAGE_ROWS when unknown."""
    try:
        lines = os.get_terminal_size(1).lines
    except (OSError, ValueError):
        return FIRST_PAGE_ROWS
    return max(10, min(FIRST_PAGE_ROWS, lines))


def settings_from_args(args: Any) -> tuple[Settings, bool]:
    """The user's settings with the command line's ``--theme`` applied, and whether to
    capture the mouse (settings ``mouse`` unless ``--no-mouse``): one rule for every command
    that opens the app. A bad config.toml raises ``ConfigError`` (exit 2)."""
    settings = Settings.load()
    if getattr(args, "theme", None):
        settings.theme = args.theme
    return settings, settings.mouse and not getattr(args, "no_mouse", False)


class FirstPageFetch:
    """``start()`` fetches the first page in a thread (importing the client there too);
    ``await take(ref, filter)`` hands it over once, or None when it failed or does not match
    (the app then loads the usual way and reports errors itself)."""

    def __init__(self, uri: str, experiment_ref: str | None, filter_string: str, *,
                 timeout_s: float, rows: int = FIRST_PAGE_ROWS) -> None:
        self.uri, self.experiment_ref = uri, experiment_ref
        self.filter_string = filter_string.strip()
        self.timeout_s, self.rows = timeout_s, rows
        self.result: FirstPage | None = None
        self.thread = threading.Thread(target=self._run, name="trace-tui-first-page",
                                       daemon=True)
        self._taken = False

    def start(self) -> FirstPageFetch:
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            self.result = self._fetch()
        except Exception:  # a thread must not print a traceback over the app
            self.result = None  # the app's own load retries and reports it

    def _fetch(self) -> FirstPage:
        from trace_tui.core.first_page import fetch_first_page

        return fetch_first_page(self.uri, self.experiment_ref, self.filter_string,
                                timeout_s=self.timeout_s, rows=self.rows)

    async def wait(self, timeout_s: float) -> None:
        """Until the fetch is done, at most ``timeout_s`` (the event loop keeps running)."""
        if self.thread.is_alive():
            await asyncio.to_thread(self.thread.join, timeout_s)

    def take_ready(self, experiment_ref: str | None, filter_string: str) -> FirstPage | None:
        """``take`` without waiting: None (and still takeable) while the fetch runs."""
        if self.thread.is_alive():
            return None
        return self._hand_over(experiment_ref, filter_string)

    async def take(self, experiment_ref: str | None, filter_string: str) -> FirstPage | None:
        if self._taken:
            return None
        await asyncio.to_thread(self.thread.join)
        return self._hand_over(experiment_ref, filter_string)

    def _hand_over(self, experiment_ref: str | None, filter_string: str) -> FirstPage | None:
        if self._taken:
            return None
        self._taken = True
        got = self.result
        if got is None or (got.experiment_ref, got.filter_string) != (
                experiment_ref, filter_string.strip()):
            return None
        return got
