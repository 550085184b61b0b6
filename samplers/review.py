"""Human review sample: which judged traces go to humans, with known conditional probability.

A judged trace of stratum h in window w goes to review iff R' >= T(r), where R' is the low 56
bits of sha256(`[review] salt`:trace_id) (independent of the sampler's randomness, which uses
another salt or the id's own bits) and r is the review rate of the cell:

    target = fraction x n            (n = traces of the cell selected for judging)
    target = min(target, count)      (`count` alone: target = count)
    target = max(target, min_per_stratum)
    r      = min(1, target / n)

The review sample is then a Bernoulli(r) subsample of the judged sample, so a reviewed trace's
inclusion probability is pi x r (pi: the judge's probability from the Decision) and
`samplers.corrected` / `samplers.agreements` weight it by 1 / (pi x r). Decide after the window
has closed (n final); if n still grows, store the r each trace was decided with: thresholds
are nested, so a trace reviewed at a lower r stays reviewed at a higher one.
"""

from __future__ import annotations

from dataclasses import dataclass

from .randomness import hashed_randomness, threshold, threshold_probability
from .schema import Review

__all__ = ["Review", "ReviewDecision", "review_decision", "review_rate"]


@dataclass(frozen=True, slots=True)
class ReviewDecision:
    """`probability` is r, the conditional probability of review given the trace was judged
    (0 when review is off); store it with the human label (`HumanLabel.review_probability`)."""

    trace_id: str
    stratum: str
    selected: bool
    probability: float
    expected_in_cell: float  # r x n: reviewed traces expected in the (window, stratum) cell


def review_rate(review: Review, n_judged: int) -> float:
    """The review rate r of a (window, stratum) cell with `n_judged` judged traces, quantized
    to the 56-bit threshold actually used."""
    if not review.enabled or n_judged <= 0:
        return 0.0
    target = review.fraction * n_judged if review.fraction > 0 else float("inf")
    if review.count is not None:
        target = min(target, float(review.count))
    if target == float("inf"):  # fraction = 0 and count unset cannot reach here (not enabled)
        target = 0.0
    target = max(target, float(review.min_per_stratum))
    return threshold_probability(threshold(min(1.0, target / n_judged)))


def review_decision(
    trace_id: str, stratum: str, n_judged: int, review: Review, judge: str | None = None
) -> ReviewDecision:
    """Whether this judged trace goes to review (deterministic in its id and the salt).

    `n_judged`: traces of the trace's (window, stratum) cell selected for judging (the cell's
    `selected` count in PopulationCounts). `judge`: with `[review] judges` set, verdicts of
    other judges are not reviewed (probability 0)."""
    if judge is not None and review.judges and judge not in review.judges:
        return ReviewDecision(trace_id, stratum, False, 0.0, 0.0)
    r = review_rate(review, n_judged)
    if r <= 0.0:
        return ReviewDecision(trace_id, stratum, False, 0.0, 0.0)
    selected = hashed_randomness(trace_id, review.salt) >= threshold(r)
    return ReviewDecision(trace_id, stratum, selected, r, r * n_judged)
