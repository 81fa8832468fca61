"""Deletes runs older than the retention period, in small batches so writers are never blocked long."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import delete, select

from contracts.v1.base import utcnow
from services.common.db.models import Run, RunRollup
from services.common.db.sessions import Sessions
from services.common.tasks import cancel_and_wait

log = logging.getLogger(__name__)


async def purge_once(sessions: Sessions, retention_days: int, *, batch: int = 5000) -> int:
    """Delete runs (and rollups) older than ``retention_days``; returns how many runs went."""
    cutoff = utcnow() - timedelta(days=retention_days)
    removed = 0
    while True:
        async with sessions() as session, session.begin():
            ids = (
                (await session.execute(select(Run.run_id).where(Run.completed_at < cutoff).limit(batch)))
                .scalars()
                .all()
            )
            if not ids:
                await session.execute(delete(RunRollup).where(RunRollup.bucket < cutoff - timedelta(hours=1)))
                return removed
            await session.execute(delete(Run).where(Run.run_id.in_(ids)))
            removed += len(ids)


class Retention:
    """Runs :func:`purge_once` every hour."""

    def __init__(self, sessions: Sessions, retention_days: int, every_s: float = 3600.0) -> None:
        self._sessions = sessions
        self._days = retention_days
        self._every = every_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Begin the hourly purge."""
        self._task = asyncio.create_task(self._loop(), name="results-retention")

    async def stop(self) -> None:
        """Stop purging."""
        await cancel_and_wait(self._task)
        self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                removed = await purge_once(self._sessions, self._days)
                if removed:
                    log.info("retention removed=%d", removed)
            except Exception:
                log.exception("retention pass failed")
            await asyncio.sleep(self._every)
