"""Names of the ``trace_tui.*`` tags a sampling policy writes on traces (no dependencies).

Each policy has tags of its own, so two policies that select the same trace never overwrite
each other: ``trace_tui.queue.<policy>`` (queued | done | failed, written last),
``trace_tui.sample.<policy>`` (JSON: stratum, probability, rule, weight, window, judges,
policy version), ``trace_tui.stratum.<policy>`` (for filtering in the MLflow UI) and
``trace_tui.error.<policy>``; a judged trace drawn for human review gets
``trace_tui.review_sample.<policy>`` (JSON: r, judged in its cell) and
``trace_tui.review.<policy>`` (queued | done, written last). ``<policy>`` is the policy
name when it is made of letters, digits, ``_`` and ``-``, else a readable form plus a short
hash.

Data written before policies had tags of their own (one ``trace_tui.policy`` naming the
policy, plus ``trace_tui.queue`` / ``.stratum`` / ``.probability`` / ``.sample`` /
``.error``) is still read: the ``LEGACY_*`` names.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

PREFIX = "trace_tui."
QUEUE_PREFIX = PREFIX + "queue."
SAMPLE_PREFIX = PREFIX + "sample."
STRATUM_PREFIX = PREFIX + "stratum."
ERROR_PREFIX = PREFIX + "error."
REVIEW_PREFIX = PREFIX + "review."
REVIEW_SAMPLE_PREFIX = PREFIX + "review_sample."

LEGACY_POLICY = PREFIX + "policy"
LEGACY_QUEUE = PREFIX + "queue"
LEGACY_STRATUM = PREFIX + "stratum"
LEGACY_PROBABILITY = PREFIX + "probability"
LEGACY_SAMPLE = PREFIX + "sample"
LEGACY_ERROR = PREFIX + "error"

_SAFE = re.compile(r"[A-Za-z0-9_-]{1,120}")


def policy_key(policy: str) -> str:
    """The policy's name as it appears in tag keys (MLflow allows few characters there)."""
    if _SAFE.fullmatch(policy):
        return policy
    readable = re.sub(r"[^A-Za-z0-9_-]", "_", policy)[:80]
    return f"{readable}-{hashlib.sha256(policy.encode()).hexdigest()[:10]}"


def queue_tag(policy: str) -> str:
    return QUEUE_PREFIX + policy_key(policy)


def sample_tag(policy: str) -> str:
    return SAMPLE_PREFIX + policy_key(policy)


def stratum_tag(policy: str) -> str:
    return STRATUM_PREFIX + policy_key(policy)


def error_tag(policy: str) -> str:
    return ERROR_PREFIX + policy_key(policy)


def review_tag(policy: str) -> str:
    return REVIEW_PREFIX + policy_key(policy)


def review_sample_tag(policy: str) -> str:
    return REVIEW_SAMPLE_PREFIX + policy_key(policy)


def review_states(tags: Mapping[str, str]) -> dict[str, str]:
    """Every policy's review state on a trace (queued | done), keyed by policy key."""
    return {k[len(REVIEW_PREFIX):]: v for k, v in tags.items() if k.startswith(REVIEW_PREFIX)}


def queue_states(tags: Mapping[str, str]) -> dict[str, str]:
    """Every policy's queue state on a trace, keyed by policy key (legacy data included)."""
    states = {k[len(QUEUE_PREFIX):]: v for k, v in tags.items() if k.startswith(QUEUE_PREFIX)}
    legacy = tags.get(LEGACY_QUEUE)
    if legacy:
        key = policy_key(tags.get(LEGACY_POLICY, ""))
        states.setdefault(key, legacy)
    return states
