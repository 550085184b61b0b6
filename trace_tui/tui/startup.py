"""What the commands that open the app do before it: settings from the command line, and the
list's first page fetched while Textual is still being imported.

Light on purpose (no textual, no aiohttp at import): ``cli`` calls this before importing the
app. The first page is fetched in a thread over a plain socket (HTTP/1.0, one request per
connection: no ``urllib.request``/``http.client``, whose imports, email parsing included,
cost ~25 ms of CPU and compete for the GIL while Textual imports; aiohttp costs ~0.15 s), so
the server works on the experiment lookup and the search while this process imports Textual;
the explorer's first frame waits (bounded) for that page and shows its rows, then the app
imports the aiohttp client and loads the rest of the buffer as usual. Same credentials as
the client (env vars, else the URL's user:password); no proxy from the environment (the
client ignores it too); any failure (a redirect, a non-2xx answer, an unexpected framing)
just leaves the load to the app. As many rows as the terminal has lines: the rest of the
list loads after the first paint.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trace_tui.config.settings import Settings

if TYPE_CHECKING:
    from trace_tui.core.experiments import Experiment
    from trace_tui.core.model import TraceInfo

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


class _Caller:
    """JSON calls to one server, HTTP/1.0 over a socket (TLS for https): the answer is read
    to the end of the connection. Raises on anything but a 2xx JSON object."""

    def __init__(self, uri: str, timeout_s: float) -> None:
        from urllib.parse import urlsplit

        from trace_tui.core.http import Credentials

        bare, from_url = Credentials.from_url(uri.rstrip("/"))
        env = Credentials.from_env()
        credentials = env if env.present or from_url is None else from_url
        parts = urlsplit(bare)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL")
        self.tls = parts.scheme == "https"
        self.host, self.port = parts.hostname, parts.port or (443 if self.tls else 80)
        self.prefix, self.timeout_s = parts.path.rstrip("/"), timeout_s
        headers = {"Host": parts.netloc, "User-Agent": "trace-tui",
                   "Accept": "application/json", "Connection": "close",
                   **credentials.header()}
        self.head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._tls_context: Any = None

    def __call__(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        data = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {self.prefix}{path} HTTP/1.0\r\n{self.head}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        status_line, content = self._exchange((head + "\r\n").encode("latin-1") + data)
        version, status, *_ = [*status_line.split(None, 2), ""]
        if not version.startswith("HTTP/") or not status.startswith("2"):
            raise OSError(f"no 2xx answer: {status_line[:60]!r}")
        out = json.loads(content)
        if not isinstance(out, dict):
            raise ValueError("not an MLflow answer")
        return out

    def _exchange(self, request: bytes) -> tuple[str, bytes]:
        """(status line, body): the body ends at Content-Length, else at the end of the
        connection (HTTP/1.0); a chunked answer (not for a 1.0 request) raises."""
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        try:
            if self.tls:
                if self._tls_context is None:
                    import ssl

                    self._tls_context = ssl.create_default_context()
                sock = self._tls_context.wrap_socket(sock, server_hostname=self.host)
            sock.sendall(request)
            raw, length, start = b"", -1, -1
            while chunk := sock.recv(65536):
                raw += chunk
                if start < 0 and b"\r\n\r\n" in raw:
                    start = raw.index(b"\r\n\r\n") + 4
                    status_line, *lines = raw[:start - 4].decode("latin-1").split("\r\n")
                    fields = {k.strip().lower(): v.strip()
                              for k, _, v in (line.partition(":") for line in lines)}
                    if "transfer-encoding" in fields:
                        raise OSError("unexpected framing")
                    length = int(fields.get("content-length", -1))
                if 0 <= length <= len(raw) - start:
                    break
            if start < 0:
                raise OSError("no HTTP answer")
            body = raw[start:]
            return status_line, body if length < 0 else body[:length]
        finally:
            sock.close()


def _query(**params: str) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


def _or_none(fn: Any) -> Any:
    try:
        return fn()
    except Exception:
        return None
