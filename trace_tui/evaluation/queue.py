"""The evaluation queue, kept in MLflow as trace tags (visible and filterable in the MLflow UI).

Every policy has tags of its own (names in `trace_tui.core.tags`): a trace selected by two
policies carries both sets, and neither policy's sample, queue state or report depends on
what the other did. A selected trace carries ``trace_tui.sample.<policy>`` (JSON facts),
``trace_tui.stratum.<policy>`` and ``trace_tui.queue.<policy>`` (queued | done | failed),
the queue state written last. Data from before per-policy tags (``trace_tui.policy`` +
``trace_tui.queue``...) is still read and worked on in place.

A verdict is an LLM_JUDGE assessment named after its judge, whose metadata carries the facts
of the policy that wrote it. Verdicts are shared: a policy that names the same judge reuses
the verdict another policy already wrote on a trace instead of judging it again.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from trace_tui.core import tags as T
from trace_tui.core.client import MlflowClient
from trace_tui.core.model import Assessment, TraceInfo

# Legacy names (kept importable: assessment metadata still uses POLICY / STRATUM / ...).
PREFIX = T.PREFIX
POLICY = T.LEGACY_POLICY
QUEUE = T.LEGACY_QUEUE
STRATUM = T.LEGACY_STRATUM
PROBABILITY = T.LEGACY_PROBABILITY
SAMPLE = T.LEGACY_SAMPLE
ERROR = T.LEGACY_ERROR
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
        """This policy's tags to write, the queue state last (dicts keep insertion order)."""
        sample = {"policy": self.policy, "stratum": self.stratum,
                  "probability": self.probability, "rule": self.rule, "weight": self.weight,
                  "window": self.window_start_ms, "judges": dict(self.judges),
                  "policy_version": self.policy_version}
        return {T.sample_tag(self.policy): json.dumps(sample, separators=(",", ":")),
                T.stratum_tag(self.policy): self.stratum[:4000],
                T.queue_tag(self.policy): QUEUED}

    def metadata(self, judge: str) -> dict[str, str]:
        """Assessment metadata for ``judge``'s verdict on this trace."""
        return {POLICY: self.policy, STRATUM: self.stratum, PROBABILITY: repr(self.probability),
                WEIGHT: repr(self.weight), RULE: self.rule, WINDOW: str(self.window_start_ms),
                POLICY_VERSION: self.policy_version,
                JUDGE_PROBABILITY: repr(self.judges.get(judge, self.probability))}

    @classmethod
    def from_tags(cls, tags: Mapping[str, str], policy: str) -> SampleFacts | None:
        """``policy``'s facts on a trace (its own tags, else legacy ones naming it), or None."""
        raw = tags.get(T.sample_tag(policy))
        try:
            if raw is not None:
                sample = json.loads(raw)
                if sample.get("policy", policy) != policy:
                    return None  # two names that share a key: not ours
                stratum, probability = str(sample["stratum"]), float(sample["probability"])
            elif tags.get(POLICY) == policy and STRATUM in tags:
                sample = json.loads(tags.get(SAMPLE, "{}"))
                stratum, probability = tags[STRATUM], float(tags.get(PROBABILITY, "nan"))
            else:
                return None
            window = sample.get("window")
            return cls(policy=policy, stratum=stratum, probability=probability,
                       rule=str(sample.get("rule", "")),
                       weight=float(sample.get("weight", math.nan)),
                       window_start_ms=int(window) if window is not None else None,
                       judges={str(k): float(v)
                               for k, v in (sample.get("judges") or {}).items()},
                       policy_version=str(sample.get("policy_version", "")))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def uses_legacy(tags: Mapping[str, str], policy: str) -> bool:
    """True for a trace queued before per-policy tags (its state lives in ``trace_tui.queue``)."""
    return T.queue_tag(policy) not in tags and tags.get(POLICY) == policy and QUEUE in tags


def state_tag(tags: Mapping[str, str], policy: str) -> str:
    """The tag holding ``policy``'s queue state on this trace."""
    return QUEUE if uses_legacy(tags, policy) else T.queue_tag(policy)


def error_tag(tags: Mapping[str, str], policy: str) -> str:
    return ERROR if uses_legacy(tags, policy) else T.error_tag(policy)


def queue_state(tags: Mapping[str, str], policy: str) -> str | None:
    """``policy``'s queue state on a trace (queued | done | failed), or None."""
    return tags.get(state_tag(tags, policy)) if (
        T.queue_tag(policy) in tags or tags.get(POLICY) == policy) else None


def tag_filter(key: str, value: str) -> str:
    """An MLflow filter clause on a dotted tag key (backticks are required)."""
    quoted = value.replace("'", "\\'")
    return f"tags.`{key}` = '{quoted}'"


def queue_filters(policy: str, state: str | None = None) -> list[str]:
    """Filters finding ``policy``'s traces: its own tags, then legacy ones (search both)."""
    if state:
        own = tag_filter(T.queue_tag(policy), state)
        legacy = f"{tag_filter(POLICY, policy)} AND {tag_filter(QUEUE, state)}"
    else:
        own = f"tags.`{T.queue_tag(policy)}` LIKE '%'"
        legacy = tag_filter(POLICY, policy)
    return [own, legacy]


def queue_filter(policy: str, state: str | None = None) -> str:
    """The filter for ``policy``'s own (per-policy) tags."""
    return queue_filters(policy, state)[0]


async def search_policy_traces(client: MlflowClient, experiment_ids: Sequence[str],
                               policy: str, state: str | None = None) -> list[TraceInfo]:
    """``policy``'s sampled traces, oldest first: its own tags, then legacy data naming it."""
    found: dict[str, TraceInfo] = {}
    for clause in queue_filters(policy, state):
        for info in await client.search_traces(experiment_ids, filter_string=clause,
                                               order_by=["timestamp_ms ASC"]):
            if state is None or queue_state(info.tags, policy) == state:
                found.setdefault(info.trace_id, info)
    return sorted(found.values(), key=lambda i: (i.request_time_ms, i.trace_id))


def in_shard(trace_id: str, shard: int, shards: int) -> bool:
    """Stable split of the queue: N workers, no coordination, every trace in one shard."""
    if shards <= 1:
        return True
    digest = hashlib.sha256(trace_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards == shard


def verdict_of(info: TraceInfo, judge: str) -> Assessment | None:
    """The verdict of ``judge`` on the trace written by any trace-tui policy (the first one)."""
    for assessment in info.assessments:
        if (assessment.name == judge and assessment.source_type == "LLM_JUDGE"
                and POLICY in assessment.metadata and assessment.error is None):
            return assessment
    return None
