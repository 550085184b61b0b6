"""`sample --follow` keeps deciding while tags are written, and saves only what is on the server.

Real server, real HTTP. The tag writes are held back by taking the runner's only tag slot
(``tag_concurrency=1``): the writes wait, as they do behind a server saturated by ingest.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from samplers import load_policy
from tests.test_evaluation import seed_known_population, write_policy
from trace_tui.core.client import MlflowClient
from trace_tui.evaluation import queue, sampling

WAIT_S = 60  # bound on each wait for the sampler (a loaded 2-core machine)


async def test_follow_decides_new_traces_while_earlier_tag_writes_wait(
        mlflow_uri: str, fresh_experiment, tmp_path: Path) -> None:
    _, exp = fresh_experiment
    policy_file = tmp_path / "policy.toml"
    name = write_policy(policy_file, exp, "http://127.0.0.1:9/v1", rate=1.0)
    policy = load_policy(policy_file)
    first = seed_known_population(mlflow_uri, exp, 30, seed=7301)
    decided = asyncio.Event()
    want = {"decided": len(first)}
    seen_queued: list[int] = []

    def on_batch(_: object, stats: sampling.SampleStats) -> None:
        seen_queued.append(stats.queued)
        if stats.decided >= want["decided"]:
            decided.set()

    async with MlflowClient(mlflow_uri) as client:
        run_id = await sampling.policy_run(client, exp, policy)
        runner = sampling.SampleRunner(
            client, policy, [exp], run_id,
            await sampling.load_state(client, run_id, policy, "main"), "main", since_ms=0,
            poll_interval_s=0.2, tag_concurrency=1, on_batch=on_batch)
        await runner._writes.acquire()  # the one tag slot: every tag write waits behind it
        following = asyncio.create_task(runner.follow(checkpoint_every_s=0))
        try:
            await asyncio.wait_for(decided.wait(), WAIT_S)
            # More traces arrive while the first ones' tags are still waiting to be written.
            decided.clear()
            second = seed_known_population(mlflow_uri, exp, 10, seed=7302)
            want["decided"] = len(first) + len(second)
            await asyncio.wait_for(decided.wait(), WAIT_S)
            assert runner.stats.selected == len(first) + len(second)
            assert set(seen_queued) == {0}  # decided, none tagged yet
            # A checkpoint meanwhile saves nothing that is not tagged on the server.
            saved = await sampling.load_state(client, run_id, policy, "main")
            assert not (set(saved.recent) & (set(first) | set(second)))
        finally:
            runner._writes.release()
            runner.stream.close()
            stats = await asyncio.wait_for(following, WAIT_S)
        assert (stats.decided, stats.queued) == (40, 40)
        infos = await queue.search_policy_traces(client, [exp], name)
        assert {i.trace_id for i in infos} == set(first) | set(second)
        assert all(queue.queue_state(i.tags, name) == queue.QUEUED for i in infos)

        # A restarted sampler resumes from the saved state: nothing decided or tagged again.
        state = await sampling.load_state(client, run_id, policy, "main")
        assert set(first) | set(second) <= set(state.recent)
        assert sum(pop for pop, _, _ in state.counts.totals().values()) == 40
        again = sampling.SampleRunner(client, policy, [exp], run_id, state, "main",
                                      since_ms=0)
        assert (await again.run_once()).decided == 0
