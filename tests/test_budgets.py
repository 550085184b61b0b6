"""`eval` budgets are limits: --max-traces, --max-tokens and --max-usd stop the run before
the limit is passed, up to what the judge calls already in flight use beyond their estimate."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from tests.test_evaluation import (
    cli,
    judge_url,  # noqa: F401 - the module-scoped fake judge fixture
    policy_traces,
    seed_known_population,
    state_of,
    write_policy,
)
from trace_tui.evaluation import queue

SEEDS = itertools.count(141)  # seeds are per server: see seed_known_population


def summary_of(out) -> dict:
    return json.loads(out.stdout.strip().splitlines()[-1])["summary"]


def call_tokens(infos) -> list[int]:
    """Tokens per judge call, as the verdicts recorded them."""
    return [int(a.metadata["judge_input_tokens"]) + int(a.metadata["judge_output_tokens"])
            for i in infos for a in i.assessments if a.name == "quality"]


@pytest.fixture
def queued_policy(mlflow_uri: str, fresh_experiment, judge_url, tmp_path: Path):  # noqa: F811
    """40 queued traces, one judge each."""
    _, exp = fresh_experiment
    seed_known_population(mlflow_uri, exp, 40, seed=next(SEEDS))  # trace ids differ per test
    policy_file = tmp_path / "policy.toml"
    name = write_policy(policy_file, exp, judge_url, rate=1.0, judges="quality")
    # A model the bundled price catalog knows, so judge calls carry a dollar cost.
    policy_file.write_text(policy_file.read_text().replace("openai:/fake-judge",
                                                           "openai:/gpt-4o-mini"))
    assert cli("sample", "--policy", str(policy_file), uri=mlflow_uri).returncode == 0
    return exp, name, policy_file


async def test_max_traces_judges_exactly_that_many(mlflow_uri: str, queued_policy) -> None:
    exp, name, policy_file = queued_policy
    out = cli("eval", "--policy", str(policy_file), "--concurrency", "8", "--max-traces", "3",
              uri=mlflow_uri)
    assert out.returncode == 0, out.stderr
    summary = summary_of(out)
    assert summary["done"] == 3 and summary["stopped_by_budget"] == "max_traces=3"
    states = [state_of(i, name) for i in await policy_traces(mlflow_uri, exp, name)]
    assert states.count(queue.DONE) == 3 and states.count(queue.QUEUED) == 37


async def test_token_and_dollar_limits_stop_within_one_call(mlflow_uri: str,
                                                            queued_policy) -> None:
    exp, name, policy_file = queued_policy
    out = cli("eval", "--policy", str(policy_file), "--max-traces", "1", uri=mlflow_uri)
    assert out.returncode == 0, out.stderr
    first = summary_of(out)
    assert first["done"] == 1, out.stdout
    per_call_tokens, per_call_usd = first["judge_tokens"], first["judge_cost_usd"]
    assert per_call_tokens > 0 and per_call_usd > 0

    limit = int(4.5 * per_call_tokens)
    out = cli("eval", "--policy", str(policy_file), "--concurrency", "8",
              "--max-tokens", str(limit), uri=mlflow_uri)
    assert out.returncode == 0, out.stderr
    summary = summary_of(out)
    biggest = max(call_tokens(await policy_traces(mlflow_uri, exp, name)))
    assert summary["stopped_by_budget"] == f"max_tokens={limit}"
    assert summary["done"] >= 3 and summary["judge_tokens"] <= limit + biggest

    usd = round(4.5 * per_call_usd, 9)
    out = cli("eval", "--policy", str(policy_file), "--concurrency", "8",
              "--max-usd", repr(usd), uri=mlflow_uri)
    assert out.returncode == 0, out.stderr
    summary = summary_of(out)
    assert summary["stopped_by_budget"] == f"max_usd={usd}"
    assert summary["done"] >= 3 and summary["judge_cost_usd"] <= usd + 1.5 * per_call_usd


async def test_budget_holds_estimates_of_calls_in_flight() -> None:
    """The reservation arithmetic on its own: no call starts that the budget cannot hold."""
    import asyncio

    from trace_tui.evaluation.budget import Budget
    from trace_tui.evaluation.worker import EvalOptions

    budget = Budget(EvalOptions(max_tokens=250))
    first = await budget.reserve(["q"])
    assert first is not None
    waiting = asyncio.ensure_future(budget.reserve(["q"]))  # unknown cost: the first runs alone
    await asyncio.sleep(0)
    assert not waiting.done()
    budget.spend("q", 100, 0.0)
    budget.release(first)
    second = await asyncio.wait_for(waiting, 5)
    assert second is not None and second.tokens == 100  # held at the judge's mean
    # 100 spent + 100 held + 100 more > 250: a third call waits for the one in flight...
    third = asyncio.ensure_future(budget.reserve(["q"]))
    await asyncio.sleep(0)
    assert not third.done()
    budget.spend("q", 100, 0.0)
    budget.release(second)
    # ...which leaves 200 spent: the next one would pass the limit, so the run stops.
    assert await asyncio.wait_for(third, 5) is None
    assert budget.reason == "max_tokens=250" and budget.spent_tokens == 200
