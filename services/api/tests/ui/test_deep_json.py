"""A response of deeply nested JSON: the run records a clear outcome and every page of the check renders."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from contracts.v1 import CheckCompleted, CheckSpec
from contracts.v1.base import utcnow
from services.common.db.models import Check
from services.results.rows import completed_row
from services.runner.http_check import HttpChecker

from .conftest import Ui, store_runs

#: Deeper than Python's recursion limit; 4,000 levels fit the stored 8 KB sample whole, so the run page
#: parses it again.
DEPTHS = [4_000, 200_000]


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.fixture
async def deep_target() -> AsyncIterator[str]:
    async def nested(request: web.Request) -> web.Response:
        depth = int(request.match_info["depth"])
        return web.Response(text=_nested(depth), content_type="application/json")

    app = web.Application()
    app.router.add_get("/nested/{depth}", nested)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


ASSERTIONS = [
    {"source": "status_code", "comparison": "equals", "target": 200},
    {"source": "json_body", "property": "$[0]", "comparison": "exists"},
    {"source": "json_body", "property": "$..x", "comparison": "not_exists"},
    {"source": "json_schema", "comparison": "matches_schema", "target": {"type": "array"}},
    {"source": "text_body", "comparison": "contains", "target": "[["},
]


@pytest.mark.parametrize("depth", DEPTHS, ids=[f"depth-{d}" for d in DEPTHS])
async def test_deeply_nested_json_is_a_clear_outcome_and_pages_render(
    ui: Ui, deep_target: str, depth: int
) -> None:
    spec = CheckSpec.model_validate(
        {
            "name": f"deep-{depth}",
            "request": {"url": f"{deep_target}/nested/{depth}"},
            "regions": ["local"],
            "assertions": ASSERTIONS,
        }
    )
    checker = HttpChecker(region="local")
    try:
        result = await checker.run(spec)
    finally:
        await checker.stop()
    assert result.status == "failed", result.error
    by_source = {outcome.source: outcome for outcome in result.assertions}
    assert by_source["status_code"].passed
    assert by_source["text_body"].passed
    for source in ("json_body", "json_schema"):
        outcome = next(o for o in result.assertions if o.source == source)
        assert not outcome.passed
        assert "nested too deeply" in (outcome.message or ""), outcome.message

    check_id = uuid.uuid4()
    async with ui.sessions() as session, session.begin():
        session.add(
            Check(id=check_id, name=spec.name, spec=spec.model_dump(mode="json"), enabled=True, revision=1)
        )
    now = utcnow()
    completed = CheckCompleted(
        run_id=uuid.uuid4(),
        check_id=check_id,
        slot=now,
        region="local",
        trigger="manual",
        status=result.status,
        started_at=result.started_at,
        completed_at=result.completed_at,
        response=result.response,
        timings=result.timings,
        error=result.error,
        assertions=result.assertions,
        request=result.request,
        runner_id="runner-local",
    )
    await store_runs(ui.sessions, [completed_row(completed)])
    await ui.sign_in()
    for path in (f"/checks/{check_id}", f"/runs/{completed.run_id}", f"/checks/{check_id}/runs", "/"):
        page = await ui.client.get(path)
        assert page.status_code == 200, (path, page.text[:300])
    api = await ui.client.get(
        f"/api/v1/checks/{check_id}/runs", headers={"Authorization": "Bearer ui-test-admin-token"}
    )
    assert api.status_code == 200, api.text[:300]
