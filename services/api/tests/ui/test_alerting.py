"""The alerting parts of the UI: alert policy and maintenance windows in the check form, the check page's
Alerts card with test notifications, incidents with their notifications, and the global alert settings."""

from __future__ import annotations

import html
import json
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from contracts.v1.base import utcnow
from contracts.v1.checks import AlertPolicy, MaintenanceWindow
from services.api.ui.alert_form import describe_policy
from services.common.db.incidents import load_global, save_global
from services.common.db.models import Check, Incident, Notification

from .conftest import Ui, demo_form, form_fields, opened

HTMX = {"HX-Request": "true"}
DEFAULT_POLICY_FIELDS = [
    ("alerting", "1"),
    ("policy-failure_threshold", "2"),
    ("policy-region_quorum", "1"),
    ("policy-failing_for", "0"),
    ("policy-recovery_threshold", "1"),
    ("policy-remind_every", "0"),
    ("policy-max_reminders", "3"),
    ("policy-degraded_response_time", ""),
    ("policy-flapping_max_transitions", "4"),
    ("policy-flapping_window", "30"),
]
CUSTOM_POLICY = {
    "failure_threshold": "3",
    "region_quorum": "50%",
    "failing_for": "5",
    "recovery_threshold": "2",
    "remind_every": "30",
    "max_reminders": "4",
    "degraded_response_time": "800",
    "flapping_max_transitions": "6",
    "flapping_window": "60",
}
ONE_OFF = ("m1", {"kind": "once", "start": "2030-06-01T02:00", "end": "2030-06-01T04:30"})
WEEKLY = ("m2", {"kind": "weekly", "day": "sat", "from": "23:00", "to": "01:00", "tz": "Europe/Stockholm"})


def with_alerting(
    fields: list[tuple[str, str]],
    policy: dict[str, str] | None = None,
    windows: list[tuple[str, dict[str, str]]] = (),  # type: ignore[assignment]
    confirm: bool = False,
) -> list[tuple[str, str]]:
    """``fields`` plus the alert policy part as the browser posts it (defaults unless overridden)."""
    out = list(fields)
    for name, value in DEFAULT_POLICY_FIELDS:
        short = name.removeprefix("policy-")
        out.append((name, (policy or {}).get(short, value)))
    if confirm:
        out.append(("policy-confirm_from_another_region", "on"))
    for key, parts in windows:
        out.append(("maintenance_row", key))
        out += [(f"maintenance-{key}-{part}", value) for part, value in parts.items()]
    return out


async def create(ui: Ui, fields: list[tuple[str, str]]) -> uuid.UUID:
    response = await ui.post_form("/checks", fields, follow_redirects=False)
    assert response.status_code == 303, html.unescape(response.text)
    return uuid.UUID(response.headers["location"].rsplit("/", 1)[1])


async def stored_spec(ui: Ui, check_id: uuid.UUID) -> dict[str, Any]:
    async with ui.sessions() as session:
        row = await session.get(Check, check_id)
    assert row is not None
    return opened(row.spec)


def section(page: str, marker: str, end: str = "</details>") -> str:
    """The HTML from ``marker`` to the next ``end``."""
    return page.split(marker, 1)[1].split(end, 1)[0]


