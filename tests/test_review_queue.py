"""The review queue: judged traces drawn for human review, per-policy tags, list badges.

Judging is simulated by writing what the eval worker writes (sample tags, queue=done, an
LLM_JUDGE verdict per judge): the review half only reads those, and real judges are slow."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.test_evaluation import cli, seed_known_population, write_policy
from trace_tui.core import tags as T
from trace_tui.core.client import MlflowClient
from trace_tui.evaluation import queue, review

REVIEW = '\n[review]\nfraction = {fraction}\nmin_per_stratum = {minimum}\nsalt = "rv"\n'


async def judged_setup(uri: str, exp: str, tmp_path: Path, *, n: int = 6, seed: int = 131,
                       fraction: float = 1.0, minimum: int = 0) -> tuple[Path, str, list[str]]:
    """n traces, judged (simulated) by a policy with a [review] section: (file, name, ids)."""
    truth = await asyncio.to_thread(seed_known_population, uri, exp, n, seed)
    path = tmp_path / "policy.toml"
    name = write_policy(path, exp, "http://127.0.0.1:9/v1", judges="quality,safe")
    path.write_text(path.read_text() + REVIEW.format(fraction=fraction, minimum=minimum))
    ids = sorted(truth)
    async with MlflowClient(uri) as client:
        for i, tid in enumerate(ids):
            facts = queue.SampleFacts(name, "route=a", 0.5, rule="by-route", weight=2.0,
                                      window_start_ms=1_000, judges={"quality": 0.5,
                                                                     "safe": 0.25})
            for key, value in facts.tags().items():
                await client.set_trace_tag(tid, key, value)
            for judge, value in (("quality", i % 2 == 0), ("safe", "yes")):
                await client.create_assessment(tid, judge, value, source_type="LLM_JUDGE",
                                               source_id="fake", metadata=facts.metadata(judge))
            await client.set_trace_tag(tid, T.queue_tag(name), queue.DONE)
    return path, name, ids


async def test_review_draws_from_judged_traces_once_with_its_rate(
        mlflow_uri, fresh_experiment, tmp_path: Path) -> None:
    _, exp = fresh_experiment
    path, name, ids = await judged_setup(mlflow_uri, exp, tmp_path, fraction=0.5)
    out = await asyncio.to_thread(cli, "review", "--policy", str(path), "--queue",
                                  uri=mlflow_uri)
    assert out.returncode == 0, out.stderr
    first = json.loads(out.stdout)
    assert first["judged"] == 6 and first["newly_queued"] == first["waiting"]
    again = json.loads((await asyncio.to_thread(cli, "review", "--policy", str(path), "--queue",
                                                uri=mlflow_uri)).stdout)
    assert again["newly_queued"] == 0 and again["waiting"] == first["waiting"]  # idempotent
    async with MlflowClient(mlflow_uri) as client:
        queued = await review.review_queue(client, name, [exp])
        infos = await client.batch_get_trace_infos(ids)
    assert len(queued) == first["waiting"]
    from samplers.review import review_decision

    policy_review = __import__("samplers").load_policy(path).review
    for info in infos:
        expected = review_decision(info.trace_id, "route=a", 6, policy_review)
        drawn = review.review_state(info.tags, name) == review.QUEUED
        assert drawn == expected.selected
        if drawn:
            assert review.review_probability(info.tags, name) == expected.probability == 0.5


def test_list_column_shows_review_state() -> None:
    from trace_tui.core.render import list_badges

    assert list_badges({T.queue_tag("p"): "done", T.review_tag("p"): "queued"}, []) == "J R?"
    assert list_badges({T.queue_tag("p"): "done", T.review_tag("p"): "done"}, []) == "J R"
    assert list_badges({T.queue_tag("p"): "done"}, []) == "J"
    from trace_tui.core.model import Assessment

    label = Assessment("a1", "quality", "HUMAN", "ana", False,
                       metadata={"trace_tui.label_via": "review"})
    thumb = Assessment("a2", "user_feedback", "HUMAN", "ana", True)
    assert list_badges({T.review_tag("p"): "done"}, [label, thumb]) == "R +1 -0"
