"""`trace-tui policy diff`: two policy versions over the same window, stratum by stratum."""

from __future__ import annotations

from dataclasses import dataclass

from samplers import Policy

from .preview import Preview, PreviewRow, preview
from .window import DesignWindow


@dataclass(frozen=True)
class DiffRow:
    stratum: str
    old: PreviewRow | None
    new: PreviewRow | None

    @property
    def changed(self) -> bool:
        if self.old is None or self.new is None:
            return True
        return (abs(self.old.rate - self.new.rate) > 1e-9
                or abs(self.old.expected_sample - self.new.expected_sample) > 1e-6)


@dataclass
class PolicyDiff:
    old: Preview
    new: Preview
    rows: list[DiffRow]
    header: tuple[str, str]

    def to_text(self, all_rows: bool = False) -> str:
        lines = [f"--- {self.header[0]}", f"+++ {self.header[1]}",
                 f"{'stratum':<40} {'rate':>15} {'sample/window':>17} {'$/window':>19}"]
        for r in self.rows:
            if not (all_rows or r.changed):
                continue
            lines.append(f"{_cut(r.stratum):<40} {_pair(r, 'rate', '{:.1%}'):>15} "
                         f"{_pair(r, 'expected_sample', '{:.1f}'):>17} "
                         f"{_pair(r, 'cost_usd', '{:.4f}'):>19}")
        o, n = self.old, self.new
        lines.append(
            f"total: sample/window {o.expected_sample:.1f} -> {n.expected_sample:.1f}, "
            f"judge tokens/window {o.judge_tokens:,.0f} -> {n.judge_tokens:,.0f}, "
            f"$/window {o.cost_usd:.4f} -> {n.cost_usd:.4f}, "
            f"±half-width {_pct(o.half_width)} -> {_pct(n.half_width)}")
        unchanged = sum(not r.changed for r in self.rows)
        if unchanged and not all_rows:
            lines.append(f"({unchanged} strata unchanged)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        def row(r: PreviewRow | None) -> dict | None:
            return None if r is None else {"rate": r.rate, "expected_sample": r.expected_sample,
                                           "judge_tokens": r.judge_tokens,
                                           "cost_usd": r.cost_usd}
        return {"old": self.old.totals(), "new": self.new.totals(),
                "strata": [{"stratum": r.stratum, "old": row(r.old), "new": row(r.new)}
                           for r in self.rows]}


def diff(old: Policy, new: Policy, window: DesignWindow, judge: str | None = None) -> PolicyDiff:
    a, b = preview(old, window, judge=judge), preview(new, window, judge=judge)
    olds = {r.stratum: r for r in a.rows}
    news = {r.stratum: r for r in b.rows}
    rows = [DiffRow(s, olds.get(s), news.get(s)) for s in sorted(olds.keys() | news.keys())]
    return PolicyDiff(a, b, rows, (old.version_tag, new.version_tag))


def _pair(r: DiffRow, attr: str, fmt: str) -> str:
    a = "-" if r.old is None else fmt.format(getattr(r.old, attr))
    b = "-" if r.new is None else fmt.format(getattr(r.new, attr))
    return a if a == b else f"{a}->{b}"


def _pct(x: float) -> str:
    return "n/a" if x == float("inf") else f"{x:.1%}"


def _cut(text: str, width: int = 40) -> str:
    from trace_tui.core.text import safe_text

    t = safe_text(text)
    return t if len(t) <= width else t[: width - 1] + "…"
