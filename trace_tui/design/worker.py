"""Previews computed in a separate process, so the UI's event loop never waits on the GIL.

A thread computing a preview in pure Python holds the GIL most of the time: keypresses then
wait for it in 5 ms slices, and a few hops add up to 100+ ms. The window is sent once, when
the process starts; each preview sends only the policy text and gets back the small
`Preview`.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from .preview import Preview, preview
from .window import DesignWindow

_WINDOW: DesignWindow | None = None


def _init(window: DesignWindow, nice: int = 0) -> None:
    global _WINDOW
    _WINDOW = window
    if nice and hasattr(os, "nice"):
        os.nice(nice)  # on a busy machine the UI process gets the CPU first


def _run(text: str, source: str, prior: float) -> tuple[Preview | None, str]:
    from samplers import PolicyError, parse_policy

    assert _WINDOW is not None
    try:
        return preview(parse_policy(text, source), _WINDOW, prior=prior), ""
    except PolicyError as exc:
        return None, str(exc)


class PreviewProcess:
    """One worker process holding one window; `compute` blocks (call it from a thread)."""

    def __init__(self, window: DesignWindow) -> None:
        self.window = window
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the app has threads (a forked lock may be held forever)
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init, initargs=(self.window, 10))
        return self._pool

    def submit(self, text: str, source: str, prior: float) -> Future[Any]:
        return self._executor().submit(_run, text, source, prior)

    def compute(self, text: str, source: str, prior: float) -> tuple[Preview | None, str]:
        try:
            return self.submit(text, source, prior).result()
        except Exception:  # a broken process (killed, unpicklable): compute here instead
            self.close()
            _init(self.window)
            return _run(text, source, prior)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
