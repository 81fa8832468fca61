"""The demo check, end to end in a real browser: log in, create it through the form (with a mistake
corrected, an alert policy and a maintenance window), run it, send a test notification, read a failing
run, edit, set the global alert defaults, pause, delete — asserting what a user sees."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from playwright.async_api import expect

from contracts.v1.base import utcnow
from services.common.db.models import Incident, Notification

from .conftest import ADMIN_PASSWORD, CHROMIUM, HAVE_CHROMIUM, Seymour, Target, shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason=f"{CHROMIUM} is missing: apt-get install -y chromium"),
]

#: htmx marks new content while it settles; its own attributes work once that is over.
SETTLING = re.compile(r"htmx-(added|settling|swapping)")


async def set_assertion(page: Any, index: int, source: str, prop: str, comparison: str, target: str) -> None:
    """Fill assertion row ``index`` the way a person does: source, then comparison (each change redraws
    the row from the server), then the fields."""
    row = page.locator(".assertion-row").nth(index)
    if await row.get_attribute("data-source") != source:
        await row.locator("select[name$='-source']").select_option(source)
        await expect(row).to_have_attribute("data-source", source)
        await expect(row).not_to_have_class(SETTLING)
    if await row.get_attribute("data-comparison") != comparison:
        await row.locator("select[name$='-comparison']").select_option(comparison)
        await expect(row).to_have_attribute("data-comparison", comparison)
        await expect(row).not_to_have_class(SETTLING)
    if prop:
        await row.locator("input[name$='-property']").fill(prop)
    else:
        await expect(row.locator("input[name$='-property']")).to_have_count(0)
    if target:
        await row.locator("input[name$='-target']").fill(target)
    else:
        await expect(row.locator("input[name$='-target']")).to_have_count(0)


async def record_incident(seymour: Seymour, check_id: uuid.UUID) -> None:
    """An incident with two notifications, as the alerts service records one once enough scheduled slots
    have failed (the test does not wait minutes for the schedule)."""
    now = utcnow()
    incident_id = uuid.uuid4()
    async with seymour.sessions() as session, session.begin():
        session.add(
            Incident(
                id=incident_id,
                check_id=check_id,
                state="resolved",
                opened_at=now - timedelta(minutes=9),
                resolved_at=now - timedelta(minutes=2),
                resolve_reason="passed 1 consecutive slot(s)",
                failing_regions=[
                    {"region": region, "name": region, "status": "failed"}
                    for region in ("eu-north-1", "us-east-1")
                ],
                failing_assertions=[{"region": "eu-north-1", "text": "status_code equals 201 — actual 503"}],
            )
        )
        for transition, status, attempts, error, minutes in (
            ("failure", "sent", 1, None, 9),
            ("recovery", "failed", 3, "HTTP 410: gone", 2),
        ):
            at = now - timedelta(minutes=minutes)
            session.add(
                Notification(
                    idempotency_key=f"{incident_id}:{transition}:0",
                    incident_id=incident_id,
                    check_id=check_id,
                    channel_index=0,
                    channel_type="webhook",
                    transition=transition,
                    status=status,
                    attempts=attempts,
                    last_error=error,
                    attempt_log=[{"at": at.isoformat(), "ok": status == "sent", "status": 204}],
                    created_at=at,
                    sent_at=at if status == "sent" else None,
                )
            )


async def test_demo_check_in_the_browser(page: Any, target: Target, seymour: Seymour) -> None:
    await page.goto("/")
    await expect(page).to_have_url(re.compile(r"/login\?next=(/|%2F)$"))
    await shot(page, "login", full_page=False)
    await page.fill("input[name=username]", "admin")
    await page.fill("input[name=password]", "wrong password")
    await page.click("button[type=submit]")
    await expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    await page.fill("input[name=password]", ADMIN_PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.get_by_role("heading", name="Checks", exact=True)).to_be_visible()
    await expect(page.get_by_text("No checks yet")).to_be_visible()

    # Create the demo check through the form.
    await page.get_by_role("link", name="Create check").click()
    await expect(page.get_by_role("heading", name="Create check")).to_be_visible()
    await page.fill("input[name=name]", "seymour-demo")
    await page.select_option("select[name=method]", "POST")
    await page.fill("input[name=url]", f"{target.url}/api/cards")
    await page.locator(".header-row input[aria-label='Header name']").fill("Content-Type")
    await page.locator(".header-row input[aria-label='Header value']").fill("application/json")
    await page.get_by_label("JSON", exact=True).check()
    body = page.locator("textarea[name=body]")
    await body.fill('{"title": demo, "listId": 1}')
    await expect(page.locator(".json-status")).to_contain_text("✗")
    await body.fill('{"title": "demo", "listId": 1}')
    await expect(page.locator(".json-status")).to_have_text("✓ valid JSON")

    await set_assertion(page, 0, "response_time", "", "less_than", "500")
    await expect(page.locator(".assertion-row").nth(0).locator(".unit")).to_have_text("ms")
    rows = [
        ("status_code", "", "equals", "201"),
        ("json_body", "title", "equals", "demo"),  # a mistake: not a JSONPath
        ("json_body", "$.completed", "equals", "false"),
        ("json_body", "$.dueDate", "is_null", ""),
        ("json_body", "$.id", "exists", ""),
        ("header", "connection", "equals", "close"),
    ]
    for index, row in enumerate(rows, start=1):
        await page.get_by_role("button", name="+ Add assertion").click()
        await expect(page.locator(".assertion-row")).to_have_count(index + 1)
        await expect(page.locator(".assertion-row").nth(index)).not_to_have_class(SETTLING)
        await set_assertion(page, index, *row)
    header_row = page.locator(".assertion-row").nth(6)
    options = await header_row.locator("select[name$='-comparison'] option").all_inner_texts()
    assert "is null" not in options

    for name in ("N. Virginia", "Stockholm", "Canada (Central)"):
        card = page.locator(".region-card", has_text=name)
        await expect(card).to_contain_text("live runner")
        await card.locator("input").check()
    await expect(page.locator("select[name=interval]")).to_have_value("60")
    await page.fill("input[name=timeout]", "10")
    await page.get_by_role("button", name="+ Add alert channel").click()
    channel = page.locator(".channel-row")
    await expect(channel).not_to_have_class(SETTLING)
    await channel.locator("input[aria-label=Destination]").fill(f"{target.url}/hook")
    await expect(channel.get_by_label("on failure")).to_be_checked()
    await expect(channel.get_by_label("on recovery")).to_be_checked()
    await expect(channel.get_by_label("on reminder")).not_to_be_checked()
    await channel.get_by_label("on reminder").check()

    # Alert policy (collapsed, "defaults") and a weekly maintenance window.
    policy = page.locator("#alert-policy")
    await expect(policy.locator("[data-policy-summary]")).to_have_text("defaults")
    await expect(policy.locator("input[name=policy-failure_threshold]")).to_be_hidden()
    await policy.locator("summary").click()
    await policy.locator("input[name=policy-failure_threshold]").fill("3")
    await policy.locator("input[name=policy-remind_every]").fill("30")
    windows = page.locator("#maintenance-windows")
    await windows.locator("summary").click()
    await windows.get_by_role("button", name="+ Add maintenance window").click()
    window = windows.locator(".maintenance-row")
    await expect(window).not_to_have_class(SETTLING)
    await window.locator("select[name$='-kind']").select_option("weekly")
    await expect(window).to_have_attribute("data-kind", "weekly")
    await expect(window).not_to_have_class(SETTLING)
    await window.locator("select[name$='-day']").select_option("sun")
    await window.locator("input[name$='-from']").fill("02:00")
    await window.locator("input[name$='-to']").fill("04:00")
    await window.locator("input[name$='-tz']").fill("Europe/Stockholm")
    await page.get_by_role("button", name="Create check", exact=True).click()

    # The mistake is shown beside its row, with everything typed kept.
    await expect(page.locator("#form-errors")).to_contain_text("The check was not saved.")
    bad_row = page.locator(".assertion-row.has-error")
    await expect(bad_row.locator(".field-error")).to_contain_text("must be a JSONPath starting with '$'")
    await expect(bad_row.locator("input[name$='-property']")).to_have_value("title")
    await expect(page.locator("input[name=url]")).to_have_value(f"{target.url}/api/cards")
    await expect(page.locator(".region-card input:checked")).to_have_count(3)
    await expect(page.locator("input[name=policy-failure_threshold]")).to_have_value("3")
    await expect(page.locator(".maintenance-row input[name$='-tz']")).to_have_value("Europe/Stockholm")
    await shot(page, "check-form-error")
    await bad_row.locator("input[name$='-property']").fill("$.title")
    await page.get_by_role("button", name="Create check", exact=True).click()

    # Detail page; Run now; the three regions' runs appear within seconds.
    await expect(page.get_by_role("heading", name="seymour-demo", exact=True)).to_be_visible()
    check_url = page.url
    await page.get_by_role("button", name="Run now").click()
    await expect(page.locator("#run-status")).to_have_text("Running from 3 regions…")
    await expect(page.locator("#latest-runs .run-line[data-status=passed]")).to_have_count(3, timeout=15_000)
    await expect(page.locator("#latest-runs")).to_contain_text("7/7")

    # The Alerts card: the policy as saved, the window, and a test notification that arrives.
    alerts = page.locator("#alerts")
    await expect(alerts.locator(".policy-line")).to_contain_text(
        "opens after 3 failed slots · any region · resolves after 1 passing · reminds every 30 min"
    )
    await expect(alerts.locator(".windows")).to_contain_text("every Sunday 02:00–04:00 Europe/Stockholm")
    channel_line = alerts.locator("tr[data-channel-index='0']")
    await expect(channel_line).to_contain_text("Webhook")
    await expect(channel_line.locator(".chip")).to_have_text(["failure", "recovery", "reminder"])
    await channel_line.get_by_role("button", name="Send test").click()
    await expect(channel_line.locator(".test-result.ok")).to_have_text(
        re.compile(r"^Delivered \(HTTP 204 in \d+ ms\)$")
    )
    assert any("Test notification for seymour-demo" in str(hook) for hook in target.hooks)

    # It is in the table with its marks.
    await page.locator("nav.nav").get_by_role("link", name="Checks").click()
    row = page.locator("tr[data-check='seymour-demo']")
    await expect(row).to_be_visible()
    await expect(row.locator(".badge.state-passing")).to_be_visible()
    await expect(row.locator(".mark-passed")).to_have_count(3)
    first_mark = row.locator(".mark").first
    await expect(first_mark).to_have_attribute("title", re.compile(r"passed · HTTP 201 · \d+ ms"))
    await shot(page, "checks")

    # The endpoint breaks; a run fails; its detail shows target vs actual.
    target.failing = True
    await page.goto(check_url)
    await page.get_by_role("button", name="Run now").click()
    await expect(page.locator("#latest-runs .run-line[data-status=failed]")).to_have_count(3, timeout=15_000)
    await page.goto(check_url)
    await expect(page.locator("#chart .uplot")).to_be_visible()
    await expect(page.locator(".stat-value.bad")).to_have_text(re.compile(r"^[1-9][0-9]*$"))
    await record_incident(seymour, uuid.UUID(check_url.rsplit("/", 1)[1]))
    await page.goto(check_url)
    # Test sends to one channel are rate-limited: whether this one still goes out depends on how long
    # since the first; one more straight after it is refused, and the card says when to try again.
    send = page.locator("#alerts").get_by_role("button", name="Send test")
    result = page.locator("#alerts .test-result")
    await send.click()
    await expect(result).to_have_text(re.compile(r"^(Delivered|Not sent)"))
    if (await result.get_attribute("class") or "").split()[-1] == "ok":
        await send.click()
    await expect(page.locator("#alerts .test-result.bad")).to_have_text(
        re.compile(r"^Not sent: too many test sends, try again in \d+ s$")
    )
    notifications = page.locator("#incidents details.notifications")
    await expect(notifications.locator("summary")).to_have_text("2 notifications · 1 sent · 1 failed")
    await notifications.locator("summary").click()
    failed_line = notifications.locator("tr[data-status=failed]")
    await expect(failed_line).to_contain_text("recovery")
    await expect(failed_line).to_contain_text("HTTP 410: gone")
    await shot(page, "check-detail")
    await page.get_by_role("link", name="All runs →").click()
    # The scheduler may have added runs of its own; at least the six manual ones are listed.
    await expect(page.locator(".run-line").nth(5)).to_be_visible()
    await expect(page.locator(".run-line[data-status=passed]").first).to_be_visible()
    await page.select_option("select[name=result]", "failed")
    await expect(page.locator(".run-line[data-status=passed]")).to_have_count(0)
    await expect(page.locator(".run-line[data-status=failed]").nth(2)).to_be_visible()
    await expect(page).to_have_url(re.compile(r"result=failed"))
    await shot(page, "runs")
    await page.locator(".run-line").first.get_by_role("link", name="Details").click()
    failing = page.locator("table.assertions tr.failed").first
    await expect(failing).to_contain_text("Status code")
    await expect(failing.locator("td.target")).to_have_text("201")
    await expect(failing.locator("td.actual")).to_have_text("503")
    await expect(page.locator("details.body pre").first).to_contain_text('"error": "service unavailable"')
    await expect(page.locator(".waterfall")).to_contain_text("Connect")
    await shot(page, "run-detail")

    # Edit: a different interval, saved.
    await page.goto(check_url)
    await page.get_by_role("link", name="Edit", exact=True).click()
    await expect(page.locator("input[name=name]")).to_have_value("seymour-demo")
    await expect(page.locator(".assertion-row")).to_have_count(7)
    await page.select_option("select[name=interval]", "custom")
    await page.fill("input[name=interval_custom]", "120")
    await expect(page.locator("#alert-policy [data-policy-summary]")).to_contain_text("opens after 3 failed")
    await expect(page.locator("#maintenance-windows")).to_have_attribute("open", "")
    await page.locator("#alert-policy summary").click()
    await expect(page.locator("input[name=policy-remind_every]")).to_have_value("30")
    await shot(page, "check-form")
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.get_by_text("every 2 minutes")).to_be_visible()
    await expect(page.locator("#alerts .policy-line")).to_contain_text("reminds every 30 min")

    # Settings: global alert defaults, users, tokens, regions.
    await page.get_by_role("link", name="Settings").click()
    defaults = page.locator("#alert-defaults")
    await defaults.locator("input[name=policy-recovery_threshold]").fill("2")
    await defaults.get_by_role("button", name="+ Add maintenance window").click()
    await expect(defaults.locator(".maintenance-row")).not_to_have_class(SETTLING)
    await defaults.locator("input[name$='-start']").fill("2030-01-01T22:00")
    await defaults.locator("input[name$='-end']").fill("2030-01-02T01:00")
    await defaults.get_by_role("button", name="Save alert defaults").click()
    await expect(page.get_by_role("status")).to_have_text("Global alert defaults saved.")
    await expect(page.locator("#alert-defaults input[name=policy-recovery_threshold]")).to_have_value("2")
    failed_delivery = page.locator("#failed-deliveries tr[data-notification]")
    await expect(failed_delivery).to_contain_text("seymour-demo")
    await expect(failed_delivery).to_contain_text("HTTP 410: gone")
    await page.fill("#tokens input[name=name]", "ci")
    await page.get_by_role("button", name="Create token").click()
    await expect(page.locator("#new-token")).to_have_text(re.compile(r"^sey_"))
    await expect(page.locator("#regions")).to_contain_text("Stockholm")
    await shot(page, "settings")

    # Pause, then delete, from the table.
    await page.locator("nav.nav").get_by_role("link", name="Checks").click()
    row = page.locator("tr[data-check='seymour-demo']")
    await row.get_by_role("button", name="Pause").click()
    await expect(row.locator(".badge.state-paused")).to_have_text("paused")
    await expect(row.get_by_role("button", name="Resume")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    await row.get_by_role("button", name="Delete").click()
    await expect(page.locator("tr[data-check='seymour-demo']")).to_have_count(0)
    await page.reload()
    await expect(page.get_by_text("No checks yet")).to_be_visible()
