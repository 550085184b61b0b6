"""Judge-human agreement on the reviewed traces: confusion matrix, accuracy, true-pass and
true-fail rates and Cohen's kappa, each with an interval, per judge and stratum and overall.

Truth is the human label; "positive" is pass. Per stratum the rates are the reviewed
traces' shares weighted by 1/(pi x r) (equal weights within one window); overall they are
post-stratified: p = sum_h W_h p_h with W_h the strata's population shares. Variances come
from the delta method on the four cell shares (multinomial covariance over the Kish
effective size, times the finite-population factor 1 - n_h/N_h); intervals are Wilson with
n_eff = p(1-p)/V for rates and Wald (clipped to [-1, 1]) for kappa. See docs/statistics.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .corrected import HumanLabel, Interval
from .counts import PopulationCounts
from .estimators import OVERALL, collect, latest_by_judge, wilson_interval, z_value
from .outcomes import JudgedOutcome
from .verdicts import PassRule, verdict

# cell order: (judge pass, human pass), (pass, fail), (fail, pass), (fail, fail)
_GRAD_PO = np.array([1.0, 0.0, 0.0, 1.0])


@dataclass(frozen=True)
class Agreement:
    """Agreement on one stratum (or OVERALL). `confusion` holds raw counts: `tp` judge and
    human pass, `fp` judge passes what the human fails, `fn` judge fails what the human
    passes, `tn` both fail. Rates are None where undefined (e.g. no human fail)."""

    stratum: str
    n_reviewed: int
    confusion: dict[str, int]
    accuracy: Interval
    true_pass_rate: Interval  # P(judge pass | human pass)
    true_fail_rate: Interval  # P(judge fail | human fail)
    kappa: Interval

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class JudgeAgreement:
    """One judge: `overall` (post-stratified over the reviewed strata) and per stratum."""

    judge: str
    overall: Agreement
    strata: list[Agreement] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def kappa_of(p: np.ndarray) -> float | None:
    """Cohen's kappa of cell shares p = (tp, fp, fn, tn); None when chance agreement is 1."""
    po = p[0] + p[3]
    pj, ph = p[0] + p[1], p[0] + p[2]
    pe = pj * ph + (1 - pj) * (1 - ph)
    return None if pe >= 1 - 1e-12 else float((po - pe) / (1 - pe))


def _kappa_grad(p: np.ndarray) -> np.ndarray:
    po = p[0] + p[3]
    pj, ph = p[0] + p[1], p[0] + p[2]
    pe = pj * ph + (1 - pj) * (1 - ph)
    dpe = np.array([2 * ph - 1 + 2 * pj - 1, 2 * ph - 1, 2 * pj - 1, 0.0])
    return (_GRAD_PO * (1 - pe) - dpe * (1 - po)) / (1 - pe) ** 2


def _ratio(p: np.ndarray, num: int, den: tuple[int, int]) -> tuple[float | None, np.ndarray]:
    """share p[num] / (p[den0] + p[den1]) and its gradient."""
    d = p[den[0]] + p[den[1]]
    if d <= 0:
        return None, np.zeros(4)
    g = np.zeros(4)
    other = den[1] if den[0] == num else den[0]
    g[num] = p[other] / d**2
    g[other] = -p[num] / d**2
    return float(p[num] / d), g


def _rate(est: float | None, var: float, n: int, z: float) -> Interval:
    if est is None:
        return Interval(None, None, None, None, n)
    if var <= 0:
        return Interval(est, est, est, 0.0, n)
    lo, hi = wilson_interval(est, max(est * (1 - est), 1e-12) / var, z)
    return Interval(est, lo, hi, var, n)


def _summarise(name: str, n: int, raw: np.ndarray, p: np.ndarray, cov: np.ndarray,
               z: float) -> Agreement:  # fmt: skip
    conf = dict(zip(("tp", "fp", "fn", "tn"), (int(x) for x in raw), strict=True))
    acc = float(p[0] + p[3])
    v_acc = float(_GRAD_PO @ cov @ _GRAD_PO)
    tpr, g_tpr = _ratio(p, 0, (0, 2))
    tnr, g_tnr = _ratio(p, 3, (3, 1))
    k = kappa_of(p) if n > 0 else None
    if k is None or n < 2:
        kappa = Interval(k, None, None, None, n)
    else:
        g = _kappa_grad(p)
        v = float(g @ cov @ g)
        half = z * math.sqrt(max(v, 0.0))
        kappa = Interval(k, max(-1.0, k - half), min(1.0, k + half), v, n)
    return Agreement(
        name, n, conf, _rate(acc if n else None, v_acc, n, z),
        _rate(tpr, float(g_tpr @ cov @ g_tpr), int(raw[0] + raw[2]), z),
        _rate(tnr, float(g_tnr @ cov @ g_tnr), int(raw[3] + raw[1]), z), kappa,
    )  # fmt: skip


