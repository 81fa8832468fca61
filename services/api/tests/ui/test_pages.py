"""Every page and partial, signed in: what a user would see, and what each form changes."""

from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from contracts.v1 import CheckChanged, CheckDue
from contracts.v1.base import utcnow
from services.common.db.models import Check, Incident, Runner

from .conftest import TOKEN, Ui, demo_form, opened, run_row, store_runs

FAILED_STATUS = {
    "source": "status_code",
    "property": None,
    "comparison": "equals",
    "target": 201,
    "observed": 503,
    "passed": False,
    "message": "status 503, expected equals 201",
}
PASSED_TIME = {
    "source": "response_time",
    "property": None,
    "comparison": "less_than",
    "target": 500,
    "observed": 120.5,
    "passed": True,
    "message": None,
}


async def create_demo(ui: Ui, **overrides: str) -> uuid.UUID:
    response = await ui.post_form("/checks", demo_form(**overrides), follow_redirects=False)
    assert response.status_code == 303, response.text
    return uuid.UUID(response.headers["location"].rsplit("/", 1)[1])


async def test_empty_home_invites_to_create_a_check(ui: Ui) -> None:
    await ui.sign_in()
    page = await ui.client.get("/")
    assert page.status_code == 200
    assert "No checks yet" in page.text
    assert 'href="/checks/new"' in page.text


async def test_create_the_demo_check_through_the_form(ui: Ui) -> None:
    await ui.sign_in()
    check_id = await create_demo(ui)
    async with ui.sessions() as session:
        row = await session.get(Check, check_id)
    assert row is not None
    spec = opened(row.spec)
    assert spec["request"] == {
        **spec["request"],
        "method": "POST",
        "url": "https://api.example.com/api/cards",
        "headers": {"Content-Type": "application/json", "Authorization": "Bearer s3cret"},
        "body": {"title": "demo", "listId": 1},
    }
    assert [(a["source"], a["property"], a["comparison"], a["target"]) for a in spec["assertions"]] == [
        ("response_time", None, "less_than", 500),
        ("status_code", None, "equals", 201),
        ("json_body", "$.title", "equals", "demo"),
        ("json_body", "$.completed", "equals", False),
        ("json_body", "$.dueDate", "is_null", None),
        ("json_body", "$.id", "exists", None),
        ("header", "connection", "equals", "close"),
    ]
    assert spec["regions"] == ["us-east-1", "eu-north-1", "ca-central-1"]
    assert (spec["interval"], spec["timeout"]) == (60, 10)
    assert spec["alerts"][0]["channel"] == "webhook"
    assert spec["alerts"][0]["on"] == ["failure", "recovery"]
    assert spec["alerts"][0]["secret"] == "sign-me"
    assert isinstance(ui.published.items[-1], CheckChanged)
    home = await ui.client.get("/")
    assert "seymour-demo" in home.text
    assert "N. Virginia" in home.text
    assert "1 minute" in home.text


INVALID = [
    ("path", "title", "assertion:a2", "must be a JSONPath starting with"),
    ("body", '{"title": demo}', "body", "not valid JSON"),
    ("name", "", "name", "name"),
]


@pytest.mark.parametrize(("field", "value", "where", "message"), INVALID, ids=[i[0] for i in INVALID])
async def test_an_invalid_form_shows_the_error_beside_the_field_and_keeps_the_input(
    ui: Ui, field: str, value: str, where: str, message: str
) -> None:
    await ui.sign_in()
    response = await ui.post_form("/checks", demo_form(**{field: value}))
    assert response.status_code == 422
    text = html.unescape(response.text)
    assert "The check was not saved." in text
    assert message in text
    if where.startswith("assertion:"):
        row = text.split(f'id="assertion-{where.split(":")[1]}"', 1)[1].split('id="assertion-', 1)[0]
        assert 'class="field-error"' in row
        assert f'value="{value}"' in row
    else:
        assert "https://api.example.com/api/cards" in text
        assert "Content-Type" in text
    async with ui.sessions() as session:
        assert (await session.execute(select(Check))).first() is None


