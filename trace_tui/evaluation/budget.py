"""Evaluation budgets as limits: reserve before a judge call starts, settle when it ends.

A trace is started only when the budget holds it: one more trace under ``max_traces``, and
for each of its pending judge calls an estimate (the mean tokens and dollars of that judge's
calls so far that reported usage) under ``max_tokens`` / ``max_usd``, counted together with
what is spent and what the calls in flight hold. A judge with no such call yet has no
estimate: its first call runs alone. When the budget cannot hold a trace but calls are in
flight, the reservation waits for them (they may leave room); with nothing in flight it is
refused and the run stops. So the overshoot is at most what the calls in flight when the
limit is reached use beyond their estimates (retries of a call included).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

UNPRICED_CALLS = 3  # calls without usage after which a judge is taken to report none


@dataclass
class Reservation:
    judges: list[str]
    tokens: float
    usd: float


@dataclass
class _JudgeCost:
    calls: int = 0
    priced: int = 0  # calls that reported tokens (a failed call usually reports none)
    tokens: float = 0.0
    usd: float = 0.0


@dataclass
class Budget:
    """Traces started, tokens and dollars spent and reserved, against the run's limits."""

    options: Any  # EvalOptions: max_traces, max_tokens, max_usd
    started: int = 0
    spent_tokens: float = 0.0
    spent_usd: float = 0.0
    reserved_tokens: float = 0.0
    reserved_usd: float = 0.0
    in_flight: dict[str, int] = field(default_factory=dict)  # judge -> calls reserved
    reason: str | None = None
    _costs: dict[str, _JudgeCost] = field(default_factory=dict)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def estimate(self, judge: str) -> tuple[float, float] | None:
        """Mean (tokens, dollars) of ``judge``'s calls that reported usage; None before one."""
        cost = self._costs.get(judge)
        if cost is not None and cost.priced:
            return cost.tokens / cost.priced, cost.usd / cost.priced
        if cost is not None and cost.calls >= UNPRICED_CALLS:
            return 0.0, 0.0  # a judge that never reports its usage: nothing to hold
        return None

    async def reserve(self, judges: Sequence[str]) -> Reservation | None:
        """Hold the budget for one trace and its judge calls; None once it is spent."""
        while True:
            verdict = self._try(judges)
            if verdict == "wait":
                self._changed.clear()
                await self._changed.wait()
                continue
            if verdict == "stop":
                return None
            estimates = [self.estimate(j) or (0.0, 0.0) for j in judges]
            held = Reservation(list(judges), sum(e[0] for e in estimates),
                               sum(e[1] for e in estimates))
            self.started += 1
            self.reserved_tokens += held.tokens
            self.reserved_usd += held.usd
            for j in judges:
                self.in_flight[j] = self.in_flight.get(j, 0) + 1
            return held

    def _try(self, judges: Sequence[str]) -> str:
        o = self.options
        if self.reason is not None:
            return "stop"
        if o.max_traces is not None and self.started >= o.max_traces:
            return self._refuse(f"max_traces={o.max_traces}")
        busy = any(self.in_flight.values())
        for limit, spent, reserved, index, label in (
                (o.max_tokens, self.spent_tokens, self.reserved_tokens, 0, "max_tokens"),
                (o.max_usd, self.spent_usd, self.reserved_usd, 1, "max_usd")):
            if limit is None or not judges:
                continue
            if spent >= limit:
                return "wait" if busy else self._refuse(f"{label}={limit}")
            estimates = [self.estimate(j) for j in judges]
            if any(e is None for e in estimates):  # unknown cost: run it alone
                if busy:
                    return "wait"
                continue
            need = sum(e[index] for e in estimates if e is not None)
            if spent + reserved + need > limit:
                return "wait" if busy else self._refuse(f"{label}={limit}")
        return "go"

    def _refuse(self, reason: str) -> str:
        self.reason = reason
        return "stop"

    def spend(self, judge: str, tokens: float, usd: float) -> None:
        """One finished judge call (each attempt counts)."""
        cost = self._costs.setdefault(judge, _JudgeCost())
        cost.calls += 1
        if tokens or usd:
            cost.priced += 1
            cost.tokens += tokens
            cost.usd += usd
        self.spent_tokens += tokens
        self.spent_usd += usd

    def release(self, held: Reservation) -> None:
        """The trace is over: its estimates leave the reservation (spend() has the actuals)."""
        self.reserved_tokens -= held.tokens
        self.reserved_usd -= held.usd
        for j in held.judges:
            self.in_flight[j] -= 1
        self._changed.set()
