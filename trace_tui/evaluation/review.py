"""The human review queue: which judged traces go to humans (``[review]`` in the policy).

A judged trace (queue state done) of cell (window, stratum) goes to review by
`samplers.review.review_decision` (deterministic in its id and `[review] salt`), with n = the
policy's traces selected for judging in that cell (its sample tags). Selected traces get
``trace_tui.review_sample.<policy>`` (JSON: r, n) then ``trace_tui.review.<policy>=queued``;
the review screen sets ``done`` once every reviewed judge has an answer. A trace keeps the r it
was decided with (thresholds are nested, so a later, larger n never un-reviews it).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from samplers.review import review_decision
from trace_tui.core import tags as T
from trace_tui.core.client import MlflowClient
from trace_tui.core.model import TraceInfo
from trace_tui.evaluation import queue

QUEUED, DONE = "queued", "done"


@dataclass
class ReviewStats:
    judged: int = 0
    queued: int = 0  # newly queued by this call
    waiting: int = 0  # queued, not reviewed yet (all calls)
    reviewed: int = 0


def review_probability(tags: Mapping[str, str], policy: str) -> float | None:
    """r the trace was drawn for review with, or None when it was not drawn."""
    raw = tags.get(T.review_sample_tag(policy))
    if raw is None:
        return None
    try:
        return float(json.loads(raw)["r"])
    except (ValueError, KeyError, TypeError):
        return None


def review_state(tags: Mapping[str, str], policy: str) -> str | None:
    return tags.get(T.review_tag(policy))


def reviewed_judges(policy: Any) -> list[str]:
    """The policy's judges a reviewer answers for (`[review] judges`, else all)."""
    names = [j.name for j in policy.judges]
    chosen = list(policy.review.judges)
    return [n for n in names if n in chosen] if chosen else names


def _cell(facts: queue.SampleFacts) -> tuple[int | None, str]:
    return facts.window_start_ms, facts.stratum


async def queue_reviews(client: MlflowClient, policy: Any,
                        experiment_ids: Sequence[str]) -> ReviewStats:
    """Draw the review sample among the policy's judged traces; idempotent."""
    stats = ReviewStats()
    infos = await queue.search_policy_traces(client, experiment_ids, policy.name)
    facts = {i.trace_id: queue.SampleFacts.from_tags(i.tags, policy.name) for i in infos}
    cells = Counter(_cell(f) for f in facts.values() if f is not None)
    for info in infos:
        f = facts[info.trace_id]
        if f is None or queue.queue_state(info.tags, policy.name) != queue.DONE:
            continue
        stats.judged += 1
        state = review_state(info.tags, policy.name)
        if state is None and policy.review.enabled:
            d = review_decision(info.trace_id, f.stratum, cells[_cell(f)], policy.review)
            if not d.selected:
                continue
            await client.set_trace_tag(info.trace_id, T.review_sample_tag(policy.name),
                                       json.dumps({"r": d.probability, "n": cells[_cell(f)]},
                                                  separators=(",", ":")))
            await client.set_trace_tag(info.trace_id, T.review_tag(policy.name), QUEUED)
            stats.queued += 1
            state = QUEUED
        if state == QUEUED:
            stats.waiting += 1
        elif state == DONE:
            stats.reviewed += 1
    return stats


async def review_queue(client: MlflowClient, policy: str, experiment_ids: Sequence[str],
                       state: str | None = QUEUED) -> list[TraceInfo]:
    """The policy's traces drawn for review (``state`` only if set), oldest first."""
    clause = (queue.tag_filter(T.review_tag(policy), state) if state
              else f"tags.`{T.review_tag(policy)}` LIKE '%'")
    infos = await client.search_traces(list(experiment_ids), filter_string=clause,
                                       order_by=["timestamp_ms ASC"])
    return sorted(infos, key=lambda i: (i.request_time_ms, i.trace_id))


async def set_review_state(client: MlflowClient, trace_id: str, policy: str,
                           state: str) -> None:
    await client.set_trace_tag(trace_id, T.review_tag(policy), state)


@dataclass(frozen=True)
class ReviewerAgreement:
    """Agreement between reviewers on one judge's question, over the traces two or more of
    them labelled: every pair of reviewers on a trace counts once (unweighted)."""

    judge: str
    traces: int
    pairs: int
    agreement: float | None  # share of pairs with the same verdict
    kappa: float | None  # Cohen's kappa of the pairs (each pair in both orders)

    def to_dict(self) -> dict[str, Any]:
        return {"judge": self.judge, "traces": self.traces, "pairs": self.pairs,
                "agreement": self.agreement, "kappa": self.kappa}


def reviewer_agreement(infos: Sequence[TraceInfo], judges: Sequence[str],
                       rules: Mapping[str, Any] | None = None) -> list[ReviewerAgreement]:
    """Inter-reviewer agreement per judge, on pass/fail verdicts (`samplers.verdicts`)."""
    import numpy as np

    from samplers.agreements import kappa_of
    from samplers.verdicts import verdict
    from trace_tui.evaluation.labels import human_labels

    out = []
    for judge in judges:
        cells = np.zeros(4)  # (a pass, b pass), (pass, fail), (fail, pass), (fail, fail)
        traces = pairs = 0
        for info in infos:
            latest: dict[str, bool] = {}
            for a in sorted(human_labels(info, judge), key=lambda a: a.create_time):
                v = verdict(a.value, (rules or {}).get(judge))
                if v is not None:
                    latest[a.source_id] = v
            votes = list(latest.values())
            if len(votes) < 2:
                continue
            traces += 1
            for i, a_pass in enumerate(votes):
                for b_pass in votes[i + 1:]:
                    pairs += 1
                    for x, y in ((a_pass, b_pass), (b_pass, a_pass)):
                        cells[(0 if x else 2) + (0 if y else 1)] += 0.5
        if pairs == 0:
            out.append(ReviewerAgreement(judge, 0, 0, None, None))
            continue
        p = cells / cells.sum()
        out.append(ReviewerAgreement(judge, traces, pairs, float(p[0] + p[3]), kappa_of(p)))
    return out
