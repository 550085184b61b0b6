"""Per-window population counts and judge-outcome moments, mergeable across replicas.

Each replica only increments its own slot; `merge` takes, per slot and cell, the furthest-along
entry (a grow-only counter), so merging is exact, commutative and idempotent: replicas can
exchange snapshots as often as they like without double counting.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

FORMAT = "samplers.counts/1"
POP, SEL, DEFERRED, TOKENS = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class CellCount:
    """Totals over replicas for one (window, stratum) cell."""

    window_start_ms: int
    rule: str
    stratum: str
    population: int
    selected: int
    deferred: int
    trace_tokens: float


@dataclass(frozen=True, slots=True)
class Moments:
    """Sufficient statistics of judge outcomes: count, sum and sum of squares."""

    n: float = 0.0
    total: float = 0.0
    total_sq: float = 0.0

    def __add__(self, other: Moments) -> Moments:
        return Moments(self.n + other.n, self.total + other.total, self.total_sq + other.total_sq)


class _Slot:
    __slots__ = ("cells", "outcomes", "spent", "starts")

    def __init__(self) -> None:
        self.cells: dict[int, dict[str, list[float]]] = {}
        self.outcomes: dict[int, dict[tuple[str, str], list[float]]] = {}
        self.starts: dict[int, int] = {}  # window -> offset (ms) of the first trace seen
        self.spent: dict[int, list[float]] = {}  # window -> [traces, judge tokens, judge USD]


class PopulationCounts:
    """Population per (window, rule, stratum): decided, selected, deferred by the budget guard,
    and trace tokens; plus judge-outcome moments per (window, stratum, judge)."""

    def __init__(self, window_ms: int | None = None, replica_id: str | None = None) -> None:
        self.window_ms = window_ms
        self.replica_id = replica_id or uuid.uuid4().hex[:12]
        self._slots: dict[str, _Slot] = {self.replica_id: _Slot()}
        self._stratum_rule: dict[str, str] = {}
        self._rules: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ writing (local slot)

    @property
    def _local(self) -> _Slot:
        return self._slots[self.replica_id]

    def register_rule(self, name: str, type_: str, judges: Iterable[str] = ()) -> None:
        self._rules[name] = {"type": type_, "judges": list(judges)}

    def window_cells(self, window_start_ms: int) -> dict[str, list[float]]:
        """The local slot's mutable cells of one window (the sampler's hot path)."""
        cells = self._local.cells.get(window_start_ms)
        if cells is None:
            cells = self._local.cells[window_start_ms] = {}
        return cells

    def cell(self, window_start_ms: int, rule: str, stratum: str) -> list[float]:
        """The local mutable [population, selected, deferred, trace_tokens] list of a cell."""
        cells = self.window_cells(window_start_ms)
        c = cells.get(stratum)
        if c is None:
            c = cells[stratum] = [0, 0, 0, 0]
            self._stratum_rule[stratum] = rule
        return c

    def add(
        self,
        window_start_ms: int,
        rule: str,
        stratum: str,
        population: int = 1,
        selected: int = 0,
        deferred: int = 0,
        trace_tokens: float = 0,
    ) -> None:
        """Add to a cell, e.g. to seed N_h from MLflow search counts or another system."""
        c = self.cell(window_start_ms, rule, stratum)
        c[POP] += population
        c[SEL] += selected
        c[DEFERRED] += deferred
        c[TOKENS] += trace_tokens

    def window_spent(self, window_start_ms: int) -> list[float]:
        """This replica's mutable [traces, est. judge tokens, est. judge USD] of a window, kept
        here so a restarted sampler resumes its budget guard where it stopped."""
        spent = self._local.spent.get(window_start_ms)
        if spent is None:
            spent = self._local.spent[window_start_ms] = [0.0, 0.0, 0.0]
        return spent

    def note_first_offset(self, window_start_ms: int, offset_ms: int) -> None:
        """Remember how far into a window this replica started, so the planner can scale up
        the population of a window it only saw part of (a sampler started mid-window)."""
        starts = self._local.starts
        cur = starts.get(window_start_ms)
        if cur is None or offset_ms < cur:
            starts[window_start_ms] = offset_ms

    def coverage(self, window_start_ms: int) -> float:
        """Fraction of the window observed, from the earliest first offset over replicas."""
        if not self.window_ms:
            return 1.0
        offsets = [
            slot.starts[window_start_ms]
            for slot in self._slots.values()
            if window_start_ms in slot.starts
        ]
        if not offsets:
            return 1.0
        return max(0.0, 1.0 - min(offsets) / self.window_ms)

    def add_outcome(
        self, window_start_ms: int, stratum: str, judge: str, value: float, n: float = 1.0
    ) -> None:
        """Record `n` judge outcomes of `value` for a stratum of a window."""
        outs = self._local.outcomes.setdefault(window_start_ms, {})
        m = outs.get((stratum, judge))
        if m is None:
            m = outs[(stratum, judge)] = [0.0, 0.0, 0.0]
        m[0] += n
        m[1] += n * value
        m[2] += n * value * value

    def add_moments(self, window_start_ms: int, stratum: str, judge: str, moments: Moments) -> None:
        outs = self._local.outcomes.setdefault(window_start_ms, {})
        m = outs.setdefault((stratum, judge), [0.0, 0.0, 0.0])
        m[0] += moments.n
        m[1] += moments.total
        m[2] += moments.total_sq

    # ------------------------------------------------------------------ reading (all slots)

    @property
    def rules(self) -> Mapping[str, Mapping[str, Any]]:
        """Rule name -> {'type', 'judges'} as registered by the sampler."""
        return self._rules

    def rule_of(self, stratum: str) -> str:
        rule = self._stratum_rule.get(stratum)
        return rule if rule is not None else stratum.split("/", 1)[0]

    def windows(self) -> list[int]:
        ws: set[int] = set()
        for slot in self._slots.values():
            ws.update(slot.cells)
        return sorted(ws)

    def totals_by_cell(
        self, start_ms: int | None = None, end_ms: int | None = None
    ) -> dict[tuple[int, str], list[float]]:
        """(window, stratum) -> [population, selected, deferred, trace_tokens] summed over
        replicas, for windows in [start_ms, end_ms) (unsorted; the planner's fast path)."""
        acc: dict[tuple[int, str], list[float]] = {}
        for slot in self._slots.values():
            for w, cells in slot.cells.items():
                if (start_ms is not None and w < start_ms) or (end_ms is not None and w >= end_ms):
                    continue
                for stratum, c in cells.items():
                    a = acc.get((w, stratum))
                    if a is None:
                        acc[(w, stratum)] = list(c)
                    else:
                        a[0] += c[0]
                        a[1] += c[1]
                        a[2] += c[2]
                        a[3] += c[3]
        return acc

    def cells(self, start_ms: int | None = None, end_ms: int | None = None) -> list[CellCount]:
        """Cell totals over replicas for windows in [start_ms, end_ms), sorted."""
        return [
            CellCount(w, self.rule_of(s), s, int(c[POP]), int(c[SEL]), int(c[DEFERRED]), c[TOKENS])
            for (w, s), c in sorted(self.totals_by_cell(start_ms, end_ms).items())
        ]

    def population_by_stratum(
        self, start_ms: int | None = None, end_ms: int | None = None
    ) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.cells(start_ms, end_ms):
            out[c.stratum] = out.get(c.stratum, 0) + c.population
        return out

    def outcome_moments(
        self, start_ms: int | None = None, end_ms: int | None = None
    ) -> dict[tuple[str, str], Moments]:
        """(stratum, judge) -> Moments summed over replicas and windows in [start_ms, end_ms)."""
        out: dict[tuple[str, str], Moments] = {}
        for slot in self._slots.values():
            for w, outs in slot.outcomes.items():
                if (start_ms is not None and w < start_ms) or (end_ms is not None and w >= end_ms):
                    continue
                for key, m in outs.items():
                    out[key] = out.get(key, Moments()) + Moments(*m)
        return out

    def totals(self) -> dict[tuple[int, str], tuple[int, int, int]]:
        """(window, stratum) -> (population, selected, deferred); handy for comparisons."""
        return {
            (c.window_start_ms, c.stratum): (c.population, c.selected, c.deferred)
            for c in self.cells()
        }

    # ------------------------------------------------------------------ merge / persist

    def merge(self, other: PopulationCounts) -> PopulationCounts:
        """Merge another snapshot in place (exact and idempotent); returns self."""
        if (
            self.window_ms is not None
            and other.window_ms is not None
            and self.window_ms != other.window_ms
        ):
            raise ValueError(
                f"cannot merge counts with window {other.window_ms} ms into {self.window_ms} ms"
            )
        if self.window_ms is None:
            self.window_ms = other.window_ms
        for rid, slot in other._slots.items():
            mine = self._slots.setdefault(rid, _Slot())
            for w, cells in slot.cells.items():
                dst = mine.cells.setdefault(w, {})
                for stratum, c in cells.items():
                    cur = dst.get(stratum)
                    if cur is None:
                        dst[stratum] = list(c)
                    elif tuple(c) > tuple(cur):
                        cur[:] = c
            for w, outs in slot.outcomes.items():
                dst_o = mine.outcomes.setdefault(w, {})
                for key, m in outs.items():
                    cur_o = dst_o.get(key)
                    if cur_o is None:
                        dst_o[key] = list(m)
                    elif m[0] > cur_o[0]:
                        cur_o[:] = m
            for w, off in slot.starts.items():
                if w not in mine.starts or off < mine.starts[w]:
                    mine.starts[w] = off
            for w, sp in slot.spent.items():
                cur_s = mine.spent.get(w)
                if cur_s is None:
                    mine.spent[w] = list(sp)
                elif tuple(sp) > tuple(cur_s):
                    cur_s[:] = sp
        for s, r in other._stratum_rule.items():
            self._stratum_rule.setdefault(s, r)
        for name, info in other._rules.items():
            self._rules.setdefault(name, dict(info))
        return self

    def copy(self, replica_id: str | None = None) -> PopulationCounts:
        """Deep copy; with `replica_id`, the copy writes to that (new) slot."""
        c = PopulationCounts.from_dict(self.to_dict())
        if replica_id is not None:
            c.replica_id = replica_id
            c._slots.setdefault(replica_id, _Slot())
        return c

    def prune(self, before_ms: int) -> None:
        """Forget windows starting before `before_ms` (use the same cutoff on every replica)."""
        for slot in self._slots.values():
            for w in [w for w in slot.cells if w < before_ms]:
                del slot.cells[w]
            for w in [w for w in slot.outcomes if w < before_ms]:
                del slot.outcomes[w]
            for table in (slot.starts, slot.spent):
                for w in [w for w in table if w < before_ms]:
                    del table[w]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable snapshot (all replica slots)."""
        return {
            "format": FORMAT,
            "window_ms": self.window_ms,
            "replica_id": self.replica_id,
            "rules": {k: dict(v) for k, v in self._rules.items()},
            "strata": dict(self._stratum_rule),
            "replicas": {
                rid: {
                    "cells": [
                        [w, s, *c]
                        for w, cells in sorted(slot.cells.items())
                        for s, c in sorted(cells.items())
                    ],
                    "outcomes": [
                        [w, s, j, *m]
                        for w, outs in sorted(slot.outcomes.items())
                        for (s, j), m in sorted(outs.items())
                    ],
                    "starts": [[w, off] for w, off in sorted(slot.starts.items())],
                    "spent": [[w, *sp] for w, sp in sorted(slot.spent.items())],
                }
                for rid, slot in sorted(self._slots.items())
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], replica_id: str | None = None) -> PopulationCounts:
        """Restore a snapshot. By default keep writing to the saved replica slot (restart);
        pass a distinct `replica_id` when several live processes start from one snapshot."""
        if data.get("format") != FORMAT:
            raise ValueError(f"expected counts format {FORMAT!r}, got {data.get('format')!r}")
        out = cls(window_ms=data.get("window_ms"), replica_id=replica_id or data["replica_id"])
        out._rules = {k: dict(v) for k, v in data.get("rules", {}).items()}
        out._stratum_rule = dict(data.get("strata", {}))
        for rid, slot_d in data.get("replicas", {}).items():
            slot = out._slots.setdefault(rid, _Slot())
            for w, s, *c in slot_d.get("cells", []):
                slot.cells.setdefault(int(w), {})[s] = list(c)
            for w, s, j, *m in slot_d.get("outcomes", []):
                slot.outcomes.setdefault(int(w), {})[(s, j)] = list(m)
            for w, off in slot_d.get("starts", []):
                slot.starts[int(w)] = int(off)
            for w, *sp in slot_d.get("spent", []):
                slot.spent[int(w)] = [float(x) for x in sp]
        return out

    def to_frame(self):  # -> pandas.DataFrame (imported lazily: pandas is slow to import)
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "window_start_ms": c.window_start_ms,
                    "rule": c.rule,
                    "stratum": c.stratum,
                    "population": c.population,
                    "selected": c.selected,
                    "deferred": c.deferred,
                    "trace_tokens": c.trace_tokens,
                }
                for c in self.cells()
            ],
            columns=[
                "window_start_ms",
                "rule",
                "stratum",
                "population",
                "selected",
                "deferred",
                "trace_tokens",
            ],
        )
