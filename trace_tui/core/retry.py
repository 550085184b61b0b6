"""The one retry helper: exponential backoff with jitter, bounded by attempts and a time
budget. The client retries reads with it; the live stream, the eval worker (judge retries,
waiting for a server) and the demo's OTLP seeding take their delays from ``Backoff``."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry ``n`` (0-based): ``first_s * factor**n``, capped at ``max_s``,
    times a random factor in ``[1 - jitter, 1 + jitter]`` so clients do not retry in step."""

    first_s: float = 0.25
    factor: float = 2.0
    max_s: float = 10.0
    jitter: float = 0.25

    def delay(self, n: int) -> float:
        base = min(self.max_s, self.first_s * self.factor ** min(n, 64))
        return base * (1 - self.jitter + 2 * self.jitter * random.random())


async def retrying(
    call: Callable[[float], Awaitable[T]],
    *,
    attempts: int,
    transient: Callable[[BaseException], bool],
    backoff: Backoff,
    budget_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """``await call(remaining_s)`` until it returns; a transient error is retried after
    ``backoff.delay(n)`` while attempts remain and the retry starts within ``budget_s`` of the
    first try. ``remaining_s`` lets a retry cap its timeouts: infinite for the first try,
    then the budget left (at least 1 s). The last error is raised as is."""
    start = clock()
    for n in range(max(1, attempts)):
        remaining = math.inf if n == 0 else max(1.0, budget_s - (clock() - start))
        try:
            return await call(remaining)
        except Exception as exc:
            if not transient(exc) or n + 1 >= attempts:
                raise
            delay = backoff.delay(n)
            if clock() - start + delay >= budget_s:
                raise
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
