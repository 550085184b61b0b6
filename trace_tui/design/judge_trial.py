"""The designer's judge test call: one judge of a draft on one trace, verdict and rationale
shown before the policy is saved (imports mlflow through trace_tui.judging, lazily)."""

from __future__ import annotations

import asyncio
from typing import Any

from samplers import parse_policy
from trace_tui.core.client import MlflowClient
from trace_tui.core.errors import ConfigError


async def try_judge(client: MlflowClient, policy_text: str, judge: str, trace_id: str,
                          *, timeout_s: float = 60.0) -> Any:
    """The `JudgeVerdict` of `judge` (declared in `policy_text`) on `trace_id`."""
    from trace_tui.evaluation.worker import load_judges
    from trace_tui.judging import arun_judge, trace_from_rest_json

    policy = parse_policy(policy_text, "<designer>")
    try:
        decl = policy.judge(judge)
    except KeyError:
        raise ConfigError(f"no judge {judge!r} in the draft") from None
    loaded = await asyncio.to_thread(load_judges, [decl])
    raw = await client.batch_get_raw([trace_id])
    if not raw:
        raise ConfigError(f"trace {trace_id} not found")
    trace = await asyncio.to_thread(trace_from_rest_json, raw[0])
    return await arun_judge(loaded[judge].scorer, trace, timeout_s=timeout_s)