async def test_the_edit_form_masks_secrets_and_saving_keeps_them(ui: Ui) -> None:
    await ui.sign_in()
    check_id = await create_demo(ui)
    page = await ui.client.get(f"/checks/{check_id}/edit")
    assert page.status_code == 200
    assert "s3cret" not in page.text
    assert "very-secret" not in page.text
    assert "sign-me" not in page.text
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))
    assert fields["name"] == "seymour-demo"
    posted = [
        (name, "********" if value == "Bearer s3cret" else value) for name, value in demo_form(name="renamed")
    ]
    posted = [
        (name, "https://hooks.example.com/********" if "destination" in name else value)
        for name, value in posted
    ]
    posted = [(name, "********" if name.endswith("-secret") else value) for name, value in posted]
    response = await ui.post_form(f"/checks/{check_id}", posted, follow_redirects=False)
    assert response.status_code == 303
    async with ui.sessions() as session:
        row = await session.get(Check, check_id)
    assert row is not None
    assert row.name == "renamed"
    assert row.revision == 2
    assert "s3cret" not in str(row.spec)
    assert opened(row.spec)["request"]["headers"]["Authorization"] == "Bearer s3cret"
    assert opened(row.spec)["alerts"][0]["url"] == "https://hooks.example.com/x/very-secret"
    assert opened(row.spec)["alerts"][0]["secret"] == "sign-me"


@pytest.mark.parametrize(
    ("source", "comparison", "has_property", "offered", "not_offered"),
    [
        ("response_time", "less_than", False, "less than", "contains"),
        ("header", "equals", True, "does not contain", "is null"),
        ("json_body", "is_null", True, "is null", "never"),
        ("status_code", "contains", False, "equals", "contains"),
    ],
    ids=["response_time", "header", "json_body", "status_code"],
)
async def test_an_assertion_row_offers_only_what_fits_its_source(
    ui: Ui, source: str, comparison: str, has_property: bool, offered: str, not_offered: str
) -> None:
    await ui.sign_in()
    response = await ui.client.get(
        "/checks/form/assertion-row",
        params={"key": "k1", "assertion-k1-source": source, "assertion-k1-comparison": comparison},
    )
    assert response.status_code == 200
    assert ('name="assertion-k1-property"' in response.text) is has_property
    assert f">{offered}</option>" in response.text
    assert f">{not_offered}</option>" not in response.text
    if source == "response_time":
        assert '<span class="unit">ms</span>' in response.text
    if comparison == "is_null":
        assert 'name="assertion-k1-target"' not in response.text


@pytest.mark.parametrize("path", ["header-row", "channel-row", "assertion-row"])
async def test_new_form_rows(ui: Ui, path: str) -> None:
    await ui.sign_in()
    response = await ui.client.get(f"/checks/form/{path}")
    assert response.status_code == 200
    assert 'type="hidden" name="' in response.text
    assert "<html" not in response.text


async def test_new_check_form_shows_region_cards_with_runner_health(ui: Ui) -> None:
    now = utcnow()
    async with ui.sessions() as session, session.begin():
        session.add(
            Runner(
                runner_id="r1", region="eu-north-1", version="1", capacity=8, started_at=now, last_seen=now
            )
        )
    await ui.sign_in()
    page = await ui.client.get("/checks/new")
    assert page.status_code == 200
    card = page.text.split('value="eu-north-1"', 1)[1].split("</label>", 1)[0]
    assert "Stockholm" in card
    assert "live runner" in card
    other = page.text.split('value="ca-central-1"', 1)[1].split("</label>", 1)[0]
    assert "Canada (Central)" in other
    assert "no runner" in other
    for label in ("10 seconds", "1 week", "Custom…", "+ Add alert channel", "+ Add assertion"):
        assert label in page.text


