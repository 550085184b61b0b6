"""Rendering of a PolicyReport: the text table and the CSV frame (JSON is `to_dict`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trace_tui.core.text import safe_text

if TYPE_CHECKING:  # pragma: no cover
    from trace_tui.evaluation.report import PolicyReport

OVERALL = "__overall__"
AGREEMENT_COLUMNS = ("n_reviewed", "tp", "fp", "fn", "tn", "accuracy", "accuracy_ci_low",
                     "accuracy_ci_high", "true_pass_rate", "true_fail_rate", "kappa",
                     "kappa_ci_low", "kappa_ci_high")  # fmt: skip
ESTIMATE_COLUMNS = ("human_only", "human_only_ci_low", "human_only_ci_high", "corrected",
                    "corrected_ci_low", "corrected_ci_high")  # fmt: skip


def pct(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):5.1f}%"


def interval(d: dict[str, Any] | None) -> str:
    """`estimate [low, high]` of an {estimate, ci_low, ci_high} mapping; '-' without data."""
    if not d or d.get("estimate") is None:
        return "-"
    return f"{pct(d['estimate'])} [{pct(d.get('ci_low'))}, {pct(d.get('ci_high'))}]"


def kappa_text(d: dict[str, Any] | None) -> str:
    if not d or d.get("estimate") is None:
        return "-"
    k = f"{d['estimate']:.2f}"
    if d.get("ci_low") is None:
        return k
    return f"{k} [{d['ci_low']:.2f}, {d['ci_high']:.2f}]"


def agreement_line(a: dict[str, Any]) -> str:
    c = a["confusion"]
    return (f"n {a['n_reviewed']}  tp {c['tp']} fp {c['fp']} fn {c['fn']} tn {c['tn']}  "
            f"accuracy {interval(a['accuracy'])}  true-pass {pct(a['true_pass_rate']['estimate'])}"
            f"  true-fail {pct(a['true_fail_rate']['estimate'])}  kappa {kappa_text(a['kappa'])}")


def version_lines(policy: str, versions: list[dict[str, Any]]) -> list[str]:
    return [f"sample from {policy} v{v['version']} (sha256 {v['sha256']}): {v['windows']} "
            f"window(s)" for v in versions]  # fmt: skip


def text(report: PolicyReport) -> str:
    doc = report.to_dict()
    lines = version_lines(report.policy, doc["policy_versions"])
    for judge in doc["judges"]:
        lines.append(f"{judge['judge']}: {pct(judge['estimate'])}  "
                     f"[{pct(judge['ci_low'])}, {pct(judge['ci_high'])}]  "
                     f"judged {judge['n_judged']} of {judge['population']:g}")
        for s in judge.get("strata", []):
            est = (f"{pct(s['estimate'])}  [{pct(s['ci_low'])}, {pct(s['ci_high'])}]"
                   if s.get("estimate") is not None else "not judged yet")
            lines.append(f"    {s['stratum'][:60]:<60} {est:<28} "
                         f"{s['n_judged']:>4}/{s['population']:<6g}")
        corrected = judge.get("corrected") or {}
        if corrected.get("n_reviewed"):
            lines.append(f"  judge-only {interval(judge)}  human-only "
                         f"{interval(judge.get('human_only'))}  corrected {interval(corrected)}"
                         f"  reviewed {corrected['n_reviewed']}")
        agree = judge.get("agreement")
        if agree:
            lines.append(f"  agreement  {agreement_line(agree['overall'])}")
            for a in agree["strata"]:
                lines.append(f"    {a['stratum'][:40]:<40} {agreement_line(a)}")
    if not doc["judges"]:
        lines.append("no judge verdicts yet")
    return "\n".join(safe_text(line) for line in lines)


def _agreement_cells(a: dict[str, Any] | None) -> dict[str, Any]:
    if not a:
        return dict.fromkeys(AGREEMENT_COLUMNS)
    return {"n_reviewed": a["n_reviewed"], **a["confusion"],
            "accuracy": a["accuracy"]["estimate"], "accuracy_ci_low": a["accuracy"]["ci_low"],
            "accuracy_ci_high": a["accuracy"]["ci_high"],
            "true_pass_rate": a["true_pass_rate"]["estimate"],
            "true_fail_rate": a["true_fail_rate"]["estimate"],
            "kappa": a["kappa"]["estimate"], "kappa_ci_low": a["kappa"]["ci_low"],
            "kappa_ci_high": a["kappa"]["ci_high"]}  # fmt: skip


def frame(report: PolicyReport) -> Any:
    """Today's columns, then per overall row the human-only and corrected estimates, and per
    row (overall and stratum) the agreement figures; empty cells without reviews."""
    df = report.estimates.to_frame()
    extra: list[dict[str, Any]] = []
    for _, row in df.iterrows():
        entry = report.review.get(row["judge"], {})
        agree = entry.get("agreement") or {}
        cells: dict[str, Any] = dict.fromkeys(ESTIMATE_COLUMNS)
        if row["stratum"] == OVERALL:
            for key in ("human_only", "corrected"):
                d = entry.get(key) or {}
                cells[key], cells[f"{key}_ci_low"], cells[f"{key}_ci_high"] = (
                    d.get("estimate"), d.get("ci_low"), d.get("ci_high"))
            a = agree.get("overall")
        else:
            a = next((s for s in agree.get("strata", []) if s["stratum"] == row["stratum"]),
                     None)  # fmt: skip
        cells.update(_agreement_cells(a))
        extra.append(cells)
    import pandas as pd

    return pd.concat([df.reset_index(drop=True), pd.DataFrame(extra, columns=[
        *ESTIMATE_COLUMNS, *AGREEMENT_COLUMNS])], axis=1)  # fmt: skip
