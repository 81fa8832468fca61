"""The home page's polled checks table in a real browser: an unchanged table comes back as a 304 and
stays on screen; a new result shows up on the next poll."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from playwright.async_api import expect

from contracts.v1 import CheckSpec
from contracts.v1.base import utcnow
from services.common.db.models import Check
from services.results.store import write_runs
from tests.support.servers import demo_check

from .conftest import ADMIN_PASSWORD, CHROMIUM, HAVE_CHROMIUM, Seymour

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason=f"{CHROMIUM} is missing: apt-get install -y chromium"),
]


def failed_run(check_id: uuid.UUID, region: str) -> dict[str, Any]:
    now = utcnow()
    return {
        "run_id": uuid.uuid4(),
        "check_id": check_id,
        "region": region,
        "slot": now,
        "trigger": "scheduled",
        "status": "failed",
        "started_at": now,
        "completed_at": now,
        "total_ms": 120.0,
        "status_code": 503,
        "error_class": "assertion",
        "error_message": None,
        "assertions_passed": 0,
        "assertions_total": 1,
        "degraded": False,
        "timings": {"total_ms": 120.0},
        "response": None,
        "assertions": [],
        "request": None,
        "runner_id": "browser-test",
    }


async def test_unchanged_table_polls_answer_304_and_the_table_stays(page: Any, seymour: Seymour) -> None:
    check_id = uuid.uuid4()
    spec = CheckSpec.model_validate(
        demo_check("http://127.0.0.1:9/api/cards", "http://127.0.0.1:9/hook", name="polled-check")
    ).model_dump(mode="json")
    async with seymour.sessions() as session, session.begin():
        session.add(Check(id=check_id, name="polled-check", spec=spec, enabled=False))
    statuses: list[int] = []
    page.on(
        "response",
        lambda response: statuses.append(response.status) if "/partials/checks" in response.url else None,
    )
    await page.goto("/login")
    await page.fill("input[name=username]", "admin")
    await page.fill("input[name=password]", ADMIN_PASSWORD)
    await page.click("button[type=submit]")
    row = page.locator("#checks-table tr", has_text="polled-check")
    await expect(row).to_be_visible()
    async with page.expect_response(lambda r: "/partials/checks" in r.url, timeout=15_000) as polled:
        pass
    assert (await polled.value).status == 304
    await expect(row).to_be_visible()
    await expect(row.locator(".mark")).to_have_count(0)

    async with seymour.sessions() as session, session.begin():
        await write_runs(session, [failed_run(check_id, "us-east-1")])
    await expect(row.locator(".mark-failed")).to_have_count(1, timeout=15_000)
    assert 200 in statuses
    assert statuses[0] == 304
