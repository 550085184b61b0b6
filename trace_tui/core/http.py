"""HTTP details of the MLflow client: credentials, error bodies, what is worth a retry."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from trace_tui.core.errors import ConfigError, MlflowApiError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Credentials:
    """Auth from MLflow's env vars. ``repr`` never shows the secret."""

    token: str | None = None
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Credentials:
        env = os.environ if env is None else env
        return cls(env.get("MLFLOW_TRACKING_TOKEN") or None,
                   env.get("MLFLOW_TRACKING_USERNAME") or None,
                   env.get("MLFLOW_TRACKING_PASSWORD") or None)

    @classmethod
    def from_url(cls, url: str) -> tuple[str, Credentials | None]:
        """``(url without user info, its user:password as Basic credentials or None)``."""
        parts = urlsplit(url)
        if "@" not in parts.netloc:
            return url, None
        userinfo, host = parts.netloc.rsplit("@", 1)
        user, _, password = userinfo.partition(":")
        return (urlunsplit(parts._replace(netloc=host)),
                cls(None, unquote(user), unquote(password)))

    @property
    def present(self) -> bool:
        return bool(self.token or self.username)

    def header(self) -> dict[str, str]:
        """The Authorization header; a value with a line break is a ConfigError (it would
        end the HTTP header early)."""
        for name, value in (("MLFLOW_TRACKING_TOKEN", self.token),
                            ("MLFLOW_TRACKING_USERNAME", self.username),
                            ("MLFLOW_TRACKING_PASSWORD", self.password)):
            if value and any(c in value for c in "\r\n\0"):
                raise ConfigError(f"{name} contains a line break or NUL character")
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        if self.username is not None and self.password is not None:
            raw = f"{self.username}:{self.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}

    def __repr__(self) -> str:
        kind = "token" if self.token else "basic" if self.username else "none"
        return f"Credentials({kind})"



def api_error(status: int, raw: bytes, path: str) -> MlflowApiError:
    """MLflow's error JSON (or FastAPI's, or an HTML page) -> one typed exception."""
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if isinstance(data, dict):
        if "error_code" in data:
            return MlflowApiError(str(data["error_code"]), str(data.get("message", "")),
                                  status, path)
        if "detail" in data:
            return MlflowApiError(f"HTTP_{status}", json.dumps(data["detail"])[:300], status, path)
    text = raw.decode(errors="replace").strip()
    if text.startswith("<"):
        text = "no such endpoint" if status == 404 else "server error page"
        return MlflowApiError(f"HTTP_{status}", f"{path}: {text}", status, path, html=True)
    return MlflowApiError(f"HTTP_{status}", f"{path}: {text[:200]}", status, path)


def is_html(content_type: str, raw: bytes) -> bool:
    return content_type == "text/html" or raw.lstrip()[:1] == b"<"


def transient(exc: BaseException) -> bool:
    """Worth a retry: no connection, no answer in time, a dropped answer, 429 or 5xx."""
    if isinstance(exc, MlflowApiError):
        return exc.status in RETRY_STATUSES
    import aiohttp  # here, not at the top: the start path reads Credentials without aiohttp

    if isinstance(exc, aiohttp.InvalidURL):
        return False
    return isinstance(exc, TimeoutError | aiohttp.ClientError | OSError)
