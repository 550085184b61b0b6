"""What the commands that open the app do before it: settings from the command line, and the
list's first page fetched while Textual is still being imported.

Light on purpose (no textual, no aiohttp at import): ``cli`` calls this before importing the
app. The first page is fetched in a thread with the standard library (``urllib``; aiohttp
costs ~0.15 s of import, most of it loading the certificate store, and would hold the GIL
while Textual imports), so the server works on the experiment lookup and the search while
this process imports Textual and paints its first frame; the app's stream worker shows that
page at once, then imports the aiohttp client and loads the rest of the buffer as usual.
Same credentials as the client (env vars, else the URL's user:password); no proxy from the
environment (the client ignores it too); any failure just leaves the load to the app.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trace_tui.config.settings import Settings

if TYPE_CHECKING:
    from trace_tui.core.experiments import Experiment
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
        try:
            self.result = self._fetch()
        except Exception:  # a thread must not print a traceback over the app
            self.result = None  # the app's own load retries and reports it

    def _fetch(self) -> FirstPage:
        from trace_tui.core.experiments import Experiment
        from trace_tui.core.model import TraceInfo

        call = _Caller(self.uri, self.timeout_s)
        ref = self.experiment_ref
        exp: Experiment | None = None
        if ref is None:  # the most recently updated experiment, as resolve_experiment
            found = call("POST", "/api/2.0/mlflow/experiments/search",
                         {"max_results": 1000, "order_by": ["last_update_time DESC"]})
            experiments = [Experiment.from_json(e) for e in found.get("experiments", [])]
            exp = ([e for e in experiments if e.experiment_id != "0"] or experiments)[0]
        else:
            if ref.isdigit():
                exp = _or_none(lambda: Experiment.from_json(call(
                    "GET", "/api/2.0/mlflow/experiments/get?"
                    + _query(experiment_id=ref))["experiment"]))
            if exp is None:
                exp = Experiment.from_json(call(
                    "GET", "/api/2.0/mlflow/experiments/get-by-name?"
                    + _query(experiment_name=ref))["experiment"])
        body: dict[str, Any] = {
            "locations": [{"type": "MLFLOW_EXPERIMENT",
                           "mlflow_experiment": {"experiment_id": exp.experiment_id}}],
            "max_results": self.rows,
        }
        if self.filter_string:
            body["filter"] = self.filter_string
        data = call("POST", "/api/3.0/mlflow/traces/search", body)
        infos = [TraceInfo.from_json(t) for t in data.get("traces", [])]
        return FirstPage(self.experiment_ref, self.filter_string, exp, infos)

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


class _Caller:
    """JSON calls to one server with ``urllib`` (HTTPError on a non-2xx answer)."""

    def __init__(self, uri: str, timeout_s: float) -> None:
        import urllib.request

        from trace_tui.core.http import Credentials

        bare, from_url = Credentials.from_url(uri.rstrip("/"))
        env = Credentials.from_env()
        credentials = env if env.present or from_url is None else from_url
        self.base, self.timeout_s = bare, timeout_s
        self.headers = {"User-Agent": "trace-tui", "Accept": "application/json",
                        **credentials.header()}
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.request = urllib.request.Request

    def __call__(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = self.request(self.base + path, data=data, headers=headers, method=method)
        with self.opener.open(req, timeout=self.timeout_s) as resp:
            out = json.loads(resp.read())
        if not isinstance(out, dict):
            raise ValueError("not an MLflow answer")
        return out


def _query(**params: str) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


def _or_none(fn: Any) -> Any:
    try:
        return fn()
    except Exception:
        return None
