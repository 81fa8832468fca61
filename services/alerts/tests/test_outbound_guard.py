"""Alert deliveries and "Send test" go through the address guard and never echo a receiver's body.

Receivers listen on 127.0.0.1 only; ``0.0.0.0`` reaches them on Linux unless the guard refuses it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from contracts.v1.base import utcnow
from services.alerts.delivery import Sender
from services.alerts.tests.conftest import store_check
from services.alerts.tests.test_channels import FAST, sessions, settled  # noqa: F401  (fixture)
from services.common.channels.base import SmtpConfig
from services.common.channels.probe import send_test_notification
from services.common.db.models import Notification
from services.common.metrics import Registry
from services.common.netguard import AddressGuard
from services.common.settings import Settings

SECRET_PAGE = "db_password=hunter2 <internal admin page>"


class _Internal:
    """A local HTTP service an attacker would like to reach through a webhook URL."""

    def __init__(self) -> None:
        self.hits = 0
        self.status = 200

    async def handle(self, _: web.Request) -> web.Response:
        self.hits += 1
        return web.Response(status=self.status, text=SECRET_PAGE)


@pytest.fixture
async def internal() -> AsyncIterator[tuple[_Internal, int]]:
    service = _Internal()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", service.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield service, runner.addresses[0][1]
    await runner.cleanup()


def _webhook_check(url: str) -> dict[str, Any]:
    return {
        "name": "guarded",
        "request": {"url": "http://127.0.0.1:9/"},
        "regions": ["us-east-1"],
        "alerts": [{"channel": "webhook", "url": url}, {"channel": "slack", "url": url}],
    }


CASES = [
    ("http://0.0.0.0:{port}/hook", False),
    ("http://[::ffff:0.0.0.0]:{port}/hook", False),
    ("http://127.0.0.1:{port}/hook", True),
]
IDS = ["zero", "zero-mapped", "loopback-when-private-blocked"]


@pytest.mark.parametrize(("url", "block_private"), CASES, ids=IDS)
@pytest.mark.parametrize("index", [0, 1], ids=["webhook", "slack"])
async def test_send_test_is_guarded(
    sqlite_url: str,
    sessions: Any,  # noqa: F811
    internal: tuple[_Internal, int],
    url: str,
    block_private: bool,
    index: int,
) -> None:
    service, port = internal
    check_id = await store_check(sqlite_url, _webhook_check(url.format(port=port)))
    settings = Settings(block_private_networks=block_private)
    result = await send_test_notification(sessions, settings, check_id, index)
    assert result["ok"] is False
    assert result["error"].startswith("blocked"), result
    assert service.hits == 0


@pytest.mark.parametrize(("url", "block_private"), CASES, ids=IDS)
async def test_outbox_deliveries_are_guarded(
    sqlite_url: str,
    sessions: Any,  # noqa: F811
    internal: tuple[_Internal, int],
    url: str,
    block_private: bool,
) -> None:
    service, port = internal
    check_id = await store_check(sqlite_url, _webhook_check(url.format(port=port)))
    async with sessions() as session, session.begin():
        row = Notification(
            idempotency_key=f"{uuid.uuid4()}",
            check_id=check_id,
            channel_index=0,
            channel_type="webhook",
            transition="failure",
            status="pending",
            attempts=0,
            payload=_payload(check_id),
            attempt_log=[],
            created_at=utcnow(),
            next_attempt_at=utcnow(),
        )
        session.add(row)
    sender = Sender(
        sessions,
        smtp=SmtpConfig(host=None),
        clock=utcnow,
        config=FAST,
        metrics=Registry(),
        guard=AddressGuard(block_private=block_private),
    )
    await sender.start()
    try:
        (stored,) = await settled(sessions, [row.id])
    finally:
        await sender.stop()
    assert stored.status == "failed"
    assert stored.last_error is not None
    assert stored.last_error.startswith("blocked")
    assert service.hits == 0


def _payload(check_id: uuid.UUID) -> dict[str, Any]:
    from services.common.channels.base import AlertMessage

    return AlertMessage(
        event="failure",
        idempotency_key="k",
        check_id=check_id,
        check_name="guarded",
        state="failing",
        title="guarded is failing",
        summary="s",
        url="http://127.0.0.1:8000/checks/x",
        at=utcnow(),
    ).model_dump(mode="json")


@pytest.mark.parametrize("status", [500, 404, 401], ids=["server-error", "not-found", "unauthorised"])
async def test_receiver_error_body_is_never_echoed(
    sqlite_url: str,
    sessions: Any,  # noqa: F811
    internal: tuple[_Internal, int],
    status: int,
) -> None:
    """A webhook URL pointed at an internal page (allowed here: ``seymour up``) must not show it."""
    service, port = internal
    service.status = status
    check_id = await store_check(sqlite_url, _webhook_check(f"http://127.0.0.1:{port}/admin"))
    result = await send_test_notification(sessions, Settings(), check_id, 0)
    assert service.hits == 1
    assert result["ok"] is False
    assert result["status"] == status
    assert result["error"].startswith(f"HTTP {status} (")
    assert "hunter2" not in str(result)
    assert "admin page" not in str(result)
