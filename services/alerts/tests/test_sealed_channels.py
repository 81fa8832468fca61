"""Channels stored sealed (as the api stores them) still deliver: the outbox sender and "Send test" open
a channel's secrets with the deployment key just before sending, and a key that cannot open them fails
the delivery visibly instead of sending a sealed token to a receiver."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from contracts.v1 import CheckSpec
from contracts.v1.base import utcnow
from services.alerts.delivery import Sender
from services.alerts.tests.conftest import all_channels, store_check
from services.alerts.tests.receivers import Receiver
from services.alerts.tests.test_channels import FAST, queue, settled
from services.common.channels.base import SmtpConfig
from services.common.channels.probe import send_test_notification
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.metrics import Registry
from services.common.sealing import seal_spec
from services.common.secretbox import SecretBox
from services.common.settings import Settings

KEY = "alerts-test-deployment-key"


def box(key: str = KEY) -> SecretBox:
    return SecretBox(hashlib.sha256(key.encode()).digest())


@pytest.fixture
async def sessions(sqlite_url: str) -> AsyncIterator[Any]:
    engine = make_engine(sqlite_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


def sealed_channels(url: str) -> dict[str, Any]:
    spec = CheckSpec.model_validate(all_channels(url)).model_dump(mode="json")
    sealed = seal_spec(spec, box())
    assert url not in str(sealed["alerts"]), "every channel URL here is a credential"
    assert "s3cret" not in str(sealed)
    assert "R0UT1NGKEY" not in str(sealed)
    return sealed


async def test_the_sender_opens_sealed_channels_to_deliver(
    sqlite_url: str, sessions: Any, receiver: Receiver
) -> None:
    check_id = await store_check(sqlite_url, sealed_channels(receiver.url))
    ids = [await queue(sessions, check_id, index) for index in (0, 1, 3, 4, 5)]
    sender = Sender(
        sessions, smtp=SmtpConfig(host=None), clock=utcnow, config=FAST, metrics=Registry(), box=box()
    )
    await sender.start()
    try:
        rows = await settled(sessions, ids)
    finally:
        await sender.stop()
    assert [row.status for row in rows] == ["sent"] * 5, [row.last_error for row in rows]
    assert receiver.invalid == [], "the webhook's signature verifies with the opened secret"
    assert receiver.bodies("/pagerduty")[0]["routing_key"] == "R0UT1NGKEY"


async def test_a_key_that_cannot_open_them_fails_the_delivery_and_sends_nothing(
    sqlite_url: str, sessions: Any, receiver: Receiver
) -> None:
    check_id = await store_check(sqlite_url, sealed_channels(receiver.url))
    notification = await queue(sessions, check_id, 3)
    sender = Sender(
        sessions,
        smtp=SmtpConfig(host=None),
        clock=utcnow,
        config=FAST,
        metrics=Registry(),
        box=box("another-deployment"),
    )
    await sender.start()
    try:
        (row,) = await settled(sessions, [notification])
    finally:
        await sender.stop()
    assert row.status == "failed"
    assert row.attempts == 1
    assert row.last_error == "the channel's secret does not open with this deployment key"
    assert sum(receiver.hits.values()) == 0


async def test_send_test_opens_sealed_channels(sqlite_url: str, sessions: Any, receiver: Receiver) -> None:
    check_id = await store_check(sqlite_url, sealed_channels(receiver.url))
    settings = Settings(secret_key=KEY, base_url="https://seymour.example")
    results = [await send_test_notification(sessions, settings, check_id, i) for i in (0, 1, 3, 4, 5)]
    assert [result["ok"] for result in results] == [True] * 5, results
    assert receiver.invalid == []
    wrong = await send_test_notification(sessions, Settings(secret_key="another"), check_id, 3)
    assert wrong["ok"] is False
    assert wrong["error"] == "the channel's secret does not open with this deployment key"