async def test_table_actions_pause_resume_run_and_delete(ui: Ui) -> None:
    await ui.sign_in()
    check_id = await create_demo(ui)
    headers = {"HX-Request": "true", "X-CSRF-Token": ui.csrf}
    paused = await ui.client.post(f"/checks/{check_id}/pause", headers=headers)
    assert paused.status_code == 200
    assert "state-paused" in paused.text
    assert ">Resume</button>" in paused.text
    resumed = await ui.client.post(f"/checks/{check_id}/resume", headers=headers)
    assert ">Pause</button>" in resumed.text
    ran = await ui.client.post(f"/checks/{check_id}/run", headers=headers)
    assert ran.text == "Running from 3 regions…"
    assert ran.headers["hx-trigger"] == "runs-changed"
    due = ui.published.items[-1]
    assert isinstance(due, CheckDue)
    assert due.trigger == "manual"
    assert due.regions == ["us-east-1", "eu-north-1", "ca-central-1"]
    deleted = await ui.client.post(f"/checks/{check_id}/delete", headers=headers)
    assert deleted.status_code == 200
    assert deleted.text == ""
    assert (await ui.client.get(f"/checks/{check_id}")).status_code == 404


async def test_home_shows_state_and_the_last_three_results_with_tooltips(ui: Ui) -> None:
    await ui.sign_in()
    check_id = await create_demo(ui)
    now = utcnow()
    await store_runs(
        ui.sessions,
        [
            run_row(check_id, "us-east-1", now - timedelta(minutes=3), ms=90),
            run_row(check_id, "us-east-1", now - timedelta(minutes=2), ms=110),
            run_row(check_id, "eu-north-1", now - timedelta(minutes=1), ms=140),
            run_row(check_id, "ca-central-1", now, status="failed", ms=130, status_code=503),
        ],
    )
    table = await ui.client.get("/partials/checks")
    assert table.status_code == 200
    marks = re.findall(r'class="mark mark-(\w+)" title="([^"]+)"', table.text)
    assert marks == [
        ("passed", "N. Virginia · passed · HTTP 201 · 110 ms"),
        ("passed", "Stockholm · passed · HTTP 201 · 140 ms"),
        ("failed", "Canada (Central) · failed · HTTP 503 · 130 ms"),
    ]
    assert "state-failing" in table.text


async def test_polled_table_answers_304_until_something_it_shows_changes(ui: Ui) -> None:
    """The home page polls the table every few seconds: an unchanged table is not drawn or sent again."""
    await ui.sign_in()
    check_id = await create_demo(ui)
    htmx = {"HX-Request": "true"}
    first = await ui.client.get("/partials/checks", headers=htmx)
    etag = first.headers["etag"]
    shown = re.search(r'data-etag="([^"]+)"', first.text)
    assert shown is not None
    assert html.unescape(shown.group(1)) == etag
    same = await ui.client.get("/partials/checks", headers={**htmx, "If-None-Match": etag})
    assert same.status_code == 304
    assert same.content == b""

    async def poll() -> Any:
        return await ui.client.get("/partials/checks", headers={**htmx, "If-None-Match": etag})

    failing = run_row(check_id, "us-east-1", utcnow(), status="failed", status_code=503)
    await store_runs(ui.sessions, [failing])
    after_run = await poll()
    assert after_run.status_code == 200
    assert "mark-failed" in after_run.text
    etag = after_run.headers["etag"]
    assert (await poll()).status_code == 304
    await ui.client.post(f"/checks/{check_id}/pause", headers={**htmx, "X-CSRF-Token": ui.csrf})
    paused = await poll()
    assert paused.status_code == 200
    assert "state-paused" in paused.text
    etag = paused.headers["etag"]
    assert (await poll()).status_code == 304
    async with ui.sessions() as session, session.begin():
        session.add(Incident(check_id=check_id, opened_at=utcnow(), failing_regions=["us-east-1"]))
    opened = await poll()
    assert opened.status_code == 200
    assert "incident open" in opened.text
    etag = opened.headers["etag"]
    renamed = await ui.post_form(f"/checks/{check_id}", demo_form(name="Renamed"), follow_redirects=False)
    assert renamed.status_code == 303, renamed.text
    after_edit = await poll()
    assert after_edit.status_code == 200
    assert "Renamed" in after_edit.text
    etag = after_edit.headers["etag"]
    assert (await poll()).status_code == 304
    other = await ui.client.get("/partials/checks?per_page=5", headers={**htmx, "If-None-Match": etag})
    assert other.status_code == 200, "another page size is another table"


