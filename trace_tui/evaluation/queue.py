"""The evaluation queue, kept in MLflow as trace tags (visible and filterable in the MLflow UI).

A selected trace carries five tags: ``trace_tui.policy``, ``trace_tui.stratum``,
``trace_tui.probability`` (its inclusion probability), ``trace_tui.sample`` (JSON: rule,
weight, window, judges with their own probabilities, policy version) and
``trace_tui.queue`` (queued | done | failed), written last. MLflow has no batch tag write,
so fewer tags means fewer round trips per selected trace. A verdict is an assessment whose
metadata repeats the facts, flattened.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from trace_tui.core.model import Assessment, TraceInfo

PREFIX = "trace_tui."
POLICY = PREFIX + "policy"
QUEUE = PREFIX + "queue"
STRATUM = PREFIX + "stratum"
PROBABILITY = PREFIX + "probability"
SAMPLE = PREFIX + "sample"
ERROR = PREFIX + "error"
# assessment metadata only
RULE = PREFIX + "rule"
WEIGHT = PREFIX + "weight"
WINDOW = PREFIX + "window"
POLICY_VERSION = PREFIX + "policy_version"
JUDGE_PROBABILITY = PREFIX + "judge_probability"

QUEUED, DONE, FAILED = "queued", "done", "failed"


@dataclass(frozen=True)
class SampleFacts:
    """What the sampler decided about one trace, as the estimators need it."""

    policy: str
    stratum: str
    probability: float
    rule: str = ""
    weight: float = math.nan
    window_start_ms: int | None = None
    judges: Mapping[str, float] = field(default_factory=dict)  # judge -> its probability
    policy_version: str = ""

    def tags(self) -> dict[str, str]:
        """The tags to write, the queue state last (dicts keep insertion order)."""
        sample = {"rule": self.rule, "weight": self.weight, "window": self.window_start_ms,
                  "judges": dict(self.judges), "policy_version": self.policy_version}
        return {POLICY: self.policy, STRATUM: self.stratum, PROBABILITY: repr(self.probability),
                SAMPLE: json.dumps(sample, separators=(",", ":")), QUEUE: QUEUED}

    def metadata(self, judge: str) -> dict[str, str]:
        """Assessment metadata for ``judge``'s verdict on this trace."""
        return {POLICY: self.policy, STRATUM: self.stratum, PROBABILITY: repr(self.probability),
                WEIGHT: repr(self.weight), RULE: self.rule, WINDOW: str(self.window_start_ms),
                POLICY_VERSION: self.policy_version,
                JUDGE_PROBABILITY: repr(self.judges.get(judge, self.probability))}

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> SampleFacts | None:
        """The facts a sampler tagged, or None for a trace no policy sampled."""
        if POLICY not in tags or STRATUM not in tags:
            return None
        try:
            sample = json.loads(tags.get(SAMPLE, "{}"))
            probability = float(tags.get(PROBABILITY, "nan"))
        except ValueError:
            return None
        window = sample.get("window")
        return cls(policy=tags[POLICY], stratum=tags[STRATUM], probability=probability,
                   rule=str(sample.get("rule", "")),
                   weight=float(sample.get("weight", math.nan)),
                   window_start_ms=int(window) if window is not None else None,
                   judges={str(k): float(v) for k, v in (sample.get("judges") or {}).items()},
                   policy_version=str(sample.get("policy_version", "")))


def tag_filter(key: str, value: str) -> str:
    """An MLflow filter clause on a dotted tag key (backticks are required)."""
    quoted = value.replace("'", "\\'")
    return f"tags.`{key}` = '{quoted}'"


def queue_filter(policy: str, state: str | None = None) -> str:
    clauses = [tag_filter(POLICY, policy)]
    if state:
        clauses.append(tag_filter(QUEUE, state))
    return " AND ".join(clauses)


def in_shard(trace_id: str, shard: int, shards: int) -> bool:
    """Stable split of the queue: N workers, no coordination, every trace in one shard."""
    if shards <= 1:
        return True
    digest = hashlib.sha256(trace_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards == shard


def verdict_of(info: TraceInfo, policy: str, judge: str) -> Assessment | None:
    """This policy's existing verdict of ``judge`` on the trace, if one was written."""
    for assessment in info.assessments:
        if (assessment.name == judge and assessment.source_type == "LLM_JUDGE"
                and assessment.metadata.get(POLICY) == policy):
            return assessment
    return None
