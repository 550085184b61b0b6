"""The modules the explorer's start path loads, checked in a fresh interpreter.

``python tests/start_path.py`` exits 1 naming any heavy module that the real start path
(``trace_tui.cli`` up to building the explorer app with its judge screens, and the first
page's fetch in its thread, here against a closed port) imports. aiohttp is imported after
the first row is painted. Run by
``make lint`` and by tests/test_architecture.py.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("mlflow", "aiohttp", "numpy", "pandas", "scipy")

PROBE = """
import sys
from trace_tui import cli
from trace_tui.config.settings import Settings
from trace_tui.tui.app import TraceExplorerApp
from trace_tui.tui.screens.judging import judge_screen_hooks
from trace_tui.tui.startup import FirstPageFetch
FirstPageFetch("http://127.0.0.1:1", None, "", timeout_s=5).start().thread.join()
TraceExplorerApp("http://127.0.0.1:1", settings=Settings(), screen_hooks=judge_screen_hooks())
print(" ".join(sorted({m.split(".")[0] for m in sys.modules})))
"""


def loaded_top_modules() -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True, timeout=60)
    return set(out.stdout.split())


def main() -> int:
    heavy = sorted(set(HEAVY) & loaded_top_modules())
    if heavy:
        print(f"start path imports {', '.join(heavy)}: import them where they are needed",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
