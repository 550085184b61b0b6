"""Synthetic trace populations with known per-stratum pass rates (tests, benchmark, demos)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .record import TraceRecord

MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-haiku", "claude-3-5-sonnet")


@dataclass(frozen=True)
class SyntheticPopulation:
    """Records plus, per record, the true probability that a judge passes it."""

    records: list[TraceRecord]
    pass_prob: np.ndarray
    strata: dict[tuple[str, str, str], float]  # (route, tier, version) -> true pass rate


def synthetic_population(
    n: int,
    *,
    routes: int = 10,
    tiers: int = 4,
    versions: int = 5,
    start_ms: int = 1_700_000_000_000,
    span_ms: int = 3_600_000,
    low_share: float = 0.2,
    low_rates: tuple[float, float] = (0.3, 0.7),
    high_rates: tuple[float, float] = (0.93, 0.995),
    zipf: float = 0.8,
    error_rate: float = 0.05,
    seed: int = 0,
) -> SyntheticPopulation:
    """`routes x tiers x versions` strata (tags route, tier, version) with Zipf-like sizes;
    a `low_share` of strata pass at a rate drawn from `low_rates`, the rest from `high_rates`.
    Ids are random `tr-<32 hex>`, timestamps uniform and sorted over `span_ms`."""
    rng = np.random.default_rng(seed)
    keys = [
        (f"r{a:02d}", f"t{b}", f"1.{c}.0")
        for a in range(routes)
        for b in range(tiers)
        for c in range(versions)
    ]
    h = len(keys)
    size_w = 1.0 / np.arange(1, h + 1) ** zipf
    size_w = rng.permutation(size_w / size_w.sum())
    low = rng.random(h) < low_share
    rates = np.where(low, rng.uniform(*low_rates, h), rng.uniform(*high_rates, h))
    idx = rng.choice(h, size=n, p=size_w)
    ts = np.sort(rng.integers(start_ms, start_ms + span_ms, size=n))
    hi = rng.integers(0, 1 << 63, size=n, dtype=np.int64)
    lo = rng.integers(0, 1 << 63, size=n, dtype=np.int64)
    status = np.where(rng.random(n) < error_rate, "ERROR", "OK")
    dur = rng.lognormal(7.0, 0.9, size=n)
    tokens = rng.integers(50, 4000, size=n)
    model_idx = rng.integers(0, len(MODELS), size=n)
    tag_maps = [{"route": r, "tier": t, "version": v} for r, t, v in keys]
    model_sets = [frozenset({m}) for m in MODELS]
    records = [
        TraceRecord(
            trace_id=f"tr-{int(hi[i]):016x}{int(lo[i]):016x}",
            timestamp_ms=int(ts[i]),
            status=str(status[i]),
            duration_ms=float(dur[i]),
            name="agent",
            total_tokens=int(tokens[i]),
            tags=tag_maps[idx[i]],
            models=model_sets[model_idx[i]],
        )
        for i in range(n)
    ]
    return SyntheticPopulation(records, rates[idx], dict(zip(keys, rates.tolist(), strict=True)))
