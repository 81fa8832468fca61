"""Every reason a run can be missed for is stored as that run's row, as sent: a new reason that results
could not read (or whose name outgrew the column) would leave its slots with no row at all."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest
from sqlalchemy import select

from contracts.v1 import MissedReason, RunMissed
from services.common.bus.memory import MemoryBus
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.db.models import Run
from services.common.settings import Settings
from services.results.main import build
from tests.support.waiting import eventually

SLOT = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
REASONS: tuple[str, ...] = get_args(MissedReason)


@pytest.mark.postgres
async def test_every_missed_reason_is_stored_as_sent(pg_url: str) -> None:
    engine = make_engine(pg_url)
    sessions = make_sessionmaker(engine)
    bus = MemoryBus()
    service = build(Settings(results_batch_ms=20), bus, sessions)
    for route in service.routes:
        bus.subscribe(route)
    await bus.start()
    await service.start()
    check_id = uuid.uuid4()
    try:
        for index, reason in enumerate(REASONS):
            await bus.publish(
                RunMissed(
                    run_id=uuid.uuid4(),
                    check_id=check_id,
                    slot=SLOT + timedelta(seconds=index),
                    region="eu-north-1",
                    reason=reason,  # type: ignore[arg-type]  # each of MissedReason's values
                    detail=f"because {reason}",
                )
            )

        async def stored() -> set[tuple[str | None, str | None]]:
            async with sessions() as session:
                rows = await session.execute(select(Run.error_class, Run.error_message))
                return {(row.error_class, row.error_message) for row in rows}

        async def all_stored() -> bool:
            return len(await stored()) == len(REASONS)

        await eventually(all_stored, within=10.0, every=0.05, what="one missed row per reason")
        assert await stored() == {(reason, f"because {reason}") for reason in REASONS}
    finally:
        await bus.stop()
        await service.stop()
        await engine.dispose()
