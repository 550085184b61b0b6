"""Human labels: HUMAN assessments named exactly like the judge they answer (MLflow's
convention for aligning judges with humans), validated like the judge's own values.

One writer for the review screen, ``trace-tui label`` and ``trace-tui review --import``, so the
three produce the same assessment. A label is keyed by (trace, judge, reviewer): writing it
again with the same value and rationale changes nothing; with another value it updates the
existing assessment in place (re-import is idempotent, a reviewer never has two labels).

Metadata of a label (the review's sampling facts; the report's agreement and corrected
estimates read them):

===================================  ======================================================
``trace_tui.policy``                 policy whose review sample the trace is in
``trace_tui.stratum``                its stratum in that policy
``trace_tui.window``                 window start (ms) of its cell
``trace_tui.policy_version``         policy version that sampled it
``trace_tui.judge_probability``      pi: inclusion probability of the judged sample (judge)
``trace_tui.review_probability``     r: conditional probability of review given judged
                                     (absent: the trace was not drawn by the review sample)
``trace_tui.label_via``              review | label | import
===================================  ======================================================
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trace_tui.core import tags as T
from trace_tui.core.client import MlflowClient
from trace_tui.core.errors import ConfigError
from trace_tui.core.model import Assessment, TraceInfo
from trace_tui.evaluation import queue

HUMAN = "HUMAN"
REVIEW_PROBABILITY = queue.PREFIX + "review_probability"
LABEL_VIA = queue.PREFIX + "label_via"
YES_WORDS = frozenset({"y", "yes", "true", "pass", "1"})
NO_WORDS = frozenset({"n", "no", "false", "fail", "0"})


class LabelError(ConfigError):
    """A label that cannot be written; ``str()`` is one line naming the culprit."""


@dataclass(frozen=True)
class JudgeKind:
    """What a judge's value looks like: ``value_type`` bool | yes_no | int | float | str."""

    name: str
    value_type: str = "yes_no"
    pass_threshold: float | None = None

    @property
    def hint(self) -> str:
        return {"bool": "y/n", "yes_no": "y/n", "int": "an integer", "float": "a number",
                "str": "text"}.get(self.value_type, "a value")


def judge_kinds(policy: Any) -> dict[str, JudgeKind]:
    """The policy's judges by name (builtin scorers answer yes/no)."""
    from trace_tui.judging.spec import policy_judge_specs

    return {s.name: JudgeKind(s.name, s.feedback_value_type or "yes_no", s.pass_threshold)
            for s in policy_judge_specs(policy)}


def kind_from_value(judge: str, value: Any) -> JudgeKind:
    """A judge's kind guessed from one of its verdicts (no policy at hand)."""
    if isinstance(value, bool):
        return JudgeKind(judge, "bool")
    if isinstance(value, int):
        return JudgeKind(judge, "int")
    if isinstance(value, float):
        return JudgeKind(judge, "float")
    if isinstance(value, str) and value.strip().lower() in YES_WORDS | NO_WORDS:
        return JudgeKind(judge, "yes_no")
    return JudgeKind(judge, "str")


def parse_value(kind: JudgeKind, raw: Any) -> Any:
    """``raw`` (text or a typed value) as a value of the judge's type, or LabelError."""
    text = str(raw).strip()
    bad = LabelError(f"--value {text[:40]!r}: judge {kind.name!r} takes {kind.hint}")
    if kind.value_type in ("bool", "yes_no"):
        word = text.lower()
        if word not in YES_WORDS | NO_WORDS:
            raise bad
        yes = word in YES_WORDS
        return yes if kind.value_type == "bool" else ("yes" if yes else "no")
    if kind.value_type == "int":
        try:
            return int(text)
        except ValueError:
            raise bad from None
    if kind.value_type == "float":
        try:
            number = float(text)
        except ValueError:
            raise bad from None
        if not math.isfinite(number):
            raise bad
        return number
    if not text:
        raise bad
    return text


@dataclass(frozen=True)
class LabelFacts:
    """The review's sampling facts of one trace for one policy (label metadata)."""

    policy: str = ""
    stratum: str = ""
    window_start_ms: int | None = None
    policy_version: str = ""
    judge_probabilities: Mapping[str, float] | None = None
    probability: float = math.nan
    review_probability: float | None = None

    def metadata(self, judge: str, via: str) -> dict[str, str]:
        meta = {LABEL_VIA: via}
        if self.policy:
            pi = (self.judge_probabilities or {}).get(judge, self.probability)
            meta |= {queue.POLICY: self.policy, queue.STRATUM: self.stratum,
                     queue.WINDOW: str(self.window_start_ms),
                     queue.POLICY_VERSION: self.policy_version,
                     queue.JUDGE_PROBABILITY: repr(pi)}
        if self.review_probability is not None:
            meta[REVIEW_PROBABILITY] = repr(self.review_probability)
        return meta


