"""Consistent-probability randomness from trace ids (OTel tracestate-probability-sampling).

R is 56 bits. A trace is kept at probability p iff R >= T with T = (1 - p) * 2**56, so one R
shared by every rate makes lower-rate samples subsets of higher-rate ones, and replicas that
see the same id agree without talking.
"""

from __future__ import annotations

import hashlib

TWO56 = 1 << 56


def hashed_randomness(trace_id: str, salt: str = "") -> int:
    """Low 56 bits of sha256(salt:trace_id) (or sha256(trace_id) without a salt)."""
    data = f"{salt}:{trace_id}" if salt else trace_id
    return int.from_bytes(hashlib.sha256(data.encode()).digest()[-7:], "big")


def id_randomness(trace_id: str) -> int | None:
    """R from an MLflow id `tr-<32 hex>` (the OTel trace id): its last 14 hex digits, or None
    when the id is not 35 characters starting with `tr-` or its tail does not parse as a
    non-negative base-16 integer."""
    if len(trace_id) == 35 and trace_id.startswith("tr-"):
        try:
            r = int(trace_id[21:], 16)
        except ValueError:
            return None
        return r if r >= 0 else None
    return None


def threshold(p: float) -> int:
    """Rejection threshold T for keep probability p (keep iff R >= T)."""
    if p >= 1.0:
        return 0
    if p <= 0.0:
        return TWO56  # R < 2**56 always, so never kept
    return TWO56 - max(1, round(p * TWO56))


def threshold_probability(t: int) -> float:
    """The exact keep probability implied by threshold t (p after 56-bit quantization)."""
    return (TWO56 - t) / TWO56
