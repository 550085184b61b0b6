"""Benchmark of samplers/: decision throughput, and Neyman vs uniform interval widths.

    python bench/sampler.py                        # 1,000,000 records, 200 strata (a few min)
    python bench/sampler.py --records 200000 --reps 1   # quick look
    python bench/sampler.py --json results.json

Stream: synthetic records in 200 strata (10 routes x 4 tiers x 5 versions, Zipf(0.8) sizes),
random `tr-<32 hex>` ids, time-sorted over 10 windows of 10 minutes. The policy has a drop rule
(never matching, as in production where eval runs are rare) and a stratified catch-all with
Neyman allocation, 1,000 judged traces per window, even pacing.

1. Throughput: `Sampler.decide` over the whole stream; records are built before timing.
   Decisions per CPU second (process time: one core) and per wall second, best of --repeats.
2. Interval width of the overall pass rate (95%, estimate() defaults) over windows 2-10:
   - neyman: the policy above; judge outcomes are drawn from each stratum's true pass rate and
     fed back with observe_outcome, so the allocation learns the variances as it goes;
   - proportional: the same with allocation = "proportional";
   - uniform: one probabilistic rule at the rate giving the same number of judged traces as
     the Neyman run (what MLflow / Langfuse / Phoenix / LangSmith offer), Hajek estimate.
   Each design is run with --reps independent salts; widths are averaged.
   Two populations: "typical" (10% of strata are problem strata passing 30-70%, the rest
   97-99.9%) and "harder" (20% problem strata, the rest 93-99.5%).
3. Two-phase backfill (samplers.two_phase) over the whole stream at once, equal total budget
   (--backfill-budget judged traces): uniform (one-phase proportional is the same draw:
   one rate everywhere) vs two-phase (pilot 40% proportional, then Neyman on the pilot's
   shrunk variances, leave-one-out pilot probabilities); mean 95% width (post-stratified
   estimate for both), coverage and the width ratio to uniform over --tp-reps.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from samplers import (
    JudgedOutcome,
    Moments,
    Policy,
    PopulationCounts,
    Randomness,
    Sampler,
    TraceRecord,
    estimate,
    parse_policy,
)
from samplers.synthetic import synthetic_population
from samplers.two_phase import pilot_plan, second_phase

WINDOW_MS = 600_000
WINDOWS = 10
START_MS = 1_700_000_400_000  # a window boundary
POPULATIONS = {
    "typical": {"low_share": 0.1, "high_rates": (0.97, 0.999)},
    "harder": {"low_share": 0.2, "high_rates": (0.93, 0.995)},
}

STRATIFIED = """
name = "bench"
[budget]
window = "10m"
max_traces = 1000
pacing = "even"
[[judge]]
name = "q"
scorer = "builtin:Safety"
[[policy]]
name = "drop-eval-runs"
type = "drop"
conditions = [{{ field = "metadata.`mlflow.sourceRun`", op = "exists" }}]
[[policy]]
name = "main"
type = "stratified"
key_fields = ["tags.route", "tags.tier", "tags.version"]
allocation = "{allocation}"
"""

UNIFORM = """
name = "uniform"
[budget]
window = "10m"
[[judge]]
name = "q"
scorer = "builtin:Safety"
[[policy]]
name = "uniform"
type = "probabilistic"
rate = {rate!r}
"""


def throughput(records: list[TraceRecord], repeats: int) -> dict[str, float]:
    policy = parse_policy(STRATIFIED.format(allocation="neyman"))
    best_cpu = best_wall = float("inf")
    for _ in range(repeats):
        sampler = Sampler(policy)
        decide = sampler.decide
        c0, w0 = time.process_time(), time.perf_counter()
        for r in records:
            decide(r)
        best_cpu = min(best_cpu, time.process_time() - c0)
        best_wall = min(best_wall, time.perf_counter() - w0)
    cells = sampler.counts.cells()
    n = len(records)
    return {
        "records": n,
        "strata": len({c.stratum for c in cells}),
        "windows": len({c.window_start_ms for c in cells}),
        "selected": sum(c.selected for c in cells),
        "decisions_per_cpu_s": n / best_cpu,
        "decisions_per_wall_s": n / best_wall,
        "us_per_decision_cpu": best_cpu / n * 1e6,
    }


def run_design(
    policy: Policy, records: list[TraceRecord], ys: np.ndarray, start_ms: int
) -> tuple[float, float, int, bool]:
    """Decide, judge (simulated), estimate windows from start_ms: (width, estimate, n, ci)."""
    sampler = Sampler(policy)
    outs = []
    for r, y in zip(records, ys.tolist(), strict=True):
        d = sampler.decide(r)
        if d.selected:
            sampler.observe_outcome(d, "q", y)
            if d.window_start_ms >= start_ms:
                outs.append(
                    JudgedOutcome(d.trace_id, "q", d.stratum, y, d.probability, d.window_start_ms)
                )
    j = estimate(outs, sampler.counts, start_ms=start_ms).judge("q")
    assert j.estimate is not None and j.ci_low is not None and j.ci_high is not None
    return j.ci_high - j.ci_low, j.estimate, j.n_judged, (j.ci_low, j.ci_high)


def widths(records: list[TraceRecord], pass_prob: np.ndarray, reps: int, seed: int) -> dict:
    start_ms = START_MS + WINDOW_MS  # skip the first (warm-up) window
    ys = np.random.default_rng(seed).random(len(records)) < pass_prob
    later = np.array([r.timestamp_ms >= start_ms for r in records])
    truth = float(ys[later].mean())
    runs: dict[str, list] = {"neyman": [], "proportional": [], "uniform": []}
    for rep in range(reps):
        salt = Randomness(salt=f"rep-{rep}")
        for alloc in ("neyman", "proportional"):
            policy = replace(parse_policy(STRATIFIED.format(allocation=alloc)), randomness=salt)
            runs[alloc].append(run_design(policy, records, ys, start_ms))
        rate = runs["neyman"][-1][2] / int(later.sum())  # same judged traces as Neyman
        policy = replace(parse_policy(UNIFORM.format(rate=rate)), randomness=salt)
        runs["uniform"].append(run_design(policy, records, ys, start_ms))
    out: dict = {"truth": truth, "reps": reps}
    for name, rs in runs.items():
        out[name] = {
            "mean_width": float(np.mean([r[0] for r in rs])),
            "mean_estimate": float(np.mean([r[1] for r in rs])),
            "mean_n_judged": float(np.mean([r[2] for r in rs])),
            "covered": int(sum(lo <= truth <= hi for *_, (lo, hi) in rs)),
        }
    out["neyman_vs_uniform"] = out["neyman"]["mean_width"] / out["uniform"]["mean_width"]
    out["proportional_vs_uniform"] = (
        out["proportional"]["mean_width"] / out["uniform"]["mean_width"]
    )
    return out


def optimum(pop_strata: dict[tuple[str, str, str], float], records: list[TraceRecord]) -> dict:
    """Width ratios an allocation with the true S_h would reach (no learning, no minimums)."""
    counts: dict[tuple[str, str, str], int] = {}
    for r in records:
        key = (r.tags["route"], r.tags["tier"], r.tags["version"])
        counts[key] = counts.get(key, 0) + 1
    w = np.array([counts.get(k, 0) for k in pop_strata], dtype=float)
    w /= w.sum()
    p = np.array(list(pop_strata.values()))
    s = np.sqrt(p * (1 - p))
    overall = float((w * p).sum())
    return {
        "neyman_vs_uniform": float((w * s).sum() / np.sqrt(overall * (1 - overall))),
        "proportional_vs_uniform": float(np.sqrt((w * s * s).sum() / (overall * (1 - overall)))),
    }


def two_phase(records: list[TraceRecord], pass_prob: np.ndarray, budget: int, reps: int,
              seed: int) -> dict:  # fmt: skip
    """One-shot backfill at equal total budget: uniform, proportional, two-phase."""
    keys = [(r.tags["route"], r.tags["tier"], r.tags["version"]) for r in records]
    index: dict[tuple[str, str, str], int] = {}
    strata = np.array([index.setdefault(k, len(index)) for k in keys])
    names = [f"main/{'•'.join(k)}" for k in index]
    y = np.random.default_rng(seed).random(len(records)) < pass_prob
    truth, n_all = float(y.mean()), len(y)
    pops = {names[h]: int(c) for h, c in enumerate(np.bincount(strata))}
    counts = PopulationCounts(WINDOW_MS, "backfill")
    for name, n in pops.items():
        counts.add(0, "main", name, population=n)
    counts.register_rule("main", "stratified", ["q"])
    plan = pilot_plan(pops, budget)
    pi1 = np.array([plan.pilot_rates[n] for n in names])[strata]

    def run(sel: np.ndarray, pi: np.ndarray) -> tuple[float, float, float]:
        outs = [JudgedOutcome(str(i), "q", names[strata[i]], bool(y[i]), float(pi[i]), 0)
                for i in sel.tolist()]  # fmt: skip
        j = estimate(outs, counts, method="wilson_kish").judge("q")
        return j.estimate, j.ci_low, j.ci_high  # type: ignore[return-value]

    res: dict[str, list] = {"uniform": [], "two_phase": []}
    for rep in range(reps):
        u = np.random.default_rng(seed + 1000 + rep).random(n_all)
        flat = np.full(n_all, budget / n_all)
        res["uniform"].append(run(np.flatnonzero(u < flat), flat))
        pilot = u < pi1
        moments = {}
        for h, name in enumerate(names):
            m = pilot & (strata == h)
            moments[name] = Moments(float(m.sum()), float(y[m].sum()), float(y[m].sum()))
        final = second_phase(plan, budget, moments)
        pi = np.array([final.rates[n] for n in names])[strata]
        pw = pi.copy()
        for i in np.flatnonzero(pilot).tolist():
            pw[i] = final.probability(names[strata[i]], float(y[i]))
        res["two_phase"].append(run(np.flatnonzero(u < pi), pw))
    out: dict = {"truth": truth, "reps": reps, "budget": budget}
    for name, rs in res.items():
        a = np.array(rs)
        out[name] = {"mean_width": float(np.mean(a[:, 2] - a[:, 1])),
                     "coverage": float(np.mean((a[:, 1] <= truth) & (truth <= a[:, 2]))),
                     "bias": float(a[:, 0].mean() - truth)}  # fmt: skip
    out["two_phase_vs_uniform"] = out["two_phase"]["mean_width"] / out["uniform"]["mean_width"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3, help="throughput runs; the best is kept")
    ap.add_argument("--reps", type=int, default=2, help="salts averaged per width figure")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--populations", default=",".join(POPULATIONS))
    ap.add_argument("--no-widths", action="store_true", help="throughput only")
    ap.add_argument("--backfill-budget", type=int, default=8000)
    ap.add_argument("--tp-reps", type=int, default=100, help="two-phase repetitions")
    ap.add_argument("--json", type=Path, help="also write the results as JSON")
    args = ap.parse_args()

    result: dict = {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average": os.getloadavg(),
        "records": args.records,
        "populations": {},
    }
    for i, name in enumerate(args.populations.split(",")):
        t = time.perf_counter()
        pop = synthetic_population(
            args.records,
            span_ms=WINDOWS * WINDOW_MS,
            start_ms=START_MS,
            seed=args.seed,
            **POPULATIONS[name],  # type: ignore[arg-type]
        )
        print(f"[{name}] {len(pop.records):,} records, {len(pop.strata)} strata, {WINDOWS} "
              f"windows, built in {time.perf_counter() - t:.1f}s")  # fmt: skip
        entry: dict = {"params": POPULATIONS[name]}
        if i == 0:
            tp = throughput(pop.records, args.repeats)
            entry["throughput"] = tp
            print(
                f"  throughput: {tp['decisions_per_cpu_s']:,.0f} decisions/CPU-s "
                f"({tp['us_per_decision_cpu']:.2f} us each), "
                f"{tp['decisions_per_wall_s']:,.0f}/wall-s; {tp['selected']:,} selected"
            )
        if args.no_widths:
            result["populations"][name] = entry
            break
        w = widths(pop.records, pop.pass_prob, args.reps, args.seed)
        entry["widths"] = w
        entry["optimum"] = optimum(pop.strata, pop.records)
        for design in ("neyman", "proportional", "uniform"):
            d = w[design]
            print(f"  {design:>12}: 95% CI width {d['mean_width']:.4f}, "
                  f"{d['mean_n_judged']:,.0f} judged, estimate {d['mean_estimate']:.4f} "
                  f"(truth {w['truth']:.4f}, covered {d['covered']}/{w['reps']})")  # fmt: skip
        print(f"  Neyman/uniform width {w['neyman_vs_uniform']:.3f} "
              f"(optimum {entry['optimum']['neyman_vs_uniform']:.3f}); proportional/uniform "
              f"{w['proportional_vs_uniform']:.3f}")  # fmt: skip
        tp2 = two_phase(pop.records, pop.pass_prob, args.backfill_budget, args.tp_reps, args.seed)
        entry["two_phase"] = tp2
        for design in ("uniform", "two_phase"):
            d = tp2[design]
            print(f"  backfill {design:>9}: 95% CI width {d['mean_width']:.4f}, coverage "
                  f"{d['coverage']:.3f}, bias {d['bias']:+.4f}")  # fmt: skip
        print(f"  backfill two-phase/uniform width {tp2['two_phase_vs_uniform']:.3f} "
              f"(budget {tp2['budget']}, {tp2['reps']} reps)")  # fmt: skip
        result["populations"][name] = entry
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