async def test_user_content_is_escaped(ui: Ui) -> None:
    await ui.sign_in()
    await create_demo(ui, name="<script>alert(1)</script>")
    page = await ui.client.get("/")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


async def test_check_detail_summary_latest_runs_and_incidents(ui: Ui) -> None:
    await ui.sign_in()
    check_id = await create_demo(ui)
    now = utcnow()
    await store_runs(
        ui.sessions,
        [
            run_row(check_id, "us-east-1", now - timedelta(minutes=2), ms=100, assertions=[PASSED_TIME]),
            run_row(check_id, "eu-north-1", now - timedelta(minutes=1), ms=300, assertions=[PASSED_TIME]),
            run_row(
                check_id,
                "ca-central-1",
                now,
                status="failed",
                ms=200,
                status_code=503,
                assertions=[FAILED_STATUS, PASSED_TIME],
            ),
        ],
    )
    page = await ui.client.get(f"/checks/{check_id}?window=1h")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "66.67 %" in text  # pass rate: 2 of 3
    assert "100.00 %" in text  # availability: all 3 answered
    assert "200 ms" in text  # p50 of 100, 200, 300
    assert "1/2" in text  # assertions passed on the failing run
    assert f'data-src="/checks/{check_id}/chart.json?window=1h"' in text
    assert "No incidents." in text
    latest = await ui.client.get(f"/checks/{check_id}/partials/latest")
    assert latest.text.count('class="run-line"') == 3
    for window in ("24h", "7d", "30d", "bogus"):
        assert (await ui.client.get(f"/checks/{check_id}?window={window}")).status_code == 200


def run_ids(page: str) -> list[str]:
    """The runs a runs page lists, in order."""
    return re.findall(r'href="/runs/([0-9a-f-]{36})"', page)


async def test_runs_page_paginates_and_filters(ui: Ui) -> None:
    await ui.sign_in()
    check_id = await create_demo(ui)
    now = utcnow()
    rows = [
        run_row(
            check_id, region, now - timedelta(minutes=index), status="failed" if index % 10 == 0 else "passed"
        )
        for index in range(40)
        for region in ("us-east-1", "eu-north-1")
    ]
    await store_runs(ui.sessions, rows)
    first = await ui.client.get(f"/checks/{check_id}/runs")
    assert first.text.count('class="run-line"') == 50
    assert "Older →" in first.text
    older = re.search(r'href="([^"]+)">Older →', first.text)
    assert older is not None
    assert "before=" in older.group(1)
    second = await ui.client.get(html.unescape(older.group(1)))
    assert second.text.count('class="run-line"') == 30
    assert "Older →" not in second.text
    assert "Page 2" in second.text
    newer = re.search(r'href="([^"]+)">← Newer', second.text)
    assert newer is not None
    assert "after=" in newer.group(1)
    back = await ui.client.get(html.unescape(newer.group(1)))
    assert run_ids(back.text) == run_ids(first.text)
    assert "← Newer" not in back.text
    assert "Page 1" in back.text
    assert set(run_ids(first.text)).isdisjoint(run_ids(second.text))
    assert (await ui.client.get(f"/checks/{check_id}/runs?before=yesterday")).status_code == 422
    failed = await ui.client.get(f"/checks/{check_id}/runs?result=failed&region=eu-north-1")
    assert failed.text.count('class="run-line"') == 4
    assert 'data-status="passed"' not in failed.text
    partial = await ui.client.get(f"/checks/{check_id}/runs?result=passed", headers={"HX-Request": "true"})
    assert partial.text.startswith('<div id="runs-table">')