def facts_for(info: TraceInfo, policy: str | None) -> LabelFacts:
    """Facts from the trace's tags: ``policy``'s sample and review tags (else the first
    policy that sampled it, else none)."""
    from trace_tui.evaluation import review

    for name in [policy] if policy else sorted(set(_sample_policies(info.tags))):
        sample = queue.SampleFacts.from_tags(info.tags, name)
        if sample is None:
            continue
        r = review.review_probability(info.tags, name)
        return LabelFacts(name, sample.stratum, sample.window_start_ms, sample.policy_version,
                          dict(sample.judges), sample.probability, r)
    return LabelFacts(policy or "")


def _sample_policies(tags: Mapping[str, str]) -> list[str]:
    """Policy names from the trace's sample tags (their JSON carries the real name)."""
    out = []
    for key, raw in tags.items():
        if key.startswith(T.SAMPLE_PREFIX):
            try:
                out.append(str(json.loads(raw)["policy"]))
            except (ValueError, KeyError, TypeError):
                continue
    if tags.get(queue.POLICY):
        out.append(tags[queue.POLICY])
    return out


def human_label(info: TraceInfo, judge: str, reviewer: str) -> Assessment | None:
    """This reviewer's label of ``judge`` on the trace, if any."""
    for a in info.assessments:
        if (a.name == judge and a.source_type == HUMAN and a.source_id == reviewer
                and a.valid and a.error is None):
            return a
    return None


def human_labels(info: TraceInfo, judge: str) -> list[Assessment]:
    """Every reviewer's label of ``judge`` on the trace."""
    return [a for a in info.assessments
            if a.name == judge and a.source_type == HUMAN and a.valid and a.error is None]


async def write_label(client: MlflowClient, info: TraceInfo, judge: str, value: Any,
                      reviewer: str, facts: LabelFacts, *, rationale: str = "",
                      via: str = "label") -> tuple[str, Assessment]:
    """Create or update this reviewer's label; returns (created | updated | unchanged, it)."""
    existing = human_label(info, judge, reviewer)
    if existing is not None:
        if existing.value == value and (existing.rationale or "") == (rationale or ""):
            return "unchanged", existing
        updated = await client.update_assessment(info.trace_id, existing.assessment_id,
                                                 value=value, rationale=rationale or "")
        return "updated", updated
    created = await client.create_assessment(
        info.trace_id, judge, value, source_type=HUMAN, source_id=reviewer,
        rationale=rationale or None, metadata=facts.metadata(judge, via))
    return "created", created


@dataclass(frozen=True)
class CsvLabel:
    line: int
    trace_id: str
    judge: str
    value: str
    rationale: str = ""
    reviewer: str = ""


def read_labels_csv(path: Path) -> list[CsvLabel]:
    """Rows of ``trace_id, judge, value[, rationale, reviewer]`` (a header row is optional);
    a malformed row is a LabelError naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise LabelError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise LabelError(f"{path}: not UTF-8 text") from None
    rows = list(csv.reader(text.splitlines()))
    out = []
    for i, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if i == 1 and [c.lower() for c in cells[:3]] == ["trace_id", "judge", "value"]:
            continue
        if len(cells) < 3 or not cells[0] or not cells[1]:
            raise LabelError(f"{path}:{i}: expected trace_id,judge,value[,rationale,reviewer]")
        cells += [""] * (5 - len(cells))
        out.append(CsvLabel(i, cells[0], cells[1], cells[2], cells[3], cells[4]))
    return out


def validate_rows(path: Path, rows: Iterable[CsvLabel],
                  kinds: Mapping[str, JudgeKind]) -> list[tuple[CsvLabel, Any]]:
    """Every row's value parsed; the first bad one is a LabelError naming file and line."""
    out = []
    for row in rows:
        kind = kinds.get(row.judge)
        if kind is None:
            raise LabelError(f"{path}:{row.line}: judge {row.judge[:60]!r} is not in the "
                             f"policy (one of: {', '.join(sorted(kinds))})")
        try:
            out.append((row, parse_value(kind, row.value)))
        except LabelError as exc:
            raise LabelError(f"{path}:{row.line}: {str(exc).removeprefix('--value ')}") from None
    return out


async def import_labels(client: MlflowClient, policy: str,
                        rows: Sequence[tuple[CsvLabel, Any]],
                        default_reviewer: str) -> dict[str, int]:
    """Write validated rows; counts of created / updated / unchanged."""
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    ids = list(dict.fromkeys(r.trace_id for r, _ in rows))
    infos = {i.trace_id: i for i in await client.batch_get_trace_infos(ids)}
    missing = [t for t in ids if t not in infos]
    if missing:
        raise LabelError(f"trace {missing[0][:80]!r} not found")
    for row, value in rows:
        info = infos[row.trace_id]
        reviewer = row.reviewer or default_reviewer
        outcome, written = await write_label(client, info, row.judge, value, reviewer,
                                             facts_for(info, policy), rationale=row.rationale,
                                             via="import")
        counts[outcome] += 1
        if outcome == "created":  # later rows of the same trace see it
            info.assessments.append(written)
    return counts
