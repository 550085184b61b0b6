"""The evaluation queue, kept in MLflow as trace tags (visible and filterable in the MLflow UI).

A selected trace carries ``trace_tui.policy``, ``trace_tui.queue`` (queued | done | failed),
and the sampling facts the estimators need (rule, stratum, inclusion probability, weight,
window, judges to run). A verdict is an assessment whose metadata repeats those facts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from trace_tui.model import Assessment, TraceInfo

PREFIX = "trace_tui."
POLICY = PREFIX + "policy"
POLICY_VERSION = PREFIX + "policy_version"
QUEUE = PREFIX + "queue"
RULE = PREFIX + "rule"
STRATUM = PREFIX + "stratum"
PROBABILITY = PREFIX + "probability"
WEIGHT = PREFIX + "weight"
WINDOW = PREFIX + "window"
JUDGES = PREFIX + "judges"
JUDGE_PROBABILITY = PREFIX + "judge_probability"
ERROR = PREFIX + "error"

QUEUED, DONE, FAILED = "queued", "done", "failed"


def tag_filter(key: str, value: str) -> str:
    """An MLflow filter clause on a dotted tag key (backticks are required)."""
    quoted = value.replace("'", "\\'")
    return f"tags.`{key}` = '{quoted}'"


def queue_filter(policy: str, state: str | None = None) -> str:
    clauses = [tag_filter(POLICY, policy)]
    if state:
        clauses.append(tag_filter(QUEUE, state))
    return " AND ".join(clauses)


def selection_tags(policy: str, version: str, *, rule: str, stratum: str, probability: float,
                   weight: float, window_start_ms: int,
                   judges: Mapping[str, float]) -> dict[str, str]:
    """The tags of a selected trace; ``judges`` maps each judge to run to its own inclusion
    probability (judges may run on nested subsets of the sample)."""
    return {
        POLICY: policy, POLICY_VERSION: version, QUEUE: QUEUED, RULE: rule, STRATUM: stratum,
        PROBABILITY: repr(probability), WEIGHT: repr(weight), WINDOW: str(window_start_ms),
        JUDGES: ",".join(f"{name}={p!r}" for name, p in judges.items()),
    }


def in_shard(trace_id: str, shard: int, shards: int) -> bool:
    """Stable split of the queue: N workers, no coordination, every trace in one shard."""
    if shards <= 1:
        return True
    digest = hashlib.sha256(trace_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards == shard


def judges_of(info: TraceInfo) -> dict[str, float]:
    """Judge -> inclusion probability, as the sampler tagged them."""
    out: dict[str, float] = {}
    for item in filter(None, info.tags.get(JUDGES, "").split(",")):
        name, _, prob = item.partition("=")
        try:
            out[name] = float(prob) if prob else float(info.tags.get(PROBABILITY, "1"))
        except ValueError:
            out[name] = float("nan")
    return out


def verdict_of(info: TraceInfo, policy: str, judge: str) -> Assessment | None:
    """This policy's existing verdict of ``judge`` on the trace, if one was written."""
    for assessment in info.assessments:
        if (assessment.name == judge and assessment.source_type == "LLM_JUDGE"
                and assessment.metadata.get(POLICY) == policy):
            return assessment
    return None


def sampling_facts(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags the report and the assessment metadata need, as stored on the trace."""
    keys = (POLICY, POLICY_VERSION, RULE, STRATUM, PROBABILITY, WEIGHT, WINDOW)
    return {k: tags[k] for k in keys if k in tags}
