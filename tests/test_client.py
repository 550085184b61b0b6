"""The async client against the suite's real MLflow server."""

from __future__ import annotations

import pytest

from tests.conftest import SEED_TRACES, Seeded
from trace_tui.core.client import Credentials, MlflowClient
from trace_tui.core.errors import MlflowApiError, MlflowUnavailableError
from trace_tui.core.retry import Backoff
from trace_tui.server.embedded import free_port


async def test_search_pages_past_the_500_cap(seeded: Seeded) -> None:
    async with MlflowClient(seeded.uri) as client:
        infos = await client.search_traces([seeded.experiment_id])
        pages = [len(p) async for p in client.iter_trace_pages([seeded.experiment_id])]
        limited = await client.search_traces([seeded.experiment_id], max_results=7)
    assert len(infos) == SEED_TRACES and {i.trace_id for i in infos} == set(seeded.trace_ids)
    assert pages == [500, SEED_TRACES - 500]
    assert len(limited) == 7
    times = [i.request_time_ms for i in infos]
    assert times == sorted(times, reverse=True)  # newest first


async def test_batch_get_returns_every_trace_and_rollup_matches_server(seeded: Seeded) -> None:
    ids = seeded.trace_ids[:300]
    async with MlflowClient(seeded.uri, batch_size=25, concurrency=4) as client:
        trees = await client.batch_get_traces([*ids, "tr-" + "0" * 32])
    assert [t.trace_id for t in trees] == ids  # order kept, unknown id left out
    nested = [t for t in trees
              if any(s.tokens and any(c.tokens for c in s.children) for s in t.walk())]
    assert nested, "the demo data must contain LLM spans nested under LLM spans"
    for tree in trees:
        assert tree.info.tokens is not None
        assert tree.tokens == tree.info.tokens, tree.trace_id
    errors = [t for t in trees if t.status == "ERROR"]
    assert errors and all(any(s.exceptions for s in t.walk()) for t in errors)


async def test_get_trace_and_filters(seeded: Seeded) -> None:
    async with MlflowClient(seeded.uri) as client:
        errors = await client.search_traces([seeded.experiment_id],
                                            filter_string="trace.status = 'ERROR'")
        tree = await client.get_trace(errors[0].trace_id)
        info = await client.get_trace_info(errors[0].trace_id)
        exp = await client.resolve_experiment(seeded.experiment_name)
        same = await client.resolve_experiment(seeded.experiment_id)
    assert 0 < len(errors) < SEED_TRACES // 5
    assert tree.status == "ERROR" and info.trace_id == tree.trace_id
    assert tree.roots[0].name == tree.name and len(tree.spans) >= 4
    assert exp.experiment_id == same.experiment_id == seeded.experiment_id


async def test_tags_and_assessments_round_trip(seeded: Seeded) -> None:
    trace_id = seeded.trace_ids[-1]
    async with MlflowClient(seeded.uri) as client:
        await client.set_trace_tag(trace_id, "reviewed", "yes")
        assert (await client.get_trace_info(trace_id)).tags["reviewed"] == "yes"
        await client.delete_trace_tag(trace_id, "reviewed")
        assert "reviewed" not in (await client.get_trace_info(trace_id)).tags
        created = await client.create_assessment(
            trace_id, "helpfulness", True, source_type="HUMAN", source_id="alice",
            rationale="clear", metadata={"k": 1})
        updated = await client.update_assessment(trace_id, created.assessment_id, value=False,
                                                 rationale="on reflection, no")
        info = await client.get_trace_info(trace_id)
        await client.delete_assessment(trace_id, created.assessment_id)
        after = await client.get_trace_info(trace_id)
    assert created.source_type == "HUMAN" and created.metadata == {"k": "1"}
    assert updated.value is False and updated.rationale == "on reflection, no"
    found = [a for a in info.assessments if a.assessment_id == created.assessment_id]
    assert found and found[0].value is False
    assert all(a.assessment_id != created.assessment_id for a in after.assessments)


async def test_bad_filter_is_a_one_line_error_naming_the_problem(seeded: Seeded) -> None:
    async with MlflowClient(seeded.uri) as client:
        with pytest.raises(MlflowApiError) as err:
            await client.search_traces([seeded.experiment_id],
                                       filter_string="trace.status == 'OK'")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "'=='" in str(err.value) and "\n" not in str(err.value)


async def test_unknown_trace_and_experiment(seeded: Seeded) -> None:
    async with MlflowClient(seeded.uri) as client:
        with pytest.raises(MlflowApiError) as err:
            await client.get_trace("tr-" + "ab" * 16)
        with pytest.raises(MlflowApiError, match="no experiment named"):
            await client.resolve_experiment("no-such-experiment")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST" and err.value.status == 404


async def test_unreachable_server_is_a_clear_error() -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    async with MlflowClient(uri, read_retries=2, backoff=Backoff(first_s=0.01)) as client:
        with pytest.raises(MlflowUnavailableError, match="unreachable") as err:
            await client.search_experiments()
        assert not await client.health()
    assert uri in str(err.value)


def test_credentials_from_env_never_show_the_secret() -> None:
    token = Credentials.from_env({"MLFLOW_TRACKING_TOKEN": "s3cr3t-token"})
    basic = Credentials.from_env({"MLFLOW_TRACKING_USERNAME": "bob",
                                  "MLFLOW_TRACKING_PASSWORD": "hunter2"})
    assert token.header() == {"Authorization": "Bearer s3cr3t-token"}
    assert basic.header()["Authorization"].startswith("Basic ")
    assert "s3cr3t" not in repr(token) and "hunter2" not in repr(basic)
    assert "s3cr3t" not in repr(MlflowClient("http://127.0.0.1:1", credentials=token))


async def test_user_info_in_the_uri_is_basic_auth_and_never_shown() -> None:
    import base64

    from tests.fakes import FakeWeb
    from trace_tui.core.errors import NotMlflowServerError

    fake = FakeWeb("empty")
    try:
        uri = fake.uri.replace("http://", "http://bob:p%40ss@")
        async with MlflowClient(uri, credentials=None) as client:
            with pytest.raises(NotMlflowServerError) as err:
                await client.get_experiment_by_name("x")
    finally:
        fake.close()
    assert fake.last_auth == "Basic " + base64.b64encode(b"bob:p@ss").decode()
    assert "p%40ss" not in str(err.value) and "***@127.0.0.1" in str(err.value)
    assert client.tracking_uri == fake.uri and "bob" not in repr(client)
