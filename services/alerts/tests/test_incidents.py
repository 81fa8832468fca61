"""Global policy merging, global maintenance, deleted checks and the metrics text format."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from contracts.v1 import CheckCompleted
from contracts.v1.base import utcnow
from contracts.v1.checks import AlertPolicy, MaintenanceWindow
from services.alerts.evaluator import Evaluator
from services.alerts.tests.conftest import all_channels, store_check
from services.common.bus.memory import MemoryBus
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.db.incidents import effective_policy, list_incidents, save_global
from services.common.db.models import Check, Notification
from services.common.metrics import Registry

MERGES = [
    ("no-global", {"failure_threshold": 5}, None, 5),
    ("global-fills-default", {}, {"failure_threshold": 4}, 4),
    ("check-overrides-global", {"failure_threshold": 3}, {"failure_threshold": 4}, 3),
]


@pytest.mark.parametrize(("check", "glob", "expected"), [m[1:] for m in MERGES], ids=[m[0] for m in MERGES])
def test_effective_policy(check: dict[str, Any], glob: dict[str, Any] | None, expected: int) -> None:
    merged = effective_policy(AlertPolicy(**check), AlertPolicy(**glob) if glob is not None else None)
    assert merged.failure_threshold == expected


def test_metrics_render_prometheus_text() -> None:
    registry = Registry()
    registry.inc("seymour_notifications_failed_total", channel="slack", event="failure")
    text = registry.render()
    assert "# TYPE seymour_notifications_failed_total counter" in text
    assert 'seymour_notifications_failed_total{channel="slack",event="failure"} 1.0' in text
    assert "seymour_incidents_opened_total 0.0" in text


def failing(check_id: uuid.UUID, slot: int, region: str) -> CheckCompleted:
    at = utcnow().replace(microsecond=0) - timedelta(minutes=60 - slot)
    return CheckCompleted(
        run_id=uuid.uuid4(),
        check_id=check_id,
        slot=at,
        region=region,
        status="error",
        started_at=at,
        completed_at=at,
        error={"class": "connect", "message": "refused"},  # type: ignore[arg-type]
    )


async def test_global_maintenance_holds_and_deleted_check_resolves_silently(sqlite_url: str) -> None:
    check_id = await store_check(sqlite_url, all_channels("http://127.0.0.1:1", failure_threshold=1))
    engine = make_engine(sqlite_url)
    sessions = make_sessionmaker(engine)
    now = utcnow()
    window = MaintenanceWindow(start=now - timedelta(hours=1), end=now + timedelta(hours=1))
    await save_global(sessions, maintenance=[window], now=now)
    evaluator = Evaluator(sessions, MemoryBus(), base_url="http://x", clock=utcnow, metrics=Registry())
    for region in ("us-east-1", "eu-west-1", "ap-south-1"):
        await evaluator.observe(failing(check_id, 1, region))
    (incident,) = await list_incidents(sessions, state="open")
    assert incident["held"] is True
    assert incident["failing_assertions"][0]["text"] == "connect: refused"
    async with sessions() as session, session.begin():
        await session.delete(await session.get(Check, check_id))
    await evaluator.tick(check_id)
    (closed,) = await list_incidents(sessions, check_id=check_id)
    async with sessions() as session:
        notifications = (await session.scalars(select(Notification))).all()
    await engine.dispose()
    assert (closed["state"], closed["resolve_reason"]) == ("resolved", "check deleted")
    assert notifications == []
