"""Shared fixtures: one real, lean MLflow server for the whole suite, seeded demo data,
isolated XDG dirs. Nothing here mocks MLflow or patches HTTP."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from trace_tui.demo.traffic import ensure_experiment, seed_bulk
from trace_tui.server.embedded import EmbeddedServer

SEED_TRACES = 600  # more than one 500-trace search page


@pytest.fixture(scope="session", autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep the suite away from the user's config, data and MLflow env."""
    home = tmp_path_factory.mktemp("home")
    saved = dict(os.environ)
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME",
                "MLFLOW_TRACKING_PASSWORD"):
        os.environ.pop(key, None)
    os.environ.update({
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CACHE_HOME": str(home / "cache"),  # the span cache
        "TRACE_TUI_CONFIG_FILE": str(home / "config" / "trace-tui" / "config.toml"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "TEXTUAL_ANIMATIONS": "none",
    })
    yield home
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def server_handle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """The one MLflow server of the suite (a handle, so a test can restart it)."""
    server = EmbeddedServer(tmp_path_factory.mktemp("mlflow"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mlflow_uri(server_handle: EmbeddedServer) -> str:
    return server_handle.uri


@dataclass(frozen=True)
class Seeded:
    uri: str
    experiment_id: str
    experiment_name: str
    trace_ids: list[str]


@pytest.fixture(scope="session")
def seeded(mlflow_uri: str) -> Seeded:
    """600 demo traces (RAG + agents, ~5% errors) delivered through OTLP, read-only."""
    name = "seeded-demo"
    exp = ensure_experiment(mlflow_uri, name)
    ids = seed_bulk(mlflow_uri, exp, SEED_TRACES, seed=11)
    return Seeded(mlflow_uri, exp, name, ids)


@pytest.fixture
def fresh_experiment(mlflow_uri: str) -> tuple[str, str]:
    """A new empty experiment per test: (name, id)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    return name, ensure_experiment(mlflow_uri, name)
