"""The layers hold: the start path stays light (the import contracts run in `make lint`)."""

from __future__ import annotations

from tests import start_path


def test_start_path_loads_no_heavy_module() -> None:
    loaded = start_path.loaded_modules()
    top = {m.split(".")[0] for m in loaded}
    assert "textual" in top and "trace_tui.tui.app" in loaded  # the probe built the app
    assert not top & set(start_path.HEAVY)
    assert not loaded & set(start_path.LATER)  # imported when used, after the first frame


def test_architecture_doc_lists_every_module_and_no_other() -> None:
    """docs/architecture.md names every module in one line each: the doc follows the code."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    doc = (root / "docs" / "architecture.md").read_text()
    listed = set(re.findall(r"`((?:samplers|trace_tui)/[\w/]+\.py)`", doc))
    modules = {str(p.relative_to(root)) for pkg in ("samplers", "trace_tui")
               for p in (root / pkg).rglob("*.py") if p.name != "__init__.py"}
    assert sorted(modules - listed) == [], "modules missing from docs/architecture.md"
    assert sorted(listed - modules) == [], "docs/architecture.md lists modules that are gone"


def test_long_modules_say_why_at_their_top() -> None:
    """A module past ~500 lines states at its top why it is one module."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    unexplained = []
    for path in (p for pkg in ("samplers", "trace_tui") for p in (root / pkg).rglob("*.py")):
        text = path.read_text()
        if text.count("\n") > 510 and "lines on purpose" not in (ast.get_docstring(
                ast.parse(text)) or ""):
            unexplained.append(str(path.relative_to(root)))
    assert unexplained == []
