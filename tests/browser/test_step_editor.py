"""The step editor in a real browser: build the demo as a scenario (create a card, fetch it back by its
extracted id, delete it in a teardown), add, reorder and remove steps, try it now, save, and read the
run's steps on its page — against a real local card API whose store ends as it began."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from services.common.db.models import Check
from tests.support.servers import CardApi, card_api
from tests.support.waiting import eventually

from .conftest import ADMIN_PASSWORD, CHROMIUM, HAVE_CHROMIUM, Seymour, shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason=f"{CHROMIUM} is missing: apt-get install -y chromium"),
]

SETTLING = re.compile(r"htmx-(request|settling|swapping)")


@pytest.fixture
async def cards() -> AsyncIterator[CardApi]:
    async with card_api() as api:
        yield api


async def fill_card(card: Any, name: str, method: str, url: str) -> None:
    await card.locator("input[aria-label='Step name']").fill(name)
    await card.locator("select[aria-label=Method]").select_option(method)
    await card.locator("input[aria-label='Step URL']").fill(url)


async def step_names(page: Any) -> list[str]:
    return [
        await field.input_value()
        for field in await page.locator("[data-step-card] input[aria-label='Step name']").all()
    ]


async def test_build_try_and_save_a_scenario_in_the_step_editor(
    seymour: Seymour, page: Any, cards: CardApi
) -> None:
    await page.goto("/login")
    await page.fill("input[name=username]", "admin")
    await page.fill("input[name=password]", ADMIN_PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.get_by_role("heading", name="Checks", exact=True)).to_be_visible()

    await page.goto("/checks/new")
    await page.fill("input[name=name]", "cards")
    await page.select_option("select[name=method]", "POST")
    await page.fill("input[name=url]", "{{ vars.base_url }}/api/cards")
    await page.get_by_label("JSON", exact=True).check()
    await page.locator("textarea[name=body]").fill('{"title": "demo", "listId": 1}')
    first = page.locator(".assertion-row").nth(0)
    await first.locator("input[name$='-target']").fill("201")
    await page.locator(".region-card", has_text="N. Virginia").locator("input").check()

    editor = page.locator("#steps-editor")
    await editor.locator("input[name=first_step_name]").fill("create")
    await editor.get_by_role("button", name="+ Add extraction").click()
    extract = page.locator("#first-extractions .extract-row")
    await expect(extract).to_have_count(1)
    await extract.locator("input[aria-label='Variable name']").fill("id")
    await extract.locator("input[aria-label='Path, header or regex']").fill("$.id")
    await editor.locator("textarea[name=variables]").fill(f"base_url={cards.base}")

    # Three steps: fetch, a stray one, and the teardown; the stray one is moved, then removed.
    await editor.get_by_role("button", name="+ Add step", exact=True).click()
    await expect(page.locator("[data-step-card]")).to_have_count(1)
    await fill_card(
        page.locator("[data-step-card]").nth(0),
        "fetch",
        "GET",
        "{{ vars.base_url }}/api/cards/{{ steps.create.id }}",
    )
    card = page.locator("[data-step-card]").nth(0)
    await card.locator(".assertion-row input[name$='-target']").fill("300")
    await editor.get_by_role("button", name="+ Add teardown step").click()
    await expect(page.locator("[data-step-card]")).to_have_count(2)
    teardown = page.locator("[data-step-card]").nth(1)
    await expect(teardown.locator("input[name$='-teardown']")).to_be_checked()
    await fill_card(teardown, "delete", "DELETE", "{{ vars.base_url }}/api/cards/{{ steps.create.id }}")
    await editor.get_by_role("button", name="+ Add step", exact=True).click()
    await expect(page.locator("[data-step-card]")).to_have_count(3)
    await fill_card(page.locator("[data-step-card]").nth(2), "stray", "GET", "{{ vars.base_url }}/api/cards")
    await page.locator("[data-step-card]").nth(2).get_by_role("button", name="Move step up").click()
    await page.locator("[data-step-card]").nth(1).get_by_role("button", name="Move step up").click()
    assert await step_names(page) == ["stray", "fetch", "delete"]
    await page.locator("[data-step-card]").nth(0).get_by_role("button", name="Move step down").click()
    assert await step_names(page) == ["fetch", "stray", "delete"]
    await page.locator("[data-step-card]").nth(1).get_by_role("button", name="Remove step").click()
    assert await step_names(page) == ["fetch", "delete"]

    # Try it now: the card is made, fetched back and deleted; each step is shown.
    await editor.get_by_role("button", name="Try it now").click()
    result = page.locator("#try-result .try-run")
    await expect(result).to_have_attribute("data-try-status", "passed", timeout=20_000)
    rows = page.locator("#try-result [data-try-step]")
    await expect(rows).to_have_count(3)
    assert [await row.get_attribute("data-try-step") for row in await rows.all()] == [
        "create",
        "fetch",
        "delete",
    ]
    await expect(rows.nth(0)).to_contain_text("id=1")
    await expect(rows.nth(2)).to_contain_text("teardown")
    assert (cards.created, cards.deleted, cards.cards) == (1, 1, {})
    await shot(page, "step-editor")

    await page.get_by_role("button", name=re.compile("^(Create|Save)")).click()
    await expect(page).to_have_url(re.compile(r"/checks/[0-9a-f-]{36}$"))
    async with seymour.sessions() as session:
        spec = (await session.execute(select(Check.spec))).scalar_one()
    assert [step["name"] for step in spec["steps"]] == ["create", "fetch"]
    assert spec["teardown"][0]["name"] == "delete"
    assert spec["steps"][1]["assertions"][0]["target"] == 300

    # A run of the saved check, on its page: the steps as a waterfall with their assertions.
    check_url = page.url
    await page.get_by_role("button", name=re.compile("Run now")).first.click()

    async def stored_run() -> bool:
        await page.goto(check_url + "/runs")
        return await page.locator("a[href^='/runs/']").count() > 0

    await eventually(stored_run, within=20, every=0.5, what="a stored run of the saved scenario")
    await page.locator("a[href^='/runs/']").first.click()
    steps = page.locator("#steps details.step")
    await expect(steps).to_have_count(3)
    await expect(page.locator("details.step[data-step=fetch]")).to_contain_text("fetch")
    await shot(page, "run-steps")
    assert cards.cards == {}

    # The check's chart: the total, or one step.
    await page.goto(check_url)
    await expect(page.locator("#chart")).to_have_attribute("data-ready", "true")
    async with page.expect_response(lambda response: "step=fetch" in response.url) as chart:
        await page.locator("[data-chart-step]").select_option("fetch")
    assert (await (await chart.value).json())["step"] == "fetch"
    await expect(page.locator("#chart")).to_have_attribute("data-ready", "true")
