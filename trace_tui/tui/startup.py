"""What the commands that open the app do before it: settings from the command line, and the
list's first page fetched while Textual is still being imported.

Light on purpose (no textual, no aiohttp at import): ``cli`` calls this before importing the
app. The first page is fetched in a thread with its own event loop and its own short-lived
client, so the server works on the experiment lookup and the search while this process
imports Textual and paints its first frame; the app's stream worker then shows that page at
once and loads the rest of the buffer as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trace_tui.config.settings import Settings

if TYPE_CHECKING:
    from trace_tui.core.client import Experiment
    from trace_tui.core.model import TraceInfo

FIRST_PAGE_ROWS = 100  # more than a tall terminal shows; the rest loads after the paint


def settings_from_args(args: Any) -> tuple[Settings, bool]:
    """The user's settings with the command line's ``--theme`` applied, and whether to
    capture the mouse (settings ``mouse`` unless ``--no-mouse``): one rule for every command
    that opens the app. A bad config.toml raises ``ConfigError`` (exit 2)."""
    settings = Settings.load()
    if getattr(args, "theme", None):
        settings.theme = args.theme
    return settings, settings.mouse and not getattr(args, "no_mouse", False)


@dataclass(frozen=True)
class FirstPage:
    """The experiment and the newest traces of the list, for one experiment ref and filter."""

    experiment_ref: str | None
    filter_string: str
    experiment: Experiment
    infos: list[TraceInfo]


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
        from trace_tui.core.client import MlflowClient

        async def fetch() -> FirstPage:
            async with MlflowClient(self.uri, read_retries=0,
                                    timeout_s=self.timeout_s) as client:
                exp = await client.resolve_experiment(self.experiment_ref)
                infos = await client.search_traces([exp.experiment_id],
                                                   filter_string=self.filter_string or None,
                                                   max_results=self.rows)
                return FirstPage(self.experiment_ref, self.filter_string, exp, infos)

        try:
            self.result = asyncio.run(fetch())
        except Exception:  # a thread must not print a traceback over the app
            self.result = None  # the app's own load retries and reports it
        with contextlib.suppress(ImportError):  # LiveStream is next: import it off the loop
            importlib.import_module("trace_tui.core.stream")

    async def take(self, experiment_ref: str | None, filter_string: str) -> FirstPage | None:
        if self._taken:
            return None
        self._taken = True
        await asyncio.to_thread(self.thread.join)
        got = self.result
        if got is None or (got.experiment_ref, got.filter_string) != (
                experiment_ref, filter_string.strip()):
            return None
        return got