def words(fragment: str) -> str:
    """What a reader sees of an HTML fragment: text without tags, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


# --- the check form ----------------------------------------------------------------------------------


async def test_the_new_check_form_has_a_collapsed_alert_policy_showing_defaults(ui: Ui) -> None:
    await ui.sign_in()
    page = await ui.client.get("/checks/new")
    assert page.status_code == 200
    head = re.search(r'<details class="disclosure" id="alert-policy"\s*(open)?\s*>', page.text)
    assert head is not None
    assert head.group(1) is None  # collapsed
    assert "data-policy-summary>defaults<" in page.text
    assert 'name="policy-failure_threshold" value="2"' in page.text
    assert 'name="policy-region_quorum" value="1"' in page.text
    assert "+ Add maintenance window" in page.text
    posted = dict(form_fields(page.text, "/checks"))
    assert {name: posted[name] for name, _ in DEFAULT_POLICY_FIELDS} == dict(DEFAULT_POLICY_FIELDS)


@pytest.mark.parametrize("with_part", [True, False], ids=["alert-part-posted", "older-form-without-it"])
async def test_saving_without_touching_alerting_keeps_the_defaults(ui: Ui, with_part: bool) -> None:
    await ui.sign_in()
    fields = with_alerting(demo_form()) if with_part else demo_form()
    spec = await stored_spec(ui, await create(ui, fields))
    assert spec["alert_policy"] == AlertPolicy().model_dump(mode="json")
    assert spec["maintenance"] == []


async def test_a_form_without_the_alert_part_keeps_a_stored_policy(ui: Ui) -> None:
    await ui.sign_in()
    check_id = await create(ui, with_alerting(demo_form(), CUSTOM_POLICY, [ONE_OFF]))
    before = await stored_spec(ui, check_id)
    response = await ui.post_form(f"/checks/{check_id}", demo_form(name="renamed"), follow_redirects=False)
    assert response.status_code == 303
    after = await stored_spec(ui, check_id)
    assert after["name"] == "renamed"
    assert (after["alert_policy"], after["maintenance"]) == (before["alert_policy"], before["maintenance"])


async def test_policy_and_windows_round_trip_through_the_form(ui: Ui) -> None:
    await ui.sign_in()
    check_id = await create(ui, with_alerting(demo_form(), CUSTOM_POLICY, [ONE_OFF, WEEKLY], confirm=True))
    spec = await stored_spec(ui, check_id)
    assert spec["alert_policy"] == {
        "failure_threshold": 3,
        "region_quorum": "50%",
        "failing_for": 5,
        "confirm_from_another_region": True,
        "recovery_threshold": 2,
        "remind_every": 30,
        "max_reminders": 4,
        "degraded_response_time": 800.0,
        "flapping": {"max_transitions": 6, "window": 60},
    }
    windows = [MaintenanceWindow.model_validate(window) for window in spec["maintenance"]]
    assert windows[0].start == datetime(2030, 6, 1, 2, 0, tzinfo=UTC)
    assert windows[0].end == datetime(2030, 6, 1, 4, 30, tzinfo=UTC)
    assert windows[1].weekly is not None
    assert (windows[1].weekly.day, windows[1].weekly.tz) == ("sat", "Europe/Stockholm")
    assert windows[1].weekly.start.isoformat() == "23:00:00"

    page = await ui.client.get(f"/checks/{check_id}/edit")
    text = html.unescape(page.text)
    assert "opens after 3 failed slots · 50% of regions failing · for at least 5 min" in text
    assert re.search(r'id="maintenance-windows"\s*open', page.text)  # rows present: shown open
    shown = form_fields(page.text, f"/checks/{check_id}")
    values = dict(shown)
    assert {name: values[f"policy-{name}"] for name in CUSTOM_POLICY} == CUSTOM_POLICY
    assert values["policy-confirm_from_another_region"] == "on"
    rows = [value for name, value in shown if name == "maintenance_row"]
    assert [values[f"maintenance-{key}-kind"] for key in rows] == ["once", "weekly"]
    assert values[f"maintenance-{rows[0]}-start"] == "2030-06-01T02:00"
    assert values[f"maintenance-{rows[1]}-from"] == "23:00"
    assert values[f"maintenance-{rows[1]}-tz"] == "Europe/Stockholm"

    # Posting the edit form back exactly as shown changes nothing in the alerting part.
    response = await ui.post_form(f"/checks/{check_id}", shown, follow_redirects=False)
    assert response.status_code == 303, html.unescape(response.text)
    again = await stored_spec(ui, check_id)
    assert again["alert_policy"] == spec["alert_policy"]
    assert again["maintenance"] == spec["maintenance"]
    assert again["alerts"] == spec["alerts"]  # masked secrets restored


INVALID = [
    (
        "threshold-zero",
        {"policy": {"failure_threshold": "0"}},
        "policy-failure_threshold",
        "greater than or equal to 1",
    ),
    (
        "threshold-text",
        {"policy": {"failure_threshold": "two"}},
        "policy-failure_threshold",
        "enter a whole number",
    ),
    ("quorum", {"policy": {"region_quorum": "most"}}, "policy-region_quorum", "percentage like '50%'"),
    (
        "degraded",
        {"policy": {"degraded_response_time": "fast"}},
        "policy-degraded_response_time",
        "milliseconds",
    ),
    (
        "flap-window",
        {"policy": {"flapping_window": "0"}},
        "policy-flapping_window",
        "greater than or equal to 1",
    ),
    (
        "end-before-start",
        {"windows": [("m1", {"kind": "once", "start": "2030-06-01T04:00", "end": "2030-06-01T03:00"})]},
        "maintenance-m1",
        "end must be after start",
    ),
    (
        "no-start",
        {"windows": [("m1", {"kind": "once", "start": "", "end": ""})]},
        "maintenance-m1",
        "enter the start",
    ),
    (
        "bad-zone",
        {
            "windows": [
                ("m1", {"kind": "weekly", "day": "mon", "from": "01:00", "to": "02:00", "tz": "Mars/Olympus"})
            ]
        },
        "maintenance-m1",
        "time zone: unknown time zone 'Mars/Olympus'",
    ),
]


@pytest.mark.parametrize(("case", "change", "where", "message"), INVALID, ids=[i[0] for i in INVALID])
async def test_alerting_errors_are_shown_beside_the_field_and_the_input_kept(
    ui: Ui, case: str, change: dict[str, Any], where: str, message: str
) -> None:
    await ui.sign_in()
    fields = with_alerting(demo_form(), change.get("policy"), change.get("windows", []))
    response = await ui.post_form("/checks", fields)
    assert response.status_code == 422
    text = html.unescape(response.text)
    assert "The check was not saved." in text
    if where.startswith("policy-"):
        assert re.search(r'id="alert-policy"\s*open', response.text)
        label = text.split(f'name="{where}"', 1)[1].split("</label>", 1)[0]
        assert message in label.split('class="field-error">', 1)[1]
        field = where.removeprefix("policy-")
        assert f'name="{where}" value="{change["policy"][field]}"' in text
    else:
        assert re.search(r'id="maintenance-windows"\s*open', response.text)
        row = section(text, f'id="{where}"', '<div class="row')
        assert message in row.split('class="field-error">', 1)[1]
        for part, value in change["windows"][0][1].items():
            if part in ("start", "end", "tz") and value:
                assert f'value="{value}"' in row
    async with ui.sessions() as session:
        assert await session.get(Check, uuid.uuid4()) is None
    assert "seymour-demo" in text  # the rest of the form is kept too


CHANNELS = [
    ("email", "ops@example.com, oncall@example.com", {"to": ["ops@example.com", "oncall@example.com"]}),
    ("pagerduty", "R0UT1NGKEY", {"routing_key": "R0UT1NGKEY", "url": None}),
    ("teams", "https://example.webhook.office.com/wf/1", {"url": "https://example.webhook.office.com/wf/1"}),
    ("slack", "https://hooks.slack.com/services/T/B/X", {"url": "https://hooks.slack.com/services/T/B/X"}),
    ("discord", "https://discord.com/api/webhooks/1/x", {"url": "https://discord.com/api/webhooks/1/x"}),
]


@pytest.mark.parametrize(("kind", "destination", "stored"), CHANNELS, ids=[c[0] for c in CHANNELS])
async def test_every_channel_kind_and_every_event_can_be_chosen(
    ui: Ui, kind: str, destination: str, stored: dict[str, Any]
) -> None:
    await ui.sign_in()
    fields = [(n, v) for n, v in demo_form() if not n.startswith("channel")]
    fields += [
        ("channel_row", "c1"),
        ("channel-c1-channel", kind),
        ("channel-c1-destination", destination),
        ("channel-c1-on", "failure"),
        ("channel-c1-on", "reminder"),
        ("channel-c1-on", "flapping"),
    ]
    check_id = await create(ui, with_alerting(fields))
    channel = (await stored_spec(ui, check_id))["alerts"][0]
    assert channel == {**stored, "channel": kind, "on": ["failure", "reminder", "flapping"], "name": None}
    page = await ui.client.get(f"/checks/{check_id}/edit")
    checked = [value for name, value in form_fields(page.text, f"/checks/{check_id}") if name.endswith("-on")]
    assert checked == ["failure", "reminder", "flapping"]
    if kind != "email":
        assert destination not in page.text  # secrets are write-only


async def test_a_pagerduty_endpoint_set_through_the_api_survives_a_form_edit(ui: Ui) -> None:
    await ui.sign_in()
    fields = [(n, v) for n, v in demo_form() if not n.startswith("channel")]
    fields += [("channel_row", "c1"), ("channel-c1-channel", "pagerduty"), ("channel-c1-destination", "KEY")]
    check_id = await create(ui, fields)
    async with ui.sessions() as session, session.begin():
        row = await session.get(Check, check_id)
        assert row is not None
        spec = dict(row.spec)
        spec["alerts"] = [{**spec["alerts"][0], "url": "http://127.0.0.1:9/enqueue", "name": "on-call"}]
        row.spec = spec
    page = await ui.client.get(f"/checks/{check_id}/edit")
    response = await ui.post_form(
        f"/checks/{check_id}", form_fields(page.text, f"/checks/{check_id}"), follow_redirects=False
    )
    assert response.status_code == 303
    channel = (await stored_spec(ui, check_id))["alerts"][0]
    assert (channel["routing_key"], channel["url"], channel["name"]) == (
        "KEY",
        "http://127.0.0.1:9/enqueue",
        "on-call",
    )


async def test_a_channel_row_redrawn_for_another_type_keeps_its_events(ui: Ui) -> None:
    await ui.sign_in()
    response = await ui.client.get(
        "/checks/form/channel-row",
        params=[("key", "k1"), ("channel-k1-channel", "email"), ("channel-k1-on", "degraded")],
    )
    assert response.status_code == 200
    assert "ops@example.com, oncall@example.com" in response.text
    boxes = dict(re.findall(r'value="(\w+)" aria-label="on \w+" (checked)?', response.text))
    assert boxes == {"failure": "", "recovery": "", "reminder": "", "degraded": "checked", "flapping": ""}
    pagerduty = await ui.client.get(
        "/checks/form/channel-row", params={"key": "k1", "channel-k1-channel": "pagerduty"}
    )
    assert 'type="password" name="channel-k1-destination"' in pagerduty.text


async def test_maintenance_rows_new_and_redrawn_as_weekly(ui: Ui) -> None:
    await ui.sign_in()
    new = await ui.client.get("/checks/form/maintenance-row")
    assert new.status_code == 200
    assert "<html" not in new.text
    assert new.text.count('type="datetime-local"') == 2
    weekly = await ui.client.get(
        "/checks/form/maintenance-row", params={"key": "w1", "maintenance-w1-kind": "weekly"}
    )
    assert 'data-kind="weekly"' in weekly.text
    assert 'name="maintenance-w1-day"' in weekly.text
    assert weekly.text.count('type="time"') == 2
    assert 'name="maintenance-w1-tz" value="UTC"' in weekly.text


# --- the check page ----------------------------------------------------------------------------------


async def test_the_check_page_lists_channels_policy_and_windows(ui: Ui) -> None:
    await ui.sign_in()
    fields = [
        *demo_form(),
        ("channel_row", "c2"),
        ("channel-c2-channel", "email"),
        ("channel-c2-destination", "ops@example.com"),
        ("channel-c2-on", "failure"),
        ("channel-c2-on", "degraded"),
    ]
    check_id = await create(ui, with_alerting(fields, windows=[WEEKLY]))
    page = await ui.client.get(f"/checks/{check_id}")
    assert page.status_code == 200
    card = html.unescape(section(page.text, '<section class="card" id="alerts">', "</section>"))
    assert "opens after 2 failed slots · any region · resolves after 1 passing" in card
    assert "Policy (defaults)" in card
    assert "https://hooks.example.com/********" in card
    assert "very-secret" not in page.text
    assert "ops@example.com" in card
    assert re.findall(r'class="chip event-(\w+)"', card) == ["failure", "recovery", "failure", "degraded"]
    assert card.count(">Send test</button>") == 2
    assert f'hx-post="/checks/{check_id}/alerts/1/test"' in card
    assert "every Saturday 23:00–01:00 Europe/Stockholm (into the next day) (this check)" in words(card)


async def test_the_check_page_shows_the_effective_policy_and_global_windows(ui: Ui) -> None:
    await ui.sign_in()
    check_id = await create(ui, demo_form())
    window = MaintenanceWindow(
        start=datetime(2030, 1, 1, 22, tzinfo=UTC), end=datetime(2030, 1, 2, 1, tzinfo=UTC)
    )
    await save_global(
        ui.sessions,
        policy=AlertPolicy(failure_threshold=5, remind_every=60),
        maintenance=[window],
        now=utcnow(),
    )
    card = html.unescape(
        section((await ui.client.get(f"/checks/{check_id}")).text, 'id="alerts"', "</section>")
    )
    assert "opens after 5 failed slots · any region · resolves after 1 passing · reminds every 60 min" in card
    assert "Policy (global defaults)" in card
    assert "2030-01-01 22:00 → 2030-01-02 01:00 UTC (global)" in words(card)


POLICIES = [
    ("defaults", {}, 3, "opens after 2 failed slots · any region · resolves after 1 passing"),
    ("two-of-three", {"region_quorum": 2}, 3, "opens after 2 failed slots · 2 of 3 regions failing · "),
    ("quorum-capped", {"region_quorum": 5}, 2, "· 2 of 2 regions failing ·"),
    ("percent", {"region_quorum": "50%"}, 3, "· 50% of regions failing (2 of 3) ·"),
    ("all", {"region_quorum": "100%"}, 3, "· all regions failing ·"),
    (
        "everything",
        {
            "failure_threshold": 1,
            "failing_for": 10,
            "confirm_from_another_region": True,
            "recovery_threshold": 3,
            "remind_every": 15,
            "max_reminders": 2,
            "degraded_response_time": 750,
            "flapping": {"max_transitions": 8, "window": 45},
        },
        3,
        "opens after 1 failed slot · any region · for at least 10 min · confirmed from another region · "
        "resolves after 3 passing · reminds every 15 min (at most 2) · degraded above 750 ms · "
        "flapping at 8 changes in 45 min",
    ),
]


@pytest.mark.parametrize(("case", "policy", "regions", "line"), POLICIES, ids=[p[0] for p in POLICIES])
def test_the_policy_in_one_line(case: str, policy: dict[str, Any], regions: int, line: str) -> None:
    assert line in describe_policy(AlertPolicy.model_validate(policy), regions)


class Receiver:
    """A local HTTP receiver in a thread (the test client drives the app from its own loop)."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.bodies: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.bodies.append(json.loads(body))
                reply = b"receiver says no" if receiver.status >= 300 else b"ok"
                self.send_response(receiver.status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver(200)
    made.thread.start()
    yield made
    made.server.shutdown()
    made.server.server_close()


def webhook_form(url: str) -> list[tuple[str, str]]:
    fields = [(n, v) for n, v in demo_form() if not n.startswith("channel")]
    return [
        *fields,
        ("channel_row", "c1"),
        ("channel-c1-channel", "webhook"),
        ("channel-c1-destination", url),
        ("channel-c1-on", "failure"),
    ]


SENDS = [
    ("delivered", 200, r"^Delivered \(HTTP 200 in \d+ ms\)$", "ok"),
    ("refused", 500, r"^Not delivered: HTTP 500 \(receiver error\) \(after \d+ ms\)$", "bad"),
    ("unreachable", None, r"^Not delivered: connect: .+ \(after \d+ ms\)$", "bad"),
]


@pytest.mark.parametrize(("case", "status", "expected", "css"), SENDS, ids=[s[0] for s in SENDS])
async def test_send_test_notification_to_a_real_receiver(
    ui: Ui, receiver: Receiver, case: str, status: int | None, expected: str, css: str
) -> None:
    await ui.sign_in()
    url = receiver.url
    if status is None:
        receiver.server.shutdown()
        receiver.server.server_close()
        url = url.replace(str(receiver.server.server_address[1]), "9")  # discard port: nothing listens
    else:
        receiver.status = status
    check_id = await create(ui, webhook_form(url))
    response = await ui.client.post(
        f"/checks/{check_id}/alerts/0/test", headers={**HTMX, "X-CSRF-Token": ui.csrf}
    )
    assert response.status_code == 200
    shown = re.fullmatch(r'<span class="test-result (\w+)" role="status">(.*)</span>\n?', response.text)
    assert shown is not None, response.text
    assert shown.group(1) == css
    assert re.match(expected, html.unescape(shown.group(2))), shown.group(2)
    if status is not None:
        assert len(receiver.bodies) == 1
        assert "Test notification for seymour-demo" in json.dumps(receiver.bodies[0])


async def test_a_test_notification_to_a_missing_channel(ui: Ui) -> None:
    await ui.sign_in()
    check_id = await create(ui, demo_form())
    headers = {"X-CSRF-Token": ui.csrf}
    partial = await ui.client.post(f"/checks/{check_id}/alerts/7/test", headers={**HTMX, **headers})
    assert partial.status_code == 200
    assert "this channel no longer exists; reload the page" in partial.text
    page = await ui.client.post(f"/checks/{check_id}/alerts/7/test", headers=headers)
    assert page.status_code == 404


async def test_incidents_show_their_notifications(ui: Ui) -> None:
    await ui.sign_in()
    check_id = await create(ui, demo_form())
    now = utcnow()
    incident_id = uuid.uuid4()
    async with ui.sessions() as session, session.begin():
        session.add(
            Incident(
                id=incident_id,
                check_id=check_id,
                state="open",
                opened_at=now - timedelta(minutes=5),
                failing_regions=[{"region": "eu-north-1", "name": "Stockholm", "status": "failed"}],
                failing_assertions=[{"region": "eu-north-1", "text": "status_code equals 201 — actual 503"}],
            )
        )
        for index, (status, attempts, error) in enumerate(
            [("sent", 1, None), ("failed", 12, "HTTP 410: <gone>"), ("pending", 2, "timeout")]
        ):
            session.add(
                Notification(
                    idempotency_key=f"{incident_id}:failure:{index}",
                    incident_id=incident_id,
                    check_id=check_id,
                    channel_index=index,
                    channel_type="webhook",
                    transition="failure",
                    status=status,
                    attempts=attempts,
                    last_error=error,
                    attempt_log=[{"at": (now - timedelta(minutes=1)).isoformat(), "ok": status == "sent"}],
                    created_at=now - timedelta(minutes=4),
                    sent_at=now if status == "sent" else None,
                )
            )
    page = await ui.client.get(f"/checks/{check_id}")
    block = section(page.text, f'data-incident="{incident_id}"', "</tbody>\n    </tbody>")
    assert "3 notifications · 1 sent · 1 pending · 1 failed" in block
    rows = re.findall(r'<tr data-status="(\w+)">(.*?)</tr>', block, re.S)
    assert [status for status, _ in rows] == ["sent", "failed", "pending"]
    failed = rows[1][1]
    assert "#2 webhook" in failed
    assert ">12</td>" in failed
    assert "HTTP 410: &lt;gone&gt;" in failed
    assert "<gone>" not in page.text


# --- settings ----------------------------------------------------------------------------------------


async def test_settings_show_and_save_the_global_alert_defaults(ui: Ui) -> None:
    await ui.sign_in()
    page = await ui.client.get("/settings")
    assert "Global alert defaults" in page.text
    assert re.search(r'id="alert-policy"\s*open', page.text)
    assert 'name="policy-failure_threshold" value="2"' in page.text
    fields = with_alerting([], {"failure_threshold": "4", "region_quorum": "2"}, [WEEKLY])
    saved = await ui.post_form("/settings/alerts", fields, follow_redirects=False)
    assert saved.status_code == 303
    assert saved.headers["location"] == "/settings?done=alerts-saved"
    async with ui.sessions() as session:
        policy, windows = await load_global(session)
    assert policy == AlertPolicy(failure_threshold=4, region_quorum=2)
    assert len(windows) == 1
    assert windows[0].weekly is not None
    assert windows[0].weekly.tz == "Europe/Stockholm"
    again = await ui.client.get("/settings?done=alerts-saved")
    assert "Global alert defaults saved." in again.text
    shown = dict(form_fields(again.text, "/settings/alerts"))
    assert (shown["policy-failure_threshold"], shown["policy-region_quorum"]) == ("4", "2")
    assert "weekly" in shown.values()


async def test_invalid_global_defaults_are_not_saved_and_say_why(ui: Ui) -> None:
    await ui.sign_in()
    bad_window = ("m9", {"kind": "once", "start": "2030-01-02T00:00", "end": "2030-01-01T00:00"})
    fields = with_alerting([], {"recovery_threshold": "0"}, [bad_window])
    response = await ui.post_form("/settings/alerts", fields)
    assert response.status_code == 422
    text = html.unescape(response.text)
    assert "The alert defaults were not saved." in text
    label = text.split('name="policy-recovery_threshold"', 1)[1].split("</label>", 1)[0]
    assert "greater than or equal to 1" in label
    assert 'name="policy-recovery_threshold" value="0"' in text
    row = section(text, 'id="maintenance-m9"', '<div class="row')
    assert "end must be after start" in row
    assert 'value="2030-01-02T00:00"' in row
    async with ui.sessions() as session:
        assert await load_global(session) == (None, ())


async def test_only_admins_change_the_global_alert_defaults(ui: Ui) -> None:
    await ui.sign_in()
    await ui.post_form("/settings/users", {"username": "bob", "password": "long-enough-1"})
    await ui.sign_in("bob")
    page = await ui.client.get("/settings")
    assert "Only admins can change the global alert defaults." in page.text
    response = await ui.post_form("/settings/alerts", with_alerting([], {"failure_threshold": "9"}))
    assert response.status_code == 403
    async with ui.sessions() as session:
        assert await load_global(session) == (None, ())


async def test_settings_list_failed_deliveries(ui: Ui) -> None:
    await ui.sign_in()
    check_id = await create(ui, demo_form(name="<b>checkout</b>"))
    now = utcnow()
    async with ui.sessions() as session, session.begin():
        session.add(
            Notification(
                idempotency_key="x:failure:0",
                incident_id=uuid.uuid4(),
                check_id=check_id,
                channel_index=0,
                channel_type="slack",
                transition="failure",
                status="failed",
                attempts=12,
                last_error="HTTP 404: <no_service>",
                attempt_log=[{"at": "2030-01-01T10:00:00+00:00", "ok": False}],
                created_at=now,
            )
        )
        session.add(
            Notification(
                idempotency_key="x:failure:1",
                check_id=check_id,
                channel_index=1,
                channel_type="webhook",
                transition="recovery",
                status="sent",
                attempts=1,
                created_at=now,
            )
        )
    page = await ui.client.get("/settings")
    card = section(page.text, 'id="failed-deliveries"', "</section>")
    rows = re.findall(r"<tr data-notification=[^>]+>(.*?)</tr>", card, re.S)
    assert len(rows) == 1
    cells = [
        html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", rows[0], re.S)
    ]
    assert cells == [
        "<b>checkout</b>",
        "#1 Slack",
        "failure",
        "12",
        "HTTP 404: <no_service>",
        "2030-01-01 10:00:00 UTC",
    ]
    assert "<b>checkout</b>" not in page.text
    assert "&lt;no_service&gt;" in card


async def test_no_failed_deliveries(ui: Ui) -> None:
    await ui.sign_in()
    card = section((await ui.client.get("/settings")).text, 'id="failed-deliveries"', "</section>")
    assert "None. Every notification so far was delivered" in card


async def test_a_channel_kind_from_the_registry_gets_its_own_boxes_and_keeps_its_secret(ui: Ui) -> None:
    await ui.sign_in()
    row = await ui.client.get(
        "/checks/form/channel-row", params={"key": "c1", "channel-c1-channel": "telegram"}
    )
    assert 'aria-label="Bot token"' in row.text
    assert "Chat id" in row.text
    fields = [(n, v) for n, v in demo_form() if not n.startswith("channel")]
    fields += [
        ("channel_row", "c1"),
        ("channel-c1-channel", "telegram"),
        ("channel-c1-destination", "-1001234567890"),
        ("channel-c1-secret", "123456:bot-token"),
        ("channel-c1-on", "failure"),
    ]
    check_id = await create(ui, fields)
    channel = (await stored_spec(ui, check_id))["alerts"][0]
    assert channel == {
        "channel": "telegram",
        "chat_id": "-1001234567890",
        "bot_token": "123456:bot-token",
        "api_url": None,
        "on": ["failure"],
        "name": None,
    }
    page = await ui.client.get(f"/checks/{check_id}/edit")
    assert "-1001234567890" in page.text
    assert "123456:bot-token" not in page.text  # the token is write-only
    detail = await ui.client.get(f"/checks/{check_id}")
    assert "Telegram" in detail.text
