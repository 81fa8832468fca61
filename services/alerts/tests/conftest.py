"""Fixtures of the alerts tests: local receivers, an SMTP server, a stored check with every channel."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from contracts.v1 import CheckSpec
from services.alerts.tests.receivers import MailBox, Receiver
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.db.models import Check


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def mailbox() -> Iterator[tuple[MailBox, int]]:
    box = MailBox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def all_channels(url: str, **policy: Any) -> dict[str, Any]:
    """A check spec (as JSON) with one channel of each kind pointed at the local receiver."""
    on = ["failure", "recovery", "reminder", "degraded", "flapping"]
    return {
        "name": "demo",
        "request": {"url": "http://127.0.0.1:9/health"},
        "regions": ["us-east-1", "eu-west-1", "ap-south-1"],
        "interval": 60,
        "timeout": 5,
        "alert_policy": policy,
        "alerts": [
            {"channel": "slack", "url": f"{url}/slack", "on": on},
            {"channel": "discord", "url": f"{url}/discord", "on": on},
            {"channel": "email", "to": ["ops@example.com"], "on": on},
            {"channel": "webhook", "url": f"{url}/webhook", "secret": "s3cret", "on": on},
            {"channel": "pagerduty", "routing_key": "R0UT1NGKEY", "url": f"{url}/pagerduty", "on": on},
            {"channel": "teams", "url": f"{url}/teams", "on": on},
        ],
    }


async def store_check(db_url: str, spec: dict[str, Any], check_id: uuid.UUID | None = None) -> uuid.UUID:
    """Insert a check row (as the api would) and return its id."""
    check_id = check_id or uuid.uuid4()
    validated = CheckSpec.model_validate(spec)
    engine = make_engine(db_url)
    async with make_sessionmaker(engine)() as session, session.begin():
        session.add(
            Check(
                id=check_id,
                name=validated.name,
                spec=validated.model_dump(mode="json"),
                enabled=True,
                revision=1,
            )
        )
    await engine.dispose()
    return check_id
