"""Multi-step checks against a real local card API: steps, extractions, teardown, cookies, secrets."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest

from contracts.v1.checks import CheckSpec
from services.common.redaction import MASK
from services.runner.http_check import HttpChecker
from services.runner.scenario import run_scenario
from tests.support.servers import CardApi, card_api, demo_scenario

REGIONS = ("us-east-1", "eu-north-1", "ca-central-1")


@pytest.fixture
async def cards() -> AsyncIterator[CardApi]:
    async with card_api() as api:
        yield api


@pytest.fixture
async def checker() -> AsyncIterator[HttpChecker]:
    checker = HttpChecker(region="us-east-1")
    await checker.start()
    yield checker
    await checker.stop()


def spec_of(data: dict[str, Any], **changes: Any) -> CheckSpec:
    return CheckSpec.model_validate({**copy.deepcopy(data), **changes})


async def test_demo_scenario_creates_fetches_and_deletes_its_card(
    cards: CardApi, checker: HttpChecker
) -> None:
    result = await checker.run(spec_of(demo_scenario(cards.base)))

    assert result.status == "passed", result.error
    assert result.steps is not None
    assert [(step.name, step.status, step.teardown) for step in result.steps] == [
        ("create", "passed", False),
        ("fetch", "passed", False),
        ("delete", "passed", True),
    ]
    create, fetch, delete = result.steps
    assert len(create.assertions) == 7
    assert all(outcome.passed for outcome in create.assertions)
    assert create.extracted == {"id": 1}
    assert fetch.request is not None
    assert fetch.request["url"] == f"{cards.base}/api/cards/1"
    assert delete.request is not None
    assert delete.request["method"] == "DELETE"
    assert (cards.created, cards.deleted, cards.cards) == (1, 1, {})
    step_total = sum(step.timings.total_ms or 0 for step in result.steps)
    assert result.timings.total_ms == pytest.approx(step_total, abs=0.01)
    assert len(result.assertions) == 9
    assert result.assertions[0].message
    assert result.assertions[0].message.startswith("step 'create': ")
    assert result.response is not None
    assert result.response.status_code == 200
    assert result.failed_step is None


async def test_broken_second_step_skips_the_rest_and_still_tears_down(
    cards: CardApi, checker: HttpChecker
) -> None:
    data = demo_scenario(cards.base)
    data["steps"][1]["assertions"][0]["target"] = 201
    data["steps"].append({"name": "never", "request": {"url": f"{cards.base}/api/cards"}})

    result = await checker.run(spec_of(data))

    assert result.status == "failed"
    assert result.failed_step == "fetch"
    assert result.error is not None
    assert result.error.message.startswith("step 'fetch': status_code 200")
    assert result.steps is not None
    assert [(step.name, step.status) for step in result.steps] == [
        ("create", "passed"),
        ("fetch", "failed"),
        ("never", "skipped"),
        ("delete", "passed"),
    ]
    assert cards.cards == {}


async def test_a_step_that_times_out_still_gets_its_teardown(cards: CardApi, silent_port: int) -> None:
    data = demo_scenario(cards.base)
    data["timeout"] = 0.5
    data["steps"][1]["request"]["url"] = f"http://127.0.0.1:{silent_port}/api/cards/{{{{ steps.create.id }}}}"
    checker = HttpChecker(region="eu-north-1")
    try:
        result = await checker.run(spec_of(data))
    finally:
        await checker.stop()

    assert result.status == "error"
    assert result.error is not None
    assert result.error.cls == "timeout"
    assert result.failed_step == "fetch"
    assert result.steps is not None
    assert result.steps[-1].status == "passed"
    assert cards.cards == {}
    assert cards.deleted == 1


@pytest.mark.parametrize(
    ("fails_check", "status"),
    [pytest.param(False, "passed", id="reported-only"), pytest.param(True, "failed", id="fails-when-asked")],
)
async def test_broken_teardown_is_reported_and_fails_the_check_only_when_asked(
    cards: CardApi, checker: HttpChecker, fails_check: bool, status: str
) -> None:
    data = demo_scenario(cards.base)
    data["teardown"][0]["request"]["url"] = "{{ vars.base_url }}/api/nowhere/{{ steps.create.id }}"
    data["teardown"].append(
        {
            "name": "sweep",
            "request": {"method": "DELETE", "url": "{{ vars.base_url }}/api/cards/{{ steps.create.id }}"},
        }
    )

    result = await checker.run(spec_of(data, teardown_fails_check=fails_check))

    assert result.status == status
    assert result.steps is not None
    broken, sweep = result.steps[-2:]
    assert (broken.name, broken.status, broken.teardown) == ("delete", "failed", True)
    assert broken.assertions[0].observed == 404
    assert sweep.status == "passed", "the next teardown step still runs"
    assert cards.cards == {}
    if fails_check:
        assert result.failed_step == "delete"
        assert result.error is not None
        assert "teardown step 'delete'" in result.error.message
    else:
        assert result.error is None
        assert result.failed_step is None


async def test_teardown_of_a_value_never_extracted_is_a_template_error(
    cards: CardApi, checker: HttpChecker
) -> None:
    data = demo_scenario(cards.base)
    data["steps"][0]["request"]["url"] = "{{ vars.base_url }}/api/missing"

    result = await checker.run(spec_of(data))

    assert result.status == "failed"
    assert result.failed_step == "create"
    assert result.steps is not None
    delete = result.steps[-1]
    assert delete.status == "error"
    assert delete.error is not None
    assert delete.error.cls == "template"
    assert "steps.create.id" in delete.error.message


@pytest.mark.parametrize(
    ("extraction", "expected"),
    [
        pytest.param({"source": "json_body", "property": "$.title"}, "demo", id="jsonpath"),
        pytest.param(
            {"source": "header", "property": "Content-Type"}, "application/json; charset=utf-8", id="header"
        ),
        pytest.param({"source": "text_body", "property": r'"listId":\s*(\d+)'}, "1", id="regex-group"),
        pytest.param({"source": "text_body", "property": r"completed"}, "completed", id="regex-whole-match"),
        pytest.param({"source": "status_code"}, 201, id="status"),
    ],
)
async def test_extractions_feed_later_steps(
    cards: CardApi, checker: HttpChecker, extraction: dict[str, Any], expected: Any
) -> None:
    data = demo_scenario(cards.base)
    data["steps"][0]["extract"].append({"name": "value", **extraction})
    data["steps"].append(
        {
            "name": "echo",
            "request": {
                "method": "GET",
                "url": "{{ vars.base_url }}/api/cards/{{ steps.create.id }}?v={{ steps.create.value }}",
            },
        }
    )

    result = await checker.run(spec_of(data))

    assert result.status == "passed", result.error
    assert result.steps is not None
    assert result.steps[0].extracted["value"] == expected
    echo = result.steps[2]
    assert echo.status == "passed"
    assert echo.request is not None
    assert echo.request["url"].endswith(f"?v={expected}")


async def test_an_extraction_that_finds_nothing_fails_its_step(cards: CardApi, checker: HttpChecker) -> None:
    data = demo_scenario(cards.base)
    data["steps"][0]["extract"] = [{"name": "id", "source": "json_body", "property": "$.cardId"}]

    result = await checker.run(spec_of(data))

    assert result.status == "failed"
    assert result.failed_step == "create"
    assert result.error is not None
    assert "extract 'id'" in result.error.message
    assert result.steps is not None
    assert [step.status for step in result.steps] == [
        "failed",
        "skipped",
        "error",
    ]


@pytest.mark.parametrize(
    ("share", "seen"),
    [pytest.param(False, None, id="not-shared-by-default"), pytest.param(True, MASK, id="shared-when-asked")],
)
async def test_cookies_are_shared_between_steps_only_when_asked(
    cards: CardApi, checker: HttpChecker, share: bool, seen: str | None
) -> None:
    result = await checker.run(spec_of(demo_scenario(cards.base), share_cookies=share))

    assert result.steps is not None
    assert result.steps[1].response is not None
    # The target echoes the session cookie it received; the stored sample masks its value.
    assert result.steps[1].response.headers.get("x-session") == seen


async def test_secrets_are_sent_but_masked_in_the_record(cards: CardApi) -> None:
    data = demo_scenario(cards.base)
    data["steps"][1]["request"]["headers"] = {"X-Api-Token": "{{ secrets.token }}"}
    data["steps"][1]["request"]["url"] += "?k={{ secrets.token }}"
    sent: list[CheckSpec] = []
    checker = HttpChecker(region="us-east-1")

    async def spy(spec: CheckSpec, cookies: Any) -> Any:
        sent.append(spec)
        return await checker.run_request(spec, cookies)

    try:
        result = await run_scenario(spy, spec_of(data), secrets={"token": "s3cr3t-value"})
    finally:
        await checker.stop()

    assert result.status == "passed", result.error
    assert sent[1].request.headers["X-Api-Token"] == "s3cr3t-value"
    assert result.steps is not None
    dumped = [step.model_dump_json() for step in result.steps]
    assert not any("s3cr3t-value" in text for text in dumped)
    assert result.steps[1].request is not None
    assert result.steps[1].request["url"].endswith(f"?k={MASK}")


async def test_a_hundred_runs_from_three_regions_leave_no_card_behind(cards: CardApi) -> None:
    spec = spec_of(demo_scenario(cards.base))
    checkers = [HttpChecker(region=region) for region in REGIONS]
    before = len(cards.cards)

    async def region(checker: HttpChecker, runs: int) -> list[Any]:
        return [await checker.run(spec) for _ in range(runs)]

    try:
        batches = await asyncio.gather(
            *(region(checker, 34 if i < 1 else 33) for i, checker in enumerate(checkers))
        )
    finally:
        for checker in checkers:
            await checker.stop()

    results = [result for batch in batches for result in batch]
    assert len(results) == 100
    assert [result.status for result in results] == ["passed"] * 100, [r.error for r in results if r.error]
    assert cards.created == 100
    assert cards.deleted == 100
    assert len(cards.cards) == before


async def test_single_request_check_reports_no_steps_and_renders_builtins(
    cards: CardApi, checker: HttpChecker
) -> None:
    data = demo_scenario(cards.base)["steps"][0]
    spec = spec_of(
        {"name": "one", "regions": ["us-east-1"], "variables": {"base_url": cards.base}},
        request={**data["request"], "body": {"title": "{{ uuid }}", "listId": "{{ random_int(5, 5) }}"}},
    )

    result = await checker.run(spec)

    assert result.status == "passed", result.error
    assert result.steps is None
    assert result.failed_step is None
    (card,) = cards.cards.values()
    assert len(card["title"]) == 36
    assert card["listId"] == 5
