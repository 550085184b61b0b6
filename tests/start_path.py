"""The modules the explorer's start path loads, checked in a fresh interpreter.

``python tests/start_path.py`` exits 1 naming any heavy module that the real start path
(``trace_tui.cli`` parsing the explorer's flags, resolving ``--tracking-uri``, up to building
the explorer app with its judge screens, and the first page's fetch in its thread, here
against a closed port) imports. aiohttp is imported after the first row is painted. It also
names any module of ``LATER`` on that path: what the first frame does not need is imported
when it is used (docs/performance.md, first painted row). Run by ``make lint`` and by
tests/test_architecture.py.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("mlflow", "aiohttp", "numpy", "pandas", "scipy")
# Not needed for the explorer's first frame (full module names).
LATER = (
    "urllib.request", "http.client", "email",  # the first page comes over a plain socket
    "trace_tui.server.embedded",  # only without a tracking URI
    "trace_tui.core.client", "trace_tui.core.stream",  # aiohttp: after the first row
    "trace_tui.tui.commands",  # the palette's provider: when the palette opens
    "trace_tui.tui.screens.modals", "trace_tui.tui.screens.help",
    "trace_tui.tui.screens.trace_view", "trace_tui.tui.screens.sampling",
    "trace_tui.tui.screens.evaluation", "trace_tui.tui.screens.review",
    "trace_tui.tui.screens.session", "trace_tui.tui.screens.compare",
    "trace_tui.tui.screens.designer", "trace_tui.tui.console",
)

PROBE = """
import sys
from trace_tui import cli
cli.parse_args(["--tracking-uri", "http://127.0.0.1:1"])
from trace_tui.server.connect import connect
connect("http://127.0.0.1:1")
from trace_tui.config.settings import Settings
from trace_tui.tui.app import TraceExplorerApp
from trace_tui.tui.screens.judging import judge_screen_hooks
from trace_tui.tui.startup import FirstPageFetch
fetch = FirstPageFetch("http://127.0.0.1:1", None, "", timeout_s=5).start()
fetch.thread.join()
TraceExplorerApp("http://127.0.0.1:1", settings=Settings(), screen_hooks=judge_screen_hooks(),
                 first_page=fetch)
print(" ".join(sorted(sys.modules)))
"""


def loaded_modules() -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True, timeout=60)
    return set(out.stdout.split())


def main() -> int:
    loaded = loaded_modules()
    heavy = sorted(set(HEAVY) & {m.split(".")[0] for m in loaded})
    later = sorted(set(LATER) & loaded)
    if heavy:
        print(f"start path imports {', '.join(heavy)}: import them where they are needed",
              file=sys.stderr)
    if later:
        print(f"start path imports {', '.join(later)}: the first frame does not need them",
              file=sys.stderr)
    return 1 if heavy or later else 0


if __name__ == "__main__":
    raise SystemExit(main())
