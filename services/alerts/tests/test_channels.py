"""Channel payloads against the providers' documented shapes, and delivery to real local receivers:
429 with Retry-After, 500 then success, permanent 4xx, giving up, SMTP with and without STARTTLS+AUTH."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select

from contracts.v1 import CheckSpec
from contracts.v1.base import utcnow
from services.alerts.compose import compose
from services.alerts.delivery import DeliveryConfig, Sender
from services.alerts.policy import Event, IncidentSnapshot, RegionOutcome
from services.alerts.tests.conftest import all_channels, free_port, store_check
from services.alerts.tests.receivers import (
    MailBox,
    Receiver,
    server_tls_context,
    validate_discord,
    validate_pagerduty,
    validate_slack,
    validate_teams,
    validate_webhook,
)
from services.common.channels import PROVIDERS
from services.common.channels.base import AlertMessage, EmailOutgoing, HttpRequest, SmtpConfig, send_email
from services.common.channels.probe import send_test_notification
from services.common.channels.webhook import verify
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.db.models import Notification
from services.common.errors import NotFound
from services.common.metrics import Registry
from services.common.settings import Settings
from tests.support.tls import self_signed

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
CHECK_ID = uuid.UUID("00000000-0000-0000-0000-0000000000c1")


def snapshot(observed: Any = 503, regions: tuple[str, ...] = ("eu-west-1", "us-east-1")) -> IncidentSnapshot:
    detail = {
        "kind": "assertion",
        "source": "status_code",
        "property": None,
        "comparison": "equals",
        "target": 200,
        "observed": observed,
    }
    return IncidentSnapshot(
        id=uuid.UUID("00000000-0000-0000-0000-0000000000d1"),
        opened_at=NOW - timedelta(minutes=3),
        slot=NOW - timedelta(minutes=3),
        failing={r: RegionOutcome(status="failed", detail=detail) for r in regions},
        resolved_at=NOW,
        resolve_reason="passed 1 consecutive slot(s)",
    )


def message(kind: str, name: str = "checkout API", observed: Any = 503) -> AlertMessage:
    incident = None if kind in ("degraded", "flapping") else snapshot(observed)
    event = Event(
        kind,
        f"k:{kind}",
        NOW,
        incident=incident,
        detail={"reminder": 1, "transitions": 5, "window_minutes": 30},
    )  # type: ignore[arg-type]
    return compose(
        event,
        check_id=CHECK_ID,
        check_name=name,
        base_url="https://seymour.example",
        idempotency_key=f"k:{kind}:0",
    )


SPEC = CheckSpec.model_validate(all_channels("http://127.0.0.1:1"))
VALIDATORS = {
    "slack": validate_slack,
    "discord": validate_discord,
    "teams": validate_teams,
    "pagerduty": validate_pagerduty,
}
EVENTS = ["failure", "recovery", "reminder", "degraded", "flapping"]


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("kind", list(VALIDATORS))
@pytest.mark.parametrize("size", ["normal", "huge"])
def test_payloads_match_documented_shape(kind: str, event: str, size: str) -> None:
    name = "checkout API" if size == "normal" else "n" * 200
    observed = 503 if size == "normal" else "x" * 20_000
    channel = next(c for c in SPEC.alerts if c.channel == kind)
    built = PROVIDERS[kind].build(message(event, name, observed), channel, NOW)
    assert isinstance(built, HttpRequest)
    body = json.loads(built.body)
    assert VALIDATORS[kind](body) == []
    if kind == "pagerduty" and event == "recovery":
        assert set(body) == {"routing_key", "event_action", "dedup_key"}, "a resolve carries only these"
        return
    text = built.body.decode()
    assert "checkout API" in text or size == "huge"
    assert "https://seymour.example/checks/" in text
    assert len(built.body) < 28_000


@pytest.mark.parametrize("event", ["failure", "reminder"])
def test_messages_name_state_regions_assertion_and_link(event: str) -> None:
    msg = message(event)
    facts = dict(msg.facts())
    assert facts["Check"] == "checkout API"
    assert facts["State"] == "failing"
    assert facts["Regions"] == "Ireland (eu-west-1), N. Virginia (us-east-1)"
    assert facts["Assertion"] == "status_code equals 200 — actual 503"
    assert msg.url == f"https://seymour.example/checks/{CHECK_ID}"


def test_pagerduty_trigger_and_resolve_share_the_dedup_key() -> None:
    channel = next(c for c in SPEC.alerts if c.channel == "pagerduty")
    trigger = json.loads(PROVIDERS["pagerduty"].build(message("failure"), channel, NOW).body)  # type: ignore[union-attr]
    resolve = json.loads(PROVIDERS["pagerduty"].build(message("recovery"), channel, NOW).body)  # type: ignore[union-attr]
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"]
    assert trigger["payload"]["severity"] == "critical"


def test_webhook_signature_covers_body_and_timestamp() -> None:
    channel = next(c for c in SPEC.alerts if c.channel == "webhook")
    built = PROVIDERS["webhook"].build(message("failure"), channel, NOW)
    assert isinstance(built, HttpRequest)
    body = json.loads(built.body)
    assert body["timestamp"] == int(NOW.timestamp())
    assert verify("s3cret", built.body, built.headers["X-Seymour-Signature"])
    assert not verify("s3cret", built.body.replace(b"503", b"200"), built.headers["X-Seymour-Signature"])
    assert not verify("other", built.body, built.headers["X-Seymour-Signature"])
    stale = validate_webhook(body, built.headers, built.body, "s3cret")
    assert stale == ["stale timestamp (replay)"]


def test_email_is_multipart_with_escaped_html() -> None:
    channel = next(c for c in SPEC.alerts if c.channel == "email")
    built = PROVIDERS["email"].build(message("failure", name="<b>shop</b>\r\nBcc: x@y.z"), channel, NOW)
    assert isinstance(built, EmailOutgoing)
    assert "\n" not in built.subject
    assert "\r" not in built.subject
    assert "&lt;b&gt;shop&lt;/b&gt;" in built.html
    assert "status_code equals 200 — actual 503" in built.text


# --- delivery ---------------------------------------------------------------------------------------

FAST = DeliveryConfig(poll_interval=0.05, backoff_base=0.05, backoff_cap=0.2, max_attempts=4, timeout=2.0)


@pytest.fixture
async def sessions(sqlite_url: str) -> AsyncIterator[Any]:
    engine = make_engine(sqlite_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def queue(sessions: Any, check_id: uuid.UUID, index: int, kind: str = "failure") -> uuid.UUID:
    spec_channel = SPEC.alerts[index]
    msg = message(kind)
    key = f"{uuid.uuid4()}:{kind}:{index}"
    async with sessions() as session, session.begin():
        row = Notification(
            idempotency_key=key,
            check_id=check_id,
            channel_index=index,
            channel_type=spec_channel.channel,
            transition=kind,
            status="pending",
            attempts=0,
            payload=msg.model_copy(update={"idempotency_key": key}).model_dump(mode="json"),
            attempt_log=[],
            created_at=utcnow(),
            next_attempt_at=utcnow(),
        )
        session.add(row)
    return row.id


async def settled(sessions: Any, ids: list[uuid.UUID], deadline: float = 10.0) -> list[Notification]:
    end = time.monotonic() + deadline
    while True:
        async with sessions() as session:
            rows = list((await session.scalars(select(Notification).where(Notification.id.in_(ids)))).all())
        if all(row.status != "pending" for row in rows) or time.monotonic() > end:
            return rows
        await asyncio.sleep(0.02)


async def run_sender(
    sessions: Any, config: DeliveryConfig, smtp: SmtpConfig | None = None
) -> tuple[Sender, Registry]:
    metrics = Registry()
    sender = Sender(
        sessions, smtp=smtp or SmtpConfig(host=None), clock=utcnow, config=config, metrics=metrics
    )
    await sender.start()
    return sender, metrics


async def test_429_retry_after_is_honoured(sqlite_url: str, sessions: Any, receiver: Receiver) -> None:
    check_id = await store_check(sqlite_url, all_channels(receiver.url))
    receiver.on("/slack", (429, {"Retry-After": "1"}))
    started = time.monotonic()
    notification = await queue(sessions, check_id, 0)
    sender, metrics = await run_sender(sessions, FAST)
    try:
        (row,) = await settled(sessions, [notification])
    finally:
        await sender.stop()
    assert row.status == "sent"
    assert row.attempts == 2
    assert [entry["status"] for entry in row.attempt_log] == [429, 200]
    assert row.attempt_log[0]["retry_in_s"] == 1.0
    assert time.monotonic() - started >= 1.0
    assert len(receiver.bodies("/slack")) == 1
    assert metrics.value("seymour_notifications_sent_total", channel="slack", event="failure") == 1


async def test_500_then_success_with_backoff(sqlite_url: str, sessions: Any, receiver: Receiver) -> None:
    check_id = await store_check(sqlite_url, all_channels(receiver.url))
    receiver.on("/discord", (500, {}), (503, {}))
    notification = await queue(sessions, check_id, 1)
    sender, _ = await run_sender(sessions, FAST)
    try:
        (row,) = await settled(sessions, [notification])
    finally:
        await sender.stop()
    assert row.status == "sent"
    assert [entry["status"] for entry in row.attempt_log] == [500, 503, 204]
    assert 0.025 <= row.attempt_log[0]["retry_in_s"] <= 0.05
    assert 0.05 <= row.attempt_log[1]["retry_in_s"] <= 0.1
    assert receiver.invalid == []


async def test_gives_up_visibly_and_dead_channel_blocks_nothing(
    sqlite_url: str, sessions: Any, receiver: Receiver
) -> None:
    check_id = await store_check(sqlite_url, all_channels(receiver.url))
    receiver.always["/slack"] = (500, {})
    receiver.always["/discord"] = (404, {})
    dead = [await queue(sessions, check_id, 0) for _ in range(5)]
    gone = await queue(sessions, check_id, 1)
    healthy = [await queue(sessions, check_id, i) for i in (3, 4, 5)]
    sender, metrics = await run_sender(sessions, FAST)
    try:
        rows = {row.id: row for row in await settled(sessions, [*dead, gone, *healthy])}
    finally:
        await sender.stop()
    assert [rows[i].status for i in healthy] == ["sent"] * 3
    assert {rows[i].status for i in dead} == {"failed"}
    assert {rows[i].attempts for i in dead} == {FAST.max_attempts}
    assert rows[gone].status == "failed"
    assert rows[gone].attempts == 1, "404 is permanent"
    assert rows[gone].last_error is not None
    assert rows[gone].last_error.startswith("HTTP 404")
    assert metrics.value("seymour_notifications_failed_total") == 6
    assert 'seymour_notifications_failed_total{channel="slack",event="failure"} 5.0' in metrics.render()
    assert receiver.url not in " ".join(str(rows[i].attempt_log) for i in dead), "no URL in the log"


async def test_give_up_after_bounded_time(sqlite_url: str, sessions: Any, receiver: Receiver) -> None:
    check_id = await store_check(sqlite_url, all_channels(receiver.url))
    receiver.always["/teams"] = (429, {"Retry-After": "3600"})
    notification = await queue(sessions, check_id, 5)
    sender, _ = await run_sender(sessions, DeliveryConfig(poll_interval=0.05, give_up_after=60))
    try:
        (row,) = await settled(sessions, [notification])
    finally:
        await sender.stop()
    assert row.status == "failed"
    assert row.attempts == 1


async def test_unreachable_receiver_retries_then_fails(sqlite_url: str, sessions: Any) -> None:
    check_id = await store_check(sqlite_url, all_channels(f"http://127.0.0.1:{free_port()}"))
    notification = await queue(sessions, check_id, 3)
    sender, _ = await run_sender(sessions, FAST)
    try:
        (row,) = await settled(sessions, [notification])
    finally:
        await sender.stop()
    assert row.status == "failed"
    assert row.attempts == FAST.max_attempts
    assert row.last_error is not None
    assert row.last_error.startswith("connect:")


async def test_email_plain_smtp(sqlite_url: str, sessions: Any, mailbox: tuple[MailBox, int]) -> None:
    box, port = mailbox
    check_id = await store_check(sqlite_url, all_channels("http://127.0.0.1:1"))
    notification = await queue(sessions, check_id, 2)
    smtp = SmtpConfig(host="127.0.0.1", port=port, security="none", sender="alerts@seymour.test")
    sender, _ = await run_sender(sessions, FAST, smtp)
    try:
        (row,) = await settled(sessions, [notification])
    finally:
        await sender.stop()
    assert row.status == "sent"
    (mail,) = box.messages
    assert box.envelopes == [("alerts@seymour.test", ["ops@example.com"])]
    assert mail.is_multipart()
    assert sorted(part.get_content_type() for part in mail.get_payload()) == ["text/html", "text/plain"]  # type: ignore[union-attr]
    assert "checkout API is failing" in mail["Subject"]


async def test_email_starttls_with_auth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    box = MailBox()
    logins: list[tuple[str, str]] = []

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password == b"pa55")

    port = free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_tls_context(cert, key),
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
    )
    controller.start()
    try:
        outgoing = EmailOutgoing(["ops@example.com"], "subject", "text", "<p>html</p>")
        good = SmtpConfig(
            host="127.0.0.1", port=port, username="alerts", password="pa55", security="starttls"
        )
        result = await send_email(outgoing, good, time_limit=5)
        plain = await send_email(outgoing, SmtpConfig(**{**good.__dict__, "security": "none"}), time_limit=5)
    finally:
        controller.stop()
    assert result.ok, result.error
    assert len(box.messages) == 1
    assert logins[0] == ("alerts", "pa55")
    assert not plain.ok, "the server requires STARTTLS before AUTH"
    assert "pa55" not in str(plain.error)


async def test_send_test_notification(sqlite_url: str, sessions: Any, receiver: Receiver) -> None:
    check_id = await store_check(sqlite_url, all_channels(receiver.url))
    settings = Settings(base_url="https://seymour.example")
    results = [await send_test_notification(sessions, settings, check_id, i) for i in (0, 1, 3, 4, 5)]
    assert [r["ok"] for r in results] == [True] * 5, results
    assert receiver.invalid == []
    assert receiver.bodies("/webhook")[0]["event"] == "test"
    receiver.always["/slack"] = (500, {})
    failed = await send_test_notification(sessions, settings, check_id, 0)
    assert failed["ok"] is False
    assert failed["status"] == 500
    with pytest.raises(NotFound):
        await send_test_notification(sessions, settings, check_id, 17)
