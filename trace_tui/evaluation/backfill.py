"""`trace-tui sample --backfill`: a one-shot sample over history in two phases.

A backfill has no outcomes yet, so Neyman would fall back to proportional. Instead (the math
is `samplers.two_phase`): the first `sample --backfill` queues a proportional pilot (a share
of the budget); `trace-tui eval` judges it; the second `sample --backfill` reads the pilot's
verdicts, re-allocates the whole budget by Neyman on their shrunk variances and queues the
rest. Every selected trace's sample tags then carry its two-phase inclusion probability
(leave-one-out for pilot traces), and the population counts (replica `backfill`) the final
selection, so `report` weights both phases. The budget is the number of traces the policy's
own rules select over the same history; the phase is the run tag `trace_tui.backfill.phase`.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from samplers import Decision, Moments, PopulationCounts, Sampler, TwoPhasePlan, verdict
from samplers.two_phase import pilot_plan, second_phase, selected
from trace_tui.core.errors import ConfigError
from trace_tui.evaluation import queue, sampling

PHASE_TAG = "trace_tui.backfill.phase"
REPLICA = "backfill"


async def backfill(loop: Any, since_s: float, pilot_share: float = 0.4) -> dict[str, Any]:
    """Run the next phase; returns {phase, queued, selected, budget}."""
    client, policy = loop.client, loop.policy
    run_id = await sampling.policy_run(client, loop.experiment_ids[0], policy)
    phase = sampling.run_tags(await client.get_run(run_id)).get(PHASE_TAG)
    if phase == "final":
        raise ConfigError(f"policy {policy.name!r}: the backfill is complete (both phases)")
    since_ms = int((time.time() - since_s) * 1000)
    infos = await client.search_traces(loop.experiment_ids, filter_string=sampling.source_filter(
        policy, f"trace.timestamp_ms >= {since_ms}"))
    records = await sampling.records_for(client, policy, infos)
    sampler = Sampler(policy)  # strata, rules and judges; its own selection sets the budget
    decisions = [sampler.decide(r) for r in records]
    judges = {name: list(r["judges"]) for name, r in sampler.counts.rules.items()
              if r["type"] != "drop"}  # a decision's own `judges` is empty when unselected
    eligible = [d for d in decisions if judges.get(d.rule)]
    budget = sum(1 for d in eligible if d.selected)
    plan = pilot_plan(Counter(d.stratum for d in eligible), budget, pilot_share)
    if phase is None:
        chosen = [d for d in eligible if selected(d.trace_id, plan.pilot_rates[d.stratum])]
        probability = {d.trace_id: plan.pilot_rates[d.stratum] for d in chosen}
        queued = await _tag(loop, chosen, probability, set(), judges)
        done = "pilot"
    else:
        pilot = {d.trace_id for d in eligible
                 if selected(d.trace_id, plan.pilot_rates[d.stratum])}
        values = await _pilot_values(loop, pilot)
        moments: dict[str, Moments] = {}
        for d in eligible:
            v = values.get(d.trace_id)
            if v is not None:
                moments[d.stratum] = moments.get(d.stratum, Moments()) + Moments(1, v, v * v)
        final = second_phase(plan, budget, moments)
        chosen = [d for d in eligible if selected(d.trace_id, _rate(final, d.stratum))]
        probability = {d.trace_id: final.probability(d.stratum, values.get(d.trace_id))
                       for d in chosen}  # fmt: skip
        queued = await _tag(loop, chosen, probability, pilot, judges)
        done = "final"
    counts = PopulationCounts(policy.budget.window_ms, REPLICA)
    for name, rule in sampler.counts.rules.items():
        counts.register_rule(name, rule["type"], rule["judges"])
    ids = {d.trace_id for d in chosen}
    for d in decisions:
        counts.add(d.window_start_ms, d.rule, d.stratum, 1, int(d.trace_id in ids))
    await sampling.save_state(client, run_id, REPLICA, sampling.PolicyState(counts))
    await client.set_run_tags(run_id, {PHASE_TAG: done, **sampling.window_version_tags(
        policy, sorted({d.window_start_ms for d in decisions}))})
    return {"policy": policy.name, "phase": done, "decided": len(decisions),
            "budget": budget, "selected": len(chosen), "queued": queued,
            "pilot_rates": dict(plan.pilot_rates)}


def _rate(plan: TwoPhasePlan, stratum: str) -> float:
    return (plan.rates or plan.pilot_rates)[stratum]


async def _pilot_values(loop: Any, pilot: set[str]) -> dict[str, float]:
    """Pilot trace -> its pass (1.0) / fail (0.0) under the policy's first judge; refuses
    while a pilot trace still waits for its verdict."""
    judge = loop.policy.judges[0].name
    out: dict[str, float] = {}
    for info in await loop.policy_traces():
        if info.trace_id not in pilot:
            continue
        if queue.queue_state(info.tags, loop.policy.name) == queue.QUEUED:
            raise ConfigError(f"policy {loop.policy.name!r}: the pilot is not judged yet: run "
                              f"`trace-tui eval --policy <file>` first")
        a = queue.verdict_of(info, judge)
        v = verdict(a.value) if a is not None else None
        if v is not None:
            out[info.trace_id] = 1.0 if v else 0.0
    return out


async def _tag(loop: Any, chosen: list[Decision], probability: dict[str, float],
               pilot: set[str], judges: dict[str, list[str]]) -> int:
    """Sample facts with the two-phase probability; queue the traces not in the pilot."""
    queued = 0
    for d in chosen:
        p = probability[d.trace_id]
        facts = queue.SampleFacts(
            policy=loop.policy.name, stratum=d.stratum, probability=p, rule=d.rule,
            weight=1 / p, window_start_ms=d.window_start_ms,
            judges=dict.fromkeys(judges[d.rule], p), policy_version=loop.policy.version)
        tags = facts.tags()
        state_key = next(reversed(tags))
        state = tags.pop(state_key)
        for k, v in tags.items():
            await loop.client.set_trace_tag(d.trace_id, k, v)
        if d.trace_id not in pilot:
            await loop.client.set_trace_tag(d.trace_id, state_key, state)
            queued += 1
    return queued