async def test_run_detail_shows_failed_assertions_first_with_target_and_actual(ui: Ui) -> None:
    await ui.sign_in()
    check_id = await create_demo(ui)
    row = run_row(
        check_id,
        "ca-central-1",
        utcnow(),
        status="failed",
        ms=200,
        status_code=503,
        assertions=[PASSED_TIME, FAILED_STATUS],
    )
    await store_runs(ui.sessions, [row])
    page = await ui.client.get(f"/runs/{row['run_id']}")
    assert page.status_code == 200
    rows = re.findall(r'<tr class="(passed|failed)">(.*?)</tr>', page.text, re.S)
    assert [state for state, _ in rows] == ["failed", "passed"]
    failed = rows[0][1]
    assert '<td class="target"><code>201</code></td>' in failed
    assert '<td class="actual"><code>503</code></td>' in failed
    text = html.unescape(page.text)
    for phase in ("DNS", "Connect", "TLS", "Waiting (TTFB)", "Download"):
        assert phase in text
    assert '"title": "other"' in text  # pretty-printed JSON body
    assert "content-type" in text
    assert "Authorization" in text
    assert "********" in text
    assert "Canada (Central)" in text


async def test_missing_pages_are_friendly_404s(ui: Ui) -> None:
    await ui.sign_in()
    for path in (f"/checks/{uuid.uuid4()}", f"/runs/{uuid.uuid4()}", f"/checks/{uuid.uuid4()}/edit"):
        response = await ui.client.get(path)
        assert response.status_code == 404
        assert "Not found" in response.text


async def test_chart_json_and_the_api_agree(ui: Ui) -> None:
    await ui.sign_in()
    check_id = await create_demo(ui)
    await store_runs(ui.sessions, [run_row(check_id, "us-east-1", utcnow(), ms=123.0)])
    from_ui = (await ui.client.get(f"/checks/{check_id}/chart.json?window=1h")).json()
    from_api = (
        await ui.client.get(
            f"/api/v1/checks/{check_id}/chart?window=1h", headers={"Authorization": f"Bearer {TOKEN}"}
        )
    ).json()
    assert from_ui == from_api
    assert from_ui["series"][0]["ms"] == [123.0]


async def test_settings_users_tokens_and_regions(ui: Ui) -> None:
    await ui.sign_in()
    page = await ui.client.get("/settings")
    assert page.status_code == 200
    for section in ("Users", "API tokens", "Regions", "N. Virginia"):
        assert section in page.text
    short = await ui.post_form("/settings/users", {"username": "bob", "password": "short"})
    assert short.status_code == 422
    assert "at least 8 characters" in short.text
    added = await ui.post_form("/settings/users", {"username": "bob", "password": "long-enough-1"})
    assert added.status_code == 200
    assert "User created." in added.text
    bob = re.search(r'action="/settings/users/([0-9a-f-]+)/delete"', added.text)
    assert bob
    changed = await ui.post_form(f"/settings/users/{bob.group(1)}/password", {"password": "another-pass-2"})
    assert "Password changed." in changed.text
    created = await ui.post_form("/settings/tokens", {"name": "ci"})
    token = re.search(r'id="new-token">(sey_[^<]+)<', created.text)
    assert token
    api = {"Authorization": f"Bearer {token.group(1)}"}
    assert (await ui.client.get("/api/v1/checks", headers=api)).status_code == 200
    again = await ui.client.get("/settings")
    assert token.group(1) not in again.text
    token_id = re.search(r'action="/settings/tokens/([0-9a-f-]+)/revoke"', again.text)
    assert token_id
    await ui.post_form(f"/settings/tokens/{token_id.group(1)}/revoke", {})
    assert (await ui.client.get("/api/v1/checks", headers=api)).status_code == 401
    removed = await ui.post_form(f"/settings/users/{bob.group(1)}/delete", {})
    assert "User removed." in removed.text
    assert 'data-user="bob"' not in removed.text