def agreement(
    judged: Iterable[JudgedOutcome],
    labels: Iterable[HumanLabel],
    counts: PopulationCounts,
    confidence: float = 0.95,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    include_dropped: bool = False,
    rules: Mapping[str, PassRule] | None = None,
) -> list[JudgeAgreement]:
    """Agreement per judge (sorted) on the reviewed traces whose judge verdict and human
    label both read as pass/fail (`verdict`, with the judge's PassRule from `rules`)."""
    z = z_value(confidence)
    by_judge = latest_by_judge(judged, start_ms, end_ms)
    human: dict[str, dict[str, HumanLabel]] = {}
    for lab in labels:
        human.setdefault(lab.judge, {})[lab.trace_id] = lab
    cells = counts.cells(start_ms, end_ms)
    out = []
    for judge in sorted(set(by_judge) & set(human)):
        rule = (rules or {}).get(judge)
        outs = by_judge[judge]
        col = collect(judge, outs.values(), counts, cells, include_dropped, rules)
        rows: list[Agreement] = []
        parts: list[tuple[float, np.ndarray, np.ndarray]] = []  # (N_h, p_h, cov_h)
        raw_total = np.zeros(4)
        for st in sorted(col.strata.values(), key=lambda s: s.name):
            cells_w = np.zeros(4)
            raw = np.zeros(4)
            ws = []
            for tid, pi in zip(st.ids, st.pi, strict=True):
                label = human[judge].get(tid)
                if label is None or not 0 < label.review_probability <= 1:
                    continue
                jv, hv = verdict(outs[tid].value, rule), verdict(label.value, rule)
                if jv is None or hv is None:
                    continue
                k = (0 if hv else 1) if jv else (2 if hv else 3)
                w = 1.0 / (min(pi, 1.0) * label.review_probability)
                cells_w[k] += w
                raw[k] += 1
                ws.append(w)
            n = int(raw.sum())
            if n == 0:
                continue
            p = cells_w / cells_w.sum()
            wa = np.asarray(ws)
            n_eff = float(wa.sum() ** 2 / (wa * wa).sum())
            fpc = max(0.0, 1.0 - n / st.population) if st.population > 0 else 1.0
            cov = (np.diag(p) - np.outer(p, p)) / n_eff * fpc
            if n_eff > 1:
                cov *= n_eff / (n_eff - 1)
            rows.append(_summarise(st.name, n, raw, p, cov, z))
            parts.append((st.population, p, cov))
            raw_total += raw
        if not rows:
            continue
        pops = np.array([x[0] for x in parts])
        wh = pops / pops.sum() if pops.sum() > 0 else np.full(len(parts), 1 / len(parts))
        p_all = sum(w * x[1] for w, x in zip(wh, parts, strict=True))
        cov_all = sum(w * w * x[2] for w, x in zip(wh, parts, strict=True))
        overall = _summarise(OVERALL, int(raw_total.sum()), raw_total, np.asarray(p_all),
                             np.asarray(cov_all), z)  # fmt: skip
        out.append(JudgeAgreement(judge, overall, rows))
    return out


def review_entries(
    judged: Iterable[JudgedOutcome],
    labels: Iterable[HumanLabel],
    counts: PopulationCounts,
    confidence: float = 0.95,
    **options: Any,
) -> dict[str, dict[str, Any]]:
    """judge -> the keys a report adds per judge: `corrected` {estimate, ci_low, ci_high,
    n_reviewed}, `human_only`, `judge_only`, `power` and `agreement` (JudgeAgreement as a
    dict, None without reviewed pass/fail pairs). `options` go to `corrected_estimates`
    (start_ms, end_ms, include_dropped, rules, ...; those four also to `agreement`)."""
    from .corrected import corrected_estimates

    judged, labels = list(judged), list(labels)
    shared = {k: options[k] for k in ("start_ms", "end_ms", "include_dropped", "rules")
              if k in options}  # fmt: skip
    agree = {a.judge: a.to_dict() for a in agreement(judged, labels, counts, confidence,
                                                     **shared)}  # fmt: skip
    return {
        c.judge: {**c.report_entry(), "agreement": agree.get(c.judge)}
        for c in corrected_estimates(judged, labels, counts, confidence, **options)
    }
