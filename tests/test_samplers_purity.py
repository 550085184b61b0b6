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
        "import samplers, samplers.dry_run, samplers.estimators, samplers.synthetic\n"
        "import samplers.corrected, samplers.agreement, samplers.review, samplers.two_phase\n"
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
