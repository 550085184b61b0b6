"""samplers is a pure library: importing it pulls in no UI, MLflow, network or trace_tui."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("textual", "mlflow", "aiohttp", "trace_tui", "requests", "urllib3", "httpx")


def test_importing_samplers_imports_no_ui_mlflow_network_or_trace_tui() -> None:
    code = (
        "import json, sys\n"
        "import samplers, samplers.dryrun, samplers.estimators, samplers.synthetic\n"
        "import samplers.corrected, samplers.agreements, samplers.review, samplers.two_phase\n"
        "import samplers.sampler\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = json.loads(out.stdout)
    bad = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert bad == []
    assert not [m for m in loaded if m.split(".")[0] == "scipy"]  # imported lazily, when used
    assert "samplers.sampler" in loaded  # the check imported the real package


def test_samplers_source_never_imports_them() -> None:
    for path in (ROOT / "samplers").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for name in FORBIDDEN:
            assert f"import {name}" not in text and f"from {name}" not in text, (path, name)


def test_public_names_stay_the_api_after_every_submodule_is_imported() -> None:
    """The package loads its names lazily: a submodule named like a public function would
    replace that function on the package once imported (``samplers.dry_run`` did)."""
    code = (
        "import importlib, pkgutil, types, samplers\n"
        "for m in pkgutil.walk_packages(samplers.__path__, 'samplers.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = [n for n in samplers.__all__\n"
        "       if isinstance(getattr(samplers, n), types.ModuleType)]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"
