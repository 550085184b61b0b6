"""The layers hold: the start path stays light (the import contracts run in `make lint`)."""

from __future__ import annotations

from tests import start_path


def test_start_path_loads_no_heavy_module() -> None:
    loaded = start_path.loaded_top_modules()
    assert "textual" in loaded  # the probe really built the app
    assert not loaded & set(start_path.HEAVY)
