"""Tracking URIs: the one check of what a user typed, and the one redaction for display."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact_uri(uri: str) -> str:
    """``uri`` with any user info (``user:password@``) replaced by ``***@``: use it wherever
    a URI is displayed or logged. Text that is not a URL comes back unchanged."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        parts = None
    if parts is not None and "@" in parts.netloc:
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit(parts._replace(netloc=f"***@{host}"))
    if parts is None and "@" in uri:  # unparseable, e.g. "http://u:p@[::1": cut the userinfo
        scheme, sep, rest = uri.partition("://")
        return f"{scheme}{sep}***@{rest.rsplit('@', 1)[1]}" if sep else "***@" + \
            uri.rsplit("@", 1)[1]
    return uri


def check_tracking_uri(uri: str) -> str:
    """The URI without a trailing slash, or ValueError with a one-line reason (redacted)."""
    shown = redact_uri(uri)
    try:
        parts = urlsplit(uri.strip())
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError as exc:
        why = "port must be a number 1-65535" if "port" in str(exc).lower() else str(exc)
        raise ValueError(f"tracking URI {shown!r} is not a valid URL ({why})") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"tracking URI {shown!r} is not an http(s) URL: trace-tui talks to "
                         "an MLflow server (start one with `trace-tui server`)")
    if not parts.hostname:
        raise ValueError(f"tracking URI {shown!r} has no host")
    if port == 0:
        raise ValueError(f"tracking URI {shown!r}: port must be 1-65535")
    if any(c.isspace() for c in uri.strip()):
        raise ValueError(f"tracking URI {shown!r} contains whitespace")
    return uri.strip().rstrip("/")
