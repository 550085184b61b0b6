"""Typed errors shared by the client, the CLI and the app. Messages are one line."""

from __future__ import annotations


class TraceTuiError(Exception):
    """Base class: ``str(exc)`` is a one-line message fit for a status line or stderr."""


class MlflowApiError(TraceTuiError):
    """The MLflow server answered with an error (its ``error_code`` and ``message``)."""

    def __init__(self, error_code: str, message: str, status: int, endpoint: str,
                 *, html: bool = False) -> None:
        self.error_code = error_code
        self.html = html  # the body was an HTML page: a proxy or a web server, not MLflow
        self.message = " ".join(message.split())  # the server's text may span lines
        self.status = status
        self.endpoint = endpoint
        super().__init__(f"{error_code}: {self.message}")


class MlflowUnavailableError(TraceTuiError):
    """The server could not be reached (connection refused, timeout, 5xx after retries)."""


class ConfigError(TraceTuiError):
    """Bad user configuration: a settings file, a flag, an environment variable."""


class NotMlflowServerError(MlflowUnavailableError):
    """The URL answers, but not as an MLflow server does (an HTML page, not JSON, JSON
    without the fields every MLflow answer has). Exit code 3, like an unreachable server."""
