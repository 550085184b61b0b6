"""Trace-id randomness, thresholds and nesting (OTel consistent probability sampling)."""

from __future__ import annotations

import hashlib
import itertools
import random

import pytest

from samplers.randomness import (
    TWO56,
    hashed_randomness,
    id_randomness,
    threshold,
    threshold_probability,
)
from tests.samplers_fixtures import reference_randomness as randomness_function


def test_mlflow_ids_use_their_low_56_bits() -> None:
    tid = "tr-0123456789abcdef0123456789abcdef"
    assert id_randomness(tid) == int("89abcdef0123456789abcdef"[-14:], 16)
    assert id_randomness(tid) == int(tid[3:], 16) & (TWO56 - 1)
    assert randomness_function()(tid) == id_randomness(tid)


@pytest.mark.parametrize(
    "tid",
    [
        "request-42",
        "tr-123",
        "tr-0123456789abcdef0123456789abcdeZ",
        "tr-0000000000000000000-000000000001",  # a negative tail
    ],
)
def test_other_ids_are_hashed(tid: str) -> None:
    expected = int.from_bytes(hashlib.sha256(tid.encode()).digest()[-7:], "big")
    assert id_randomness(tid) is None
    assert randomness_function("auto")(tid) == expected == hashed_randomness(tid)


def test_hash_source_and_salt_force_hashing() -> None:
    tid = "tr-0123456789abcdef0123456789abcdef"
    assert randomness_function("hash")(tid) == hashed_randomness(tid)
    salted = randomness_function("auto", salt="s1")(tid)
    assert salted == int.from_bytes(hashlib.sha256(b"s1:" + tid.encode()).digest()[-7:], "big")
    assert salted != randomness_function("auto", salt="s2")(tid)


def test_thresholds_match_the_otel_encoding() -> None:
    assert threshold(1.0) == 0  # th:0 keeps everything
    assert threshold(0.5) == 0x80000000000000  # th:8
    assert threshold(0.25) == 0xC0000000000000  # th:c
    assert f"{threshold(0.01):014x}".startswith("fd70a3d70a3d7")  # th:fd70a4 at 6 digits
    assert threshold(0.0) == TWO56  # R < 2**56: never kept
    assert threshold_probability(threshold(0.3)) == pytest.approx(0.3, abs=1e-15)
    assert threshold_probability(threshold(1e-30)) == 1 / TWO56  # smallest positive rate


def test_lower_rates_nest_inside_higher_ones_and_hit_their_rate() -> None:
    rng = random.Random(1)
    ids = [f"tr-{rng.getrandbits(128):032x}" for _ in range(50_000)]
    r = randomness_function()
    rates = [0.01, 0.05, 0.2, 0.5]
    samples = [{t for t in ids if r(t) >= threshold(p)} for p in rates]
    for low, high in itertools.pairwise(samples):
        assert low <= high
    for p, s in zip(rates, samples, strict=True):
        sd = (p * (1 - p) / len(ids)) ** 0.5
        assert abs(len(s) / len(ids) - p) < 4 * sd
    assert {t for t in ids if r(t) >= threshold(0.2)} == samples[2]  # deterministic
