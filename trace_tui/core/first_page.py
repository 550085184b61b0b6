"""The explorer's first page in one light call chain: the experiment, then the newest traces.

Runs in a thread while the app imports Textual (see ``trace_tui.tui.startup``), so it avoids
the aiohttp client and ``urllib.request``/``http.client`` (their imports, email parsing
included, cost ~25 ms of CPU and compete for the GIL): HTTP/1.0 over a plain socket (TLS for
https), one request per connection. Same credentials as the client (env vars, else the URL's
user:password); no proxy from the environment (the client ignores it too). Any failure (a
redirect, a non-2xx answer, an unexpected framing) raises: the caller then leaves the load to
the app's client, which reports errors itself.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any

from trace_tui.core.experiments import Experiment
from trace_tui.core.model import TraceInfo


@dataclass(frozen=True)
class FirstPage:
    """The experiment and the newest traces of the list, for one experiment ref and filter."""

    experiment_ref: str | None
    filter_string: str
    experiment: Experiment
    infos: list[TraceInfo]


def fetch_first_page(uri: str, experiment_ref: str | None, filter_string: str, *,
                     timeout_s: float, rows: int) -> FirstPage:
    """The experiment ``experiment_ref`` (id or name; None: the most recently updated) and
    its newest ``rows`` traces matching ``filter_string``."""
    from trace_tui.core.experiments import Experiment
    from trace_tui.core.model import TraceInfo

    call = _Caller(uri, timeout_s)
    ref = experiment_ref
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
        "max_results": rows,
    }
    if filter_string:
        body["filter"] = filter_string
    data = call("POST", "/api/3.0/mlflow/traces/search", body)
    infos = [TraceInfo.from_json(t) for t in data.get("traces", [])]
    return FirstPage(experiment_ref, filter_string, exp, infos)


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
