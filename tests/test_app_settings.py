"""Every command that opens the app applies the same settings and mouse rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from trace_tui import cli
from trace_tui.tui.app import TraceExplorerApp
from trace_tui.tui.screens.designer import open_designer


@pytest.fixture
def app_runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[TraceExplorerApp, Any]]:
    """Each app that would start, with the ``mouse`` it was started with (no terminal here)."""
    runs: list[tuple[TraceExplorerApp, Any]] = []

    def run(self: TraceExplorerApp, *args: Any, mouse: bool | None = None, **kw: Any) -> None:
        runs.append((self, mouse))

    monkeypatch.setattr(TraceExplorerApp, "run", run)
    return runs


def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    monkeypatch.setenv("TRACE_TUI_CONFIG_FILE", str(path))


@pytest.mark.parametrize(("argv", "toml", "expected"), [
    (["--no-mouse"], "", False),
    ([], "mouse = false\n", False),
    ([], "", True),
])
def test_policy_new_honours_no_mouse_and_the_settings(
        argv: list[str], toml: str, expected: bool, mlflow_uri: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, app_runs: list[tuple[TraceExplorerApp, Any]]) -> None:
    config(tmp_path, monkeypatch, toml + 'theme = "nord"\n')
    args = cli.build_parser().parse_args(
        [*argv, "policy", "new", "--tracking-uri", mlflow_uri, "--out", str(tmp_path / "p.toml")])
    assert open_designer(args) == 0
    (app, mouse), = app_runs
    assert mouse is expected and app.mouse_enabled is expected
    assert app.settings.theme == "nord"

