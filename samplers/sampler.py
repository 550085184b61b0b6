"""The sampler: first-match rules, per-window fixed rates, deterministic trace-id decisions."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType

from .classify import UNMATCHED, CompiledRule, compile_lookup, compile_rules
from .counts import PopulationCounts
from .outcomes import outcome_value
from .plan import Plan, build_plan, history_from_counts
from .policy import JudgeDecl, Policy
from .randomness import threshold, threshold_probability
from .record import TraceRecord

_NO_JUDGES: Mapping[str, float] = MappingProxyType({})
_KEPT_WINDOWS = 16


@dataclass(frozen=True)
class Decision:
    """One sampling decision. `probability` is the trace's inclusion probability under the
    window's plan (0 for drops), `weight` = 1/probability (0 when probability is 0);
    `judges` maps each judge to run on a selected trace to its own inclusion probability."""

    trace_id: str
    selected: bool
    rule: str
    stratum: str
    probability: float
    weight: float
    window_start_ms: int
    reason: str
    judges: Mapping[str, float] = field(default_factory=lambda: _NO_JUDGES)
    policy_version: str = ""

    def to_dict(self) -> dict[str, object]:
        """Plain dict in field order (judges as a dict), e.g. to store as tags or JSON."""
        d = {f: getattr(self, f) for f in _FIELDS}
        d["judges"] = dict(self.judges)
        return d


_FIELDS = tuple(f.name for f in fields(Decision))
# A frozen dataclass builds through object.__setattr__ once per field (~2.5 us for 10 fields);
# the hot path instead fills the instance __dict__ from a per-stratum template (~0.3 us).
_new = object.__new__


class _Entry:
    """Everything fixed for one (window, stratum): thresholds, probabilities, the counts cell."""

    __slots__ = (
        "all_full", "budget", "cell", "guarded", "judge_map", "judges", "no", "p", "pacing",
        "rule", "stratum", "t", "tok_base", "tok_factor", "usd_base", "usd_factor", "w", "yes",
    )  # fmt: skip

    def __init__(
        self, rule: str, stratum: str, rate: float, judges: list[JudgeDecl], cell: list,
        reason_yes: str, reason_no: str, guarded: bool, window: int, version: str,
    ) -> None:  # fmt: skip
        fmax = max((j.sample_fraction for j in judges), default=1.0)
        self.rule = rule
        self.stratum = stratum
        self.t = threshold(rate * fmax)
        self.p = threshold_probability(self.t)
        self.w = 1.0 / self.p if self.p > 0 else 0.0
        self.cell = cell
        self.guarded = guarded
        self.judges = []
        for j in judges:
            tj = threshold(rate * j.sample_fraction)
            self.judges.append((j.name, tj, threshold_probability(tj), j))
        self.all_full = all(j.sample_fraction == fmax for j in judges)
        self.judge_map = MappingProxyType({name: pj for name, _, pj, _ in self.judges})
        self.tok_base = sum(j.est_tokens for j in judges)
        self.tok_factor = sum(j.trace_token_factor for j in judges)
        self.usd_base = sum(j.est_tokens * j.usd_per_1k_tokens / 1000 for j in judges)
        self.usd_factor = sum(j.trace_token_factor * j.usd_per_1k_tokens / 1000 for j in judges)
        common = {"rule": rule, "stratum": stratum, "probability": self.p, "weight": self.w,
                  "window_start_ms": window, "policy_version": version}  # fmt: skip
        self.yes = {"selected": True, **common, "reason": reason_yes, "judges": self.judge_map}
        self.no = {"selected": False, **common, "reason": reason_no, "judges": _NO_JUDGES}
        self.budget = {**self.no, "reason": "budget"}
        self.pacing = {**self.no, "reason": "pacing"}


class _WindowState:
    __slots__ = ("admitted", "caches", "cells", "entries", "plan", "spent")

    def __init__(self, plan: Plan, cells: dict, spent: list[float], n_rules: int) -> None:
        self.plan = plan
        self.cells = cells
        self.spent = spent
        self.caches: list[dict] = [{} for _ in range(n_rules + 1)]
        self.entries: dict[str, _Entry] = {}
        self.admitted: dict[str, int] = dict(plan.keys_per_rule)


class Sampler:
    """Decides which traces are judged.

    Decisions depend only on the trace id, the record's fields and the window's plan; the plan
    depends only on `counts` of earlier windows. Replicas that merge counts between windows
    therefore make identical decisions (see docs/policy.md, 'Replicas').
    """

    def __init__(
        self,
        policy: Policy,
        counts: PopulationCounts | None = None,
        clock: Callable[[], float] = time.time,
        replica_id: str | None = None,
    ) -> None:
        self.policy = policy
        self.clock = clock
        self._wms = policy.budget.window_ms
        if counts is None:
            counts = PopulationCounts(self._wms, replica_id)
        elif replica_id is not None and replica_id != counts.replica_id:
            raise ValueError(
                f"replica_id {replica_id!r} differs from the counts' {counts.replica_id!r}; "
                "use counts.copy(replica_id=...) or PopulationCounts.from_dict(d, replica_id)"
            )
        elif counts.window_ms is None:
            counts.window_ms = self._wms
        elif counts.window_ms != self._wms:
            raise ValueError(
                f"counts use {counts.window_ms} ms windows but the policy uses {self._wms} ms"
            )
        self.counts = counts
        self._compiled, self._unmatched = compile_rules(policy)
        self._lookup = compile_lookup(self._compiled, self._unmatched, self._resolve)
        for r in policy.rules:
            counts.register_rule(r.name, r.type, r.judges)
        counts.register_rule(UNMATCHED, "unmatched", ())
        rnd = policy.randomness
        self._id_bits = rnd.source != "hash" and not rnd.salt
        self._salt = rnd.salt
        self._version = policy.version_tag
        b = policy.budget
        per = 1.0 / b.replicas
        self._limits = (
            float("inf") if b.max_traces is None else b.max_traces * per,
            float("inf") if b.max_tokens is None else b.max_tokens * per,
            float("inf") if b.max_usd is None else b.max_usd * per,
        )
        self._guard = any(x != float("inf") for x in self._limits)
        self._pace = b.pacing == "even"
        self._burst = b.burst
        self._plans: dict[int, Plan] = {}
        self._windows: dict[int, _WindowState] = {}
        self._w: int | None = None
        self._state: _WindowState | None = None
        self.decide = self._compile_decide()  # type: ignore[assignment]

    # ------------------------------------------------------------------ plans and windows

    def window_of(self, timestamp_ms: int) -> int:
        return timestamp_ms - timestamp_ms % self._wms

    def plan(self, window_start_ms: int | None = None) -> Plan:
        """The (cached) plan of a window; default: the current window by the clock."""
        if window_start_ms is None:
            window_start_ms = self.window_of(int(self.clock() * 1000))
        plan = self._plans.get(window_start_ms)
        if plan is None:
            history = history_from_counts(self.policy, self.counts, window_start_ms)
            plan = self._plans[window_start_ms] = build_plan(self.policy, history, window_start_ms)
            if len(self._plans) > _KEPT_WINDOWS:
                del self._plans[min(self._plans)]
        return plan

    def _activate(self, w: int, ts: int) -> _WindowState:
        st = self._windows.get(w)
        self.counts.note_first_offset(w, ts - w)
        if st is None:
            self._prune(w)
            st = _WindowState(
                self.plan(w), self.counts.window_cells(w), self.counts.window_spent(w),
                len(self._compiled),
            )  # fmt: skip
            self._windows[w] = st
            if len(self._windows) > _KEPT_WINDOWS:
                del self._windows[min(self._windows)]
        self._w = w
        self._state = st
        for cr in (*self._compiled, self._unmatched):
            cr.cache.clear()
            cr.cache.update(st.caches[cr.index])
        return st

    def _prune(self, w: int) -> None:
        """Bound the counts: forget windows older than `keep_windows` (never fewer than the
        forecast lookback); every replica uses the same cutoff for the same window."""
        lookback = max((r.forecast_params()[1] for r in self.policy.rules), default=1)
        keep = max(self.policy.budget.keep_windows, lookback + 1)
        self.counts.prune(w - keep * self._wms)

    def _resolve(self, cr: CompiledRule, key: object) -> _Entry:
        st = self._state
        assert st is not None
        rule = cr.rule
        key_text = cr.render(key) if cr.render is not None else None  # type: ignore[arg-type]
        stratum, rate, new = rule.resolve(key_text, st.plan, st.admitted)
        entry = st.entries.get(stratum)
        if entry is None:
            cell = st.cells.get(stratum)
            if cell is None:
                cell = self.counts.cell(self._w, rule.name, stratum)  # type: ignore[arg-type]
            reason_yes, reason_no = rule.reasons(new)
            entry = _Entry(
                rule.name, stratum, rate, cr.judges, cell, reason_yes, reason_no,
                rule.guarded, self._w, self._version,  # type: ignore[arg-type]
            )  # fmt: skip
            st.entries[stratum] = entry
        cr.cache[key] = entry
        st.caches[cr.index][key] = entry
        return entry

    # ------------------------------------------------------------------ deciding

    def decide(self, record: TraceRecord) -> Decision:
        """Decide one trace (the window comes from the record's timestamp, not the clock).

        __init__ shadows this method with the closure from `_compile_decide` (same behaviour,
        ~1 us faster: constants become closure cells instead of attribute lookups)."""
        return self._compile_decide()(record)

    def _compile_decide(self) -> Callable[[TraceRecord], Decision]:
        wms = self._wms
        lookup = self._lookup
        id_bits = self._id_bits
        prefix = f"{self._salt}:".encode() if self._salt else b""
        sha256 = hashlib.sha256
        from_bytes = int.from_bytes
        guard = self._guard
        activate = self._activate
        charge = self._charge
        partial = self._partial
        new = _new
        D = Decision

        lo = hi = 0  # the active window [lo, hi); empty until the first record

        def decide(record: TraceRecord) -> Decision:
            nonlocal lo, hi
            ts = record.timestamp_ms
            if not lo <= ts < hi:
                lo = ts - ts % wms
                hi = lo + wms
                activate(lo, ts)
            e = lookup(record)
            tid = record.trace_id
            r = -1
            if id_bits and len(tid) == 35 and tid.startswith("tr-"):  # = id_randomness, inlined
                try:  # noqa: SIM105 - contextlib.suppress costs a call on the hot path
                    r = int(tid[21:], 16)
                except ValueError:
                    pass
            if r < 0:  # = randomness.hashed_randomness(tid, salt), inlined
                r = from_bytes(sha256(prefix + tid.encode()).digest()[-7:], "big")
            tokens = record.total_tokens
            cell = e.cell
            cell[0] += 1
            cell[3] += tokens
            d = new(D)
            dd = d.__dict__
            if r >= e.t:
                if e.all_full:
                    tmpl = e.yes
                    if guard and e.guarded:
                        reason = charge(
                            ts - lo,
                            e.tok_base + e.tok_factor * tokens,
                            e.usd_base + e.usd_factor * tokens,
                        )
                        if reason is not None:
                            tmpl = e.budget if reason == "budget" else e.pacing
                else:
                    tmpl = partial(e, r, ts - lo, tokens)
                if tmpl["selected"]:
                    cell[1] += 1
                else:
                    cell[2] += 1
                dd.update(tmpl)  # into the empty dict first: CPython then copies it wholesale
                dd["trace_id"] = tid
                return d
            dd.update(e.no)
            dd["trace_id"] = tid
            return d

        return decide

    def decide_many(self, records: Iterable[TraceRecord]) -> list[Decision]:
        decide = self.decide
        return [decide(r) for r in records]

    def _partial(self, e: _Entry, r: int, offset_ms: int, trace_tokens: float) -> dict:
        """Template for a selected trace when judges run on nested fractions of the sample."""
        judges = {}
        tokens = usd = 0.0
        for name, tj, pj, j in e.judges:
            if r >= tj:
                judges[name] = pj
                tokens += j.tokens_for(trace_tokens)
                usd += j.usd_for(trace_tokens)
        if self._guard and e.guarded:
            reason = self._charge(offset_ms, tokens, usd)
            if reason is not None:
                return e.budget if reason == "budget" else e.pacing
        return {**e.yes, "judges": MappingProxyType(judges)}

    def _charge(self, offset_ms: int, tokens: float, usd: float) -> str | None:
        """Charge one selection against the window budget; a reason string if it must wait."""
        st = self._state
        assert st is not None
        spent = st.spent
        lt, lk, lu = self._limits
        if spent[0] + 1 > lt or spent[1] + tokens > lk or spent[2] + usd > lu:
            return "budget"
        if self._pace:
            frac = min(1.0, offset_ms / self._wms + self._burst)
            if (
                spent[0] + 1 > lt * frac
                or spent[1] + tokens > lk * frac
                or (spent[2] + usd > lu * frac)
            ):
                return "pacing"
        spent[0] += 1
        spent[1] += tokens
        spent[2] += usd
        return None

    def spent(self, window_start_ms: int | None = None) -> dict[str, float]:
        """This replica's estimated spend in a window: traces, judge tokens, judge USD."""
        w = self._w if window_start_ms is None else window_start_ms
        s = self.counts.window_spent(w) if w is not None else [0.0, 0.0, 0.0]
        return {"traces": s[0], "tokens": s[1], "usd": s[2]}

    # ------------------------------------------------------------------ feedback

    def observe_outcome(
        self,
        stratum: str | Decision,
        judge: str,
        value: object,
        window_start_ms: int | None = None,
    ) -> bool:
        """Record a judge verdict for Neyman variances. It only affects plans of windows after
        the trace's window (rates are fixed before outcomes are seen). False if ignored."""
        if isinstance(stratum, Decision):
            window_start_ms = (
                stratum.window_start_ms if window_start_ms is None else window_start_ms
            )
            stratum = stratum.stratum
        parsed = outcome_value(value)
        if parsed is None:
            return False
        if window_start_ms is None:
            if self._w is None:
                raise ValueError("window_start_ms is required before the first decision")
            window_start_ms = self._w
        self.counts.add_outcome(window_start_ms, stratum, judge, parsed[0])
        return True
